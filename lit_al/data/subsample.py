"""Score a random part of the unlabeled pool per round (IBM's capped pools), seeded per round."""

from __future__ import annotations

import numpy as np

from ..seeding import derive_seed


def subsample_pool(unlabeled: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """``size`` pool indices drawn uniformly without replacement from ``unlabeled``, ascending.

    ``size=None``, or a ``size`` of at least ``len(unlabeled)``, returns every index
    (ascending). The draw is ``numpy.random.default_rng(seed).choice(len(unlabeled),
    size, replace=False)``: the same ``(unlabeled, size, seed)`` gives the same rows.
    """
    rows = np.sort(np.asarray(unlabeled, dtype=np.int64))
    if size is None or size >= rows.size:
        return rows
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    picked = np.random.default_rng(seed).choice(rows.size, size=int(size), replace=False)
    return rows[np.sort(picked)]


def round_subsample_seed(run_seed: int, round_index: int) -> int:
    """The seed of round ``round_index``'s pool subsample: ``derive_seed(run_seed, round_index, "pool_subsample")``."""
    return derive_seed(run_seed, round_index, "pool_subsample")
