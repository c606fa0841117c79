"""The deterministic top-k rule shared by every score-based strategy.

"Select the top-k by score s" means: sort by (score descending, pool index
ascending) and take the first k (STRATEGIES.md §0, [R]). ``argpartition``/``topk``
break ties arbitrarily; this rule does not.
"""

from __future__ import annotations

import numpy as np

#: Every ``PROBE_STRIDE``-th score forms the probe that guesses the k-th best score.
PROBE_STRIDE = 16
#: The guess keeps about this many times k survivors, so one guess almost always suffices.
PROBE_MARGIN = 4


def top_k(scores: np.ndarray, k: int, *, largest: bool = True, index: np.ndarray | None = None) -> np.ndarray:
    """Return the positions of the ``k`` best scores, best first, ties by lower index.

    ``scores`` is 1-D. ``index`` gives the tie-breaking key of each position (the
    pool index); by default the position itself. Runs in O(n + k log k): a cut-off
    at least as good as the k-th best score keeps every candidate (ties included),
    and only the survivors are sorted exactly. The cut-off is guessed from a strided
    probe of the scores and checked (it must keep at least k); when the check fails,
    one ``partition`` of all scores finds the exact k-th value. Either way the
    result is the same.
    """
    scores = np.asarray(scores)
    if scores.dtype != np.float64:
        scores = scores.astype(np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    # one summation finds NaN cheaply (inf - inf is NaN too, so confirm with isnan)
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(scores)
    if np.isnan(total) and np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    n = scores.shape[0]
    k = int(min(max(k, 0), n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    survivors = best_candidates(scores, k, largest=largest) if k < n else np.arange(n)
    values = scores[survivors]
    key = -values if largest else values  # smaller key = better
    tie = survivors if index is None else np.asarray(index, dtype=np.int64)[survivors]
    order = np.lexsort((tie, key))
    return survivors[order[:k]].astype(np.int64)


def best_candidates(scores: np.ndarray, k: int, *, largest: bool = True) -> np.ndarray:
    """Positions whose score is at least as good as the k-th best (at least k of them, ties included), ascending.

    ``0 < k < len(scores)``. A cut-off guessed from every ``PROBE_STRIDE``-th score is
    trusted once it keeps at least k; otherwise one ``partition`` of all scores finds it.
    """
    n = scores.shape[0]
    probe = scores[::PROBE_STRIDE]
    rank = PROBE_MARGIN * k // PROBE_STRIDE
    if 0 < rank < probe.size:
        cut = _kth_best(probe, rank, largest)
        kept = np.flatnonzero(scores >= cut if largest else scores <= cut)
        if kept.size >= k:
            values = scores[kept]
            exact = _kth_best(values, k, largest)
            return kept[values >= exact if largest else values <= exact]
    exact = _kth_best(scores, k, largest)
    return np.flatnonzero(scores >= exact if largest else scores <= exact)


def _kth_best(values: np.ndarray, k: int, largest: bool) -> float:
    """The k-th best of ``values`` (1-based k <= len(values))."""
    if largest:
        return float(np.partition(values, values.size - k)[values.size - k])
    return float(np.partition(values, k - 1)[k - 1])
