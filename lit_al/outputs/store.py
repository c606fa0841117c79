"""Per-example prediction outputs, stored by pool index.

``predict_step`` produces, for each batch, one row per example for every output
the strategy asked for. ``PoolOutputStore`` writes those rows into arrays with
one row per pool example (rows never written stay NaN), backed by ``.npy``
memory maps when given a directory, so a 10^6 pool never sits in memory as
Python objects.

Array layout seen by strategies (``PoolOutputStore.arrays()``):

- every output: pool index on axis 0, e.g. ``probs`` (n, C), ``embeddings`` (n, d);
- except outputs flagged ``sample_axis`` (``mc_probs``): (T, n, C), pool index on
  axis 1 (rows are written as (B, T, C) and exposed through a moved-axis view).

A store can also hold only a shard of the pool (``rows``: the pool indices it will
receive, ascending): its arrays then have one row per shard row, and
``gather_shards`` assembles the shards of several processes into one pool-indexed
store, chunk by chunk, so no process ever holds an n x d array in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .catalog import flagged

#: Pool rows copied per step when shards are gathered.
GATHER_CHUNK_ROWS = 65536
ROWS_FILE = "rows.npy"


def reserve_disk(path: Path) -> None:
    """Allocate the blocks of a freshly created (sparse) memory-mapped file now.

    Writing into a sparse mapping when the disk is full kills the process with SIGBUS and
    no message; reserving the blocks first turns a full disk into an ``OSError`` (ENOSPC)
    that the command line reports as one line.
    """
    with open(path, "r+b") as handle:
        os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)


class PoolOutputStore:
    """Disk-backed (or in-memory) arrays indexed by pool index, for the whole pool or one shard of it."""

    def __init__(
        self,
        n_pool: int,
        directory: str | Path | None = None,
        dtype: np.dtype = np.float32,
        rows: np.ndarray | None = None,
    ) -> None:
        self.n_pool = int(n_pool)
        self.directory = Path(directory) if directory is not None else None
        self.dtype = np.dtype(dtype)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows is not None and self.rows.size > 1 and not (self.rows[1:] > self.rows[:-1]).all():
            raise ValueError("a shard's rows must be ascending pool indices without repeats")
        self._arrays: dict[str, np.ndarray] = {}
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.rows is not None:
                np.save(self.directory / ROWS_FILE, self.rows)

    @property
    def length(self) -> int:
        """Rows per array: the pool size, or the shard size."""
        return self.n_pool if self.rows is None else int(self.rows.size)

    def _allocate(self, name: str, row_shape: tuple[int, ...]) -> np.ndarray:
        shape = (self.length, *row_shape)
        if self.directory is None:
            array = np.full(shape, np.nan, dtype=self.dtype)
        else:
            path = self.directory / f"{name}.npy"
            array = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
            reserve_disk(path)
            array[...] = np.nan
        self._arrays[name] = array
        return array

    def _positions(self, pool_index: np.ndarray) -> np.ndarray:
        if self.rows is None:
            return pool_index
        positions = np.searchsorted(self.rows, pool_index)
        if (positions >= self.rows.size).any() or (self.rows[np.minimum(positions, self.rows.size - 1)] != pool_index).any():
            raise ValueError("pool indices outside this store's shard")
        return positions

    def write(self, name: str, pool_index: np.ndarray, rows: np.ndarray) -> None:
        """Store ``rows[i]`` at pool index ``pool_index[i]``."""
        rows = np.asarray(rows)
        pool_index = np.asarray(pool_index, dtype=np.int64)
        if rows.shape[0] != pool_index.shape[0]:
            raise ValueError(f"output {name!r}: {rows.shape[0]} rows for {pool_index.shape[0]} pool indices")
        array = self._arrays.get(name)
        if array is None:
            array = self._allocate(name, tuple(rows.shape[1:]))
        elif array.shape[1:] != rows.shape[1:]:
            raise ValueError(f"output {name!r}: row shape {rows.shape[1:]} differs from earlier {array.shape[1:]}")
        array[self._positions(pool_index)] = rows

    def flush(self) -> None:
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored outputs in the array-API layout (see the module docstring)."""
        sample_axis = flagged("sample_axis")
        return {name: np.moveaxis(array, 0, 1) if name in sample_axis else array for name, array in self._arrays.items()}


def gather_shards(directories: Sequence[str | Path], n_pool: int, directory: str | Path | None) -> PoolOutputStore:
    """One pool-indexed store from the shard stores written in ``directories`` (one per process).

    Every shard directory holds ``rows.npy`` and one ``NAME.npy`` per output; the
    shards are read as memory maps and copied ``GATHER_CHUNK_ROWS`` rows at a time.
    """
    store = PoolOutputStore(n_pool, directory)
    for shard in map(Path, directories):
        rows = np.load(shard / ROWS_FILE)
        for path in sorted(shard.glob("*.npy")):
            if path.name == ROWS_FILE:
                continue
            values = np.load(path, mmap_mode="r")
            for start in range(0, rows.size, GATHER_CHUNK_ROWS):
                stop = start + GATHER_CHUNK_ROWS
                store.write(path.stem, rows[start:stop], np.asarray(values[start:stop]))
    store.flush()
    return store
