"""ProbCover's math: the purity radius δ and greedy maximum coverage of δ-balls.

Yehuda, Dekel, Hacohen & Weinshall 2022, "Active Learning Through a Covering
Lens" (NeurIPS). With ``B_δ(x) = {x' : ||x − x'|| < δ}`` the ball around a point
and the points that lie in a ball *covered*, ProbCover picks the batch that
covers the most points, greedily (the max-coverage problem is NP-hard; greedy is
a (1 − 1/e)-approximation). The FAISS radius search that builds the balls lives
in ``lit_al.index``; here the graph is a CSR pair ``(offsets, neighbors)``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: ProbCover's purity threshold α: δ is the largest radius at which at least this fraction of balls is pure [P].
PURITY_ALPHA = 0.95
#: Relative margin below the exact purity radius (see :func:`purity_radius`).
PURITY_MARGIN = 1e-6


def purity_radius(foreign_distance: np.ndarray, alpha: float = PURITY_ALPHA) -> float:
    """The largest δ whose ball purity is at least ``alpha`` (ProbCover §4, the choice of δ).

    A ball ``B_δ(x)`` is *pure* when every point in it has x's pseudo-label (k-means
    cluster, k = the number of classes [P]). With ``r(x)`` the distance from x to the
    nearest point of another cluster (``foreign_distance``), the open ball is pure
    iff ``r(x) >= δ``, so the purity is ``π(δ) = #{x : r(x) >= δ} / n``, a
    non-increasing step function of δ. With ``r_(0) <= r_(1) <= …`` sorted and
    ``m = ⌊(1 − α) n⌋``, ``π(δ) >= α`` iff at most m radii lie below δ, so the
    largest such δ is exactly ``r_(m)``: no search over a grid of δ is needed.
    The value returned is ``r_(m) · (1 − 1e-6)``: distances come from float32 FAISS
    searches whose kernels may round the same distance differently in the last
    bits, and the margin (well above that rounding) keeps the ball of the point
    that sets δ pure whichever search measures it.

    ``r(x) = inf`` (no point of another cluster) is pure at every radius. If
    ``r_(m)`` is infinite — the k-means found a single cluster, i.e. the points
    coincide — no finite δ is impure and δ = 0 is returned [R] (empty balls: every
    pick is then a tie).
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    r = np.sort(np.asarray(foreign_distance, dtype=np.float64).ravel())
    if r.size == 0:
        raise ValueError("purity_radius needs at least one point")
    delta = float(r[int(np.floor((1.0 - alpha) * r.size + 1e-9))])
    return delta * (1.0 - PURITY_MARGIN) if np.isfinite(delta) else 0.0


def max_coverage_greedy(
    offsets: np.ndarray,
    neighbors: np.ndarray,
    candidates: np.ndarray,
    covered: np.ndarray,
    k: int,
    *,
    index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximum coverage of balls (ProbCover, Algorithm 1).

    ``offsets``/``neighbors``: the ball of point i is ``neighbors[offsets[i]:offsets[i+1]]``
    (CSR, m points). ``candidates``: (m,) bool, the points that may be picked (the
    unlabeled ones). ``covered``: (m,) bool, the points already covered (those in the
    balls of the labeled points). Repeat ``k`` times::

        i* = argmax_{i candidate, not picked} |B(i) \\ covered|     ties: the lower ``index``
        covered ← covered ∪ B(i*)

    Gains are kept up to date incrementally: a newly covered point j lowers the gain
    of every ball that contains j, found through the transposed graph (which need
    not equal the graph: radius searches can round a boundary distance differently
    in the two directions). Cost O(E) for the updates plus O(m) per pick.

    Once every point is covered all gains are 0 and the remaining picks go to the
    lower ``index`` (default the position) [R] (the authors' code then takes
    ``argmax`` of the zero degrees, i.e. the first point of its array).

    Returns ``(positions (k',), gains (k',))`` in pick order, ``k' = min(k, #candidates)``;
    ``gains`` are the numbers of points each pick newly covered.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    m = offsets.size - 1
    candidates = np.asarray(candidates, dtype=bool)
    covered = np.array(covered, dtype=bool, copy=True)
    if candidates.shape != (m,) or covered.shape != (m,):
        raise ValueError(f"candidates and covered must have shape ({m},)")
    tie = np.arange(m, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    k = int(min(max(int(k), 0), int(candidates.sum())))
    graph = sparse.csr_matrix((np.ones(neighbors.size, dtype=np.int64), neighbors, offsets), shape=(m, m))
    containing = graph.T.tocsr()  # row j: the balls that contain j
    gain = graph @ (~covered).astype(np.int64)
    available = candidates.copy()
    picks = np.empty(k, dtype=np.int64)
    gains = np.empty(k, dtype=np.int64)
    for t in range(k):
        score = np.where(available, gain, -1)
        best = np.flatnonzero(score == score.max())
        pick = int(best[np.argmin(tie[best])])
        picks[t], gains[t] = pick, gain[pick]
        available[pick] = False
        ball = neighbors[offsets[pick] : offsets[pick + 1]]
        fresh = ball[~covered[ball]]
        covered[fresh] = True
        if fresh.size:
            gain -= np.bincount(containing[fresh].indices, minlength=m)
    return picks, gains
