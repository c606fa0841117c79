"""The deterministic top-k rule shared by every score-based strategy.

"Select the top-k by score s" means: sort by (score descending, pool index
ascending) and take the first k (STRATEGIES.md §0, [R]). ``argpartition``/``topk``
break ties arbitrarily; this rule does not.
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, *, largest: bool = True, index: np.ndarray | None = None) -> np.ndarray:
    """Return the positions of the ``k`` best scores, best first, ties by lower index.

    ``scores`` is 1-D. ``index`` gives the tie-breaking key of each position (the
    pool index); by default the position itself. Runs in O(n + k log k): one
    ``argpartition`` finds the k-th value, only the survivors are sorted.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n = scores.shape[0]
    k = int(min(max(k, 0), n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    key = -scores if largest else scores  # smaller key = better
    tie = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    if k < n:
        kth = np.partition(key, k - 1)[k - 1]
        survivors = np.flatnonzero(key <= kth)
    else:
        survivors = np.arange(n)
    order = np.lexsort((tie[survivors], key[survivors]))
    return survivors[order[:k]].astype(np.int64)
