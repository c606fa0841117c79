"""Per-example prediction outputs, stored by pool index.

``predict_step`` produces, for each batch, one row per example for every output
the strategy asked for. ``PoolOutputStore`` writes those rows into arrays with
one row per pool example (rows never written stay NaN), backed by ``.npy``
memory maps when given a directory, so a 10^6 pool never sits in memory as
Python objects.

Array layout seen by strategies (``PoolOutputStore.arrays()``):

- every output: pool index on axis 0, e.g. ``probs`` (n, C), ``embeddings`` (n, d);
- except ``mc_probs``: (T, n, C), pool index on axis 1 (rows are written as
  (B, T, C) and exposed through a moved-axis view).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Outputs whose per-example rows carry a leading sample axis that the array API puts first.
SAMPLE_AXIS_FIRST = frozenset({"mc_probs"})


class PoolOutputStore:
    """Disk-backed (or in-memory) arrays indexed by pool index."""

    def __init__(self, n_pool: int, directory: str | Path | None = None, dtype: np.dtype = np.float32) -> None:
        self.n_pool = int(n_pool)
        self.directory = Path(directory) if directory is not None else None
        self.dtype = np.dtype(dtype)
        self._arrays: dict[str, np.ndarray] = {}
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _allocate(self, name: str, row_shape: tuple[int, ...]) -> np.ndarray:
        shape = (self.n_pool, *row_shape)
        if self.directory is None:
            array = np.full(shape, np.nan, dtype=self.dtype)
        else:
            array = np.lib.format.open_memmap(self.directory / f"{name}.npy", mode="w+", dtype=self.dtype, shape=shape)
            array[...] = np.nan
        self._arrays[name] = array
        return array

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
        array[pool_index] = rows

    def flush(self) -> None:
        for array in self._arrays.values():
            if isinstance(array, np.memmap):
                array.flush()

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored outputs in the array-API layout (see the module docstring)."""
        out: dict[str, np.ndarray] = {}
        for name, array in self._arrays.items():
            out[name] = np.moveaxis(array, 0, 1) if name in SAMPLE_AXIS_FIRST else array
        return out
