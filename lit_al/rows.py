"""Row gathers from pool-sized arrays that may be memory-mapped files.

The scorer keeps a round's outputs in memory-mapped ``.npy`` files indexed by pool
index (``lit_al.outputs.store``). A strategy copies the rows it needs (the unlabeled
ones, say) into an array of its own. Indexing the whole selection at once leaves every
page of the file mapped into the process next to the copy: twice the matrix in the
process's resident memory, 3 GB for a 10^6 × 384 float32 pool. :func:`take_rows`
copies block by block and hands each block's pages back to the kernel once copied
(``madvise(MADV_DONTNEED)``: the data stays in the kernel's page cache and in the file;
the process only stops holding it), so the peak is the copy plus one block.
Ordinary in-memory arrays are simply gathered block by block.
"""

from __future__ import annotations

import mmap
from typing import Iterator

import numpy as np

#: Bytes of source rows copied per block: large enough that the per-block overhead is
#: negligible, small enough that a block is nothing next to a pool-sized matrix.
BLOCK_BYTES = 64 * 1024 * 1024


def block_rows(array: np.ndarray, axis: int = 0) -> int:
    """Rows of ``array`` (along ``axis``) that make up about ``BLOCK_BYTES``."""
    row_bytes = array.dtype.itemsize * max(1, int(np.prod(array.shape)) // max(1, array.shape[axis]))
    return max(1, BLOCK_BYTES // max(1, row_bytes))


def take_rows(array: np.ndarray, rows: np.ndarray, dtype: np.dtype | type | None = None, *, axis: int = 0) -> np.ndarray:
    """``np.take(array, rows, axis)`` as a new C-contiguous array of ``dtype`` (default: the array's).

    Copies in blocks of about ``BLOCK_BYTES`` of source rows; a memory-mapped source
    releases each block's pages from the process once copied (see the module docstring).
    """
    rows = np.asarray(rows, dtype=np.int64)
    dtype = np.dtype(array.dtype if dtype is None else dtype)
    step = block_rows(array, axis)
    if rows.size <= step:  # one block: no second buffer to fill
        out = np.ascontiguousarray(np.take(array, rows, axis=axis), dtype=dtype)
        release_pages(array)
        return out
    shape = list(array.shape)
    shape[axis] = rows.size
    out = np.empty(shape, dtype=dtype)
    for start, block in _taken_blocks(array, rows, axis):
        target = [slice(None)] * out.ndim
        target[axis] = slice(start, start + block.shape[axis])
        out[tuple(target)] = block
    return out


def has_nan_rows(array: np.ndarray, rows: np.ndarray, *, axis: int = 0) -> bool:
    """Whether any of ``rows`` (along ``axis``) holds a NaN, checked block by block without a full copy."""
    return any(bool(np.isnan(block).any()) for _, block in _taken_blocks(array, np.asarray(rows, dtype=np.int64), axis))


def _taken_blocks(array: np.ndarray, rows: np.ndarray, axis: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, np.take(array, rows[start:start + b], axis))`` in order; a memory-mapped
    ``array`` hands each block's pages back once the caller is done with the block."""
    step = block_rows(array, axis)
    for start in range(0, rows.size, step):
        yield start, np.take(array, rows[start : start + step], axis=axis)
        release_pages(array)


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped ``array`` from the process (no-op for other arrays).

    Safe for read-only and shared writable mappings alike (copy-on-write ones are left
    alone): the kernel keeps the data, and any unwritten changes, in its page cache, and a
    later read faults the pages back in. Best effort: where ``madvise`` is unavailable
    nothing happens.
    """
    handle = _shared_mapping(array)
    if handle is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        handle.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):
        pass


def _shared_mapping(array: np.ndarray) -> mmap.mmap | None:
    """The file mapping under ``array`` (itself a ``np.memmap``, or a view of one), unless copy-on-write."""
    obj: object | None = array
    while obj is not None:
        handle = getattr(obj, "_mmap", None)
        if handle is not None:
            # a copy-on-write mapping ("c") would lose its private changes
            return handle if getattr(obj, "mode", "c") in ("r", "r+", "w+") else None
        obj = getattr(obj, "base", None)
    return None


class RowSource:
    """Rows ``rows`` of a pool-sized ``array`` as a ``(len(rows), ...)`` matrix that is never copied whole.

    What ``lit_al.index`` accepts in place of an array where it only needs some rows at a
    time (an index filled block by block, queries in blocks): ``take(positions)`` copies
    the rows at those positions, ``blocks()`` walks all of them in order.
    """

    def __init__(self, array: np.ndarray, rows: np.ndarray, dtype: np.dtype | type = np.float32) -> None:
        self.array = array
        self.rows = np.asarray(rows, dtype=np.int64)
        self.dtype = np.dtype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.rows.size), *self.array.shape[1:])

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        """The rows at ``positions`` (into this source) as a C-contiguous ``dtype`` array."""
        return take_rows(self.array, self.rows[positions], self.dtype)

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, rows[start:start + b])`` copies, in order, about ``BLOCK_BYTES`` each."""
        step = block_rows(self.array)
        for start in range(0, self.rows.size, step):
            yield start, self.take(slice(start, start + step))


def row_blocks(matrix: np.ndarray | RowSource) -> Iterator[tuple[int, np.ndarray]]:
    """Walk a matrix (array or :class:`RowSource`) in row blocks as float32 C-contiguous copies or views.

    A memory-mapped array's pages are released after each block (see :func:`release_pages`).
    """
    if isinstance(matrix, RowSource):
        yield from matrix.blocks()
        return
    step = block_rows(matrix)
    for start in range(0, matrix.shape[0], step):
        yield start, np.ascontiguousarray(matrix[start : start + step], dtype=np.float32)
        release_pages(matrix)


def whole(matrix: np.ndarray | RowSource) -> np.ndarray:
    """All rows as one float32 C-contiguous array: an array that already is one is returned as is."""
    if isinstance(matrix, RowSource):
        return matrix.take(slice(None))
    return np.ascontiguousarray(matrix, dtype=np.float32)


def rows_at(matrix: np.ndarray | RowSource, positions: np.ndarray) -> np.ndarray:
    """``matrix[positions]`` as a float32 C-contiguous array, for an array or a :class:`RowSource`."""
    if isinstance(matrix, RowSource):
        return matrix.take(positions)
    return np.ascontiguousarray(matrix[positions], dtype=np.float32)
