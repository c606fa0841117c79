"""Learning-curve summaries and significance tests (STRATEGIES.md §2.6–§2.8).

- :func:`area_under_learning_curve`: ALC, the normalised trapezoid area (§2.6 b) [R].
- :func:`labels_to_reach`: labels needed to reach all-data performance (BEAL,
  Wang et al. 2024; §2.7), interpolated and on the grid.
- :func:`wilcoxon_vs_reference`, :func:`wilcoxon_pairwise`: Wilcoxon signed-rank
  tests with Bonferroni correction (IBM, Ein-Dor et al. 2020; §2.8).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal, Mapping

import numpy as np
from scipy import stats

Alternative = Literal["two-sided", "less", "greater"]


# ---------------------------------------------------------------- §2.6 (b)
def area_under_learning_curve(n_labels: np.ndarray, metric: np.ndarray) -> float | np.ndarray:
    """Area under the learning curve, ALC (STRATEGIES.md §2.6 b) [R].

    ``ALC = (1/(n_max − n_0)) ∫_{n_0}^{n_max} m(n) dn`` by the trapezoid rule over the
    evaluated labeled-set sizes ``n_0 < n_1 < … < n_max``:
    ``ALC = Σ_i (n_{i+1} − n_i)·(m_i + m_{i+1})/2 / (n_max − n_0)``, on the metric's scale
    (a constant curve m gives m).

    ``metric`` has shape (P,) or (..., P) with P = len(n_labels) (e.g. one row per
    seed); the area is taken along the last axis, giving a float or an array.
    ``n_labels`` must be strictly increasing with at least two points.
    """
    n = np.asarray(n_labels, dtype=np.float64).ravel()
    m = np.asarray(metric, dtype=np.float64)
    if n.size < 2:
        raise ValueError("need at least two labeled-set sizes")
    if m.shape[-1:] != (n.size,):
        raise ValueError(f"metric's last axis must have {n.size} points, got shape {m.shape}")
    widths = np.diff(n)
    if np.any(widths <= 0):
        raise ValueError("n_labels must be strictly increasing")
    area = np.sum(widths * (m[..., 1:] + m[..., :-1]) / 2.0, axis=-1) / (n[-1] - n[0])
    return float(area) if np.ndim(area) == 0 else area


# ---------------------------------------------------------------- §2.7
@dataclass(frozen=True)
class LabelsToReach:
    """Labels needed to reach a target (STRATEGIES.md §2.7).

    - ``n_interpolated``: first crossing by linear interpolation between grid points.
    - ``n_grid``: the first grid size whose metric is ≥ the target.
    - ``reached``: False when no grid point reaches the target; both counts are then
      ``pool_size`` (100%).
    - ``pool_size``: the 100% reference; ``fraction_*`` = ``n_* / pool_size``.
    """

    n_interpolated: float
    n_grid: float
    reached: bool
    pool_size: float

    @property
    def fraction_interpolated(self) -> float:
        return self.n_interpolated / self.pool_size

    @property
    def fraction_grid(self) -> float:
        return self.n_grid / self.pool_size


def labels_to_reach(
    n_labels: np.ndarray,
    metric: np.ndarray,
    target: float,
    pool_size: float | None = None,
) -> LabelsToReach:
    """Labels (and fraction of the pool) needed to reach ``target`` (BEAL; STRATEGIES.md §2.7).

    ``q* = min { q : m̄(q) ≥ m_all }``, with ``target = m_all`` (the all-data metric) and
    ``metric`` the mean curve ``m̄`` over runs at the sizes ``n_labels`` (strictly
    increasing).

    - Grid value: ``n_i*`` with ``i* = min { i : m_i ≥ target }``.
    - Interpolated [R]: if ``i* = 0``, ``n_0``; otherwise the point on the segment
      between ``(n_{i*−1}, m_{i*−1})`` (below the target) and ``(n_{i*}, m_{i*})``:
      ``n = n_{i*−1} + (target − m_{i*−1}) / (m_{i*} − m_{i*−1}) · (n_{i*} − n_{i*−1})``.
    - Never reached (NaN never reaches): both are ``pool_size`` (100%).
    - ``pool_size`` defaults to ``n_labels[-1]`` (BEAL: the last point exhausts the
      pool); the result's ``fraction_*`` properties give the fraction form.
    """
    n = np.asarray(n_labels, dtype=np.float64).ravel()
    m = np.asarray(metric, dtype=np.float64).ravel()
    if n.size == 0 or n.size != m.size:
        raise ValueError(f"n_labels and metric must be non-empty and equally long, got {n.size}, {m.size}")
    if np.any(np.diff(n) <= 0):
        raise ValueError("n_labels must be strictly increasing")
    pool = float(n[-1]) if pool_size is None else float(pool_size)
    if pool <= 0:
        raise ValueError(f"pool_size must be positive, got {pool}")
    hits = np.flatnonzero(m >= target)
    if hits.size == 0:
        return LabelsToReach(pool, pool, False, pool)
    i = int(hits[0])
    grid = float(n[i])
    if i == 0:
        return LabelsToReach(grid, grid, True, pool)
    # m[i-1] < target <= m[i] (m[i-1] may be NaN: then fall back to the grid value)
    lo_n, hi_n, lo_m, hi_m = n[i - 1], n[i], m[i - 1], m[i]
    if np.isnan(lo_m):
        return LabelsToReach(grid, grid, True, pool)
    interpolated = float(lo_n + (target - lo_m) / (hi_m - lo_m) * (hi_n - lo_n))
    return LabelsToReach(interpolated, grid, True, pool)


# ---------------------------------------------------------------- §2.8
@dataclass(frozen=True)
class WilcoxonResult:
    """One Wilcoxon signed-rank comparison (STRATEGIES.md §2.8).

    ``p_adjusted = min(1, p_value · m)`` (Bonferroni) with ``m = n_comparisons``.
    ``note`` explains a p-value not computed by scipy (all differences zero).
    """

    statistic: float
    p_value: float
    p_adjusted: float
    n_pairs: int
    n_comparisons: int
    note: str | None = None

    @property
    def significant(self) -> bool:
        """``p_adjusted < 0.05`` (IBM's reporting threshold)."""
        return bool(self.p_adjusted < 0.05)


ALL_ZERO_NOTE = (
    "all paired differences are zero: no evidence of a difference; p = 1.0 "
    "(scipy raises or returns nan/1.0 with a warning depending on version)"
)


def bonferroni(p_value: float, n_comparisons: int) -> float:
    """Bonferroni correction ``p_adj = min(1, p · m)`` (STRATEGIES.md §2.8); NaN stays NaN."""
    if n_comparisons < 1:
        raise ValueError(f"n_comparisons must be >= 1, got {n_comparisons}")
    p = float(p_value)
    return p if np.isnan(p) else min(1.0, p * n_comparisons)


def _signed_rank(x: np.ndarray, y: np.ndarray, alternative: Alternative, zero_method: str) -> tuple[float, float, str | None]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size == 0:
        raise ValueError(f"paired arrays must be non-empty and equally long, got {x.size}, {y.size}")
    d = x - y
    if not np.isnan(d).any() and np.all(d == 0):
        return 0.0, 1.0, ALL_ZERO_NOTE
    result = stats.wilcoxon(x, y, zero_method=zero_method, alternative=alternative)
    return float(result.statistic), float(result.pvalue), None


def wilcoxon_vs_reference(
    scores: Mapping[str, np.ndarray],
    reference: str,
    alternative: Alternative = "two-sided",
    zero_method: str = "wilcox",
) -> dict[str, WilcoxonResult]:
    """Each strategy vs a reference (e.g. Random) by Wilcoxon signed-rank + Bonferroni (IBM; STRATEGIES.md §2.8).

    ``scipy.stats.wilcoxon(S, R, alternative=alternative, zero_method=zero_method)``
    on paired arrays the caller aligned (IBM: pairs over datasets × AL iterations
    1..5 × seeds). ``alternative`` is the test's sidedness (the paper does not say;
    [R] two-sided); "greater" tests S > R. Bonferroni: ``p_adj = min(1, p·m)`` with
    ``m = len(scores) − 1`` comparisons made (IBM: m = 6).

    All paired differences zero: scipy raises (older versions) or returns nan/1.0 with
    a warning; there is no evidence of a difference, so p = 1.0 and ``note`` says why.
    Returns ``{strategy: WilcoxonResult}`` in the order of ``scores``.
    """
    if reference not in scores:
        raise KeyError(f"reference {reference!r} not in scores")
    others = [name for name in scores if name != reference]
    results = _bonferroni_tests(scores, [(name, reference) for name in others], alternative, zero_method)
    return dict(zip(others, results))


def wilcoxon_pairwise(
    scores: Mapping[str, np.ndarray],
    alternative: Alternative = "two-sided",
    zero_method: str = "wilcox",
) -> dict[tuple[str, str], WilcoxonResult]:
    """All pairs of strategies by Wilcoxon signed-rank + Bonferroni (IBM; STRATEGIES.md §2.8).

    For every pair ``(a, b)`` in the order of ``scores`` (``itertools.combinations``),
    ``scipy.stats.wilcoxon(scores[a], scores[b])``; ``p_adj = min(1, p·m)`` with
    ``m = C(len(scores), 2)`` comparisons (IBM: 21 among 7 strategies). All-zero
    differences give p = 1.0 with a ``note`` (see :func:`wilcoxon_vs_reference`).
    """
    pairs = list(combinations(scores, 2))
    return dict(zip(pairs, _bonferroni_tests(scores, pairs, alternative, zero_method)))


def _bonferroni_tests(
    scores: Mapping[str, np.ndarray], pairs: list[tuple[str, str]], alternative: Alternative, zero_method: str
) -> list[WilcoxonResult]:
    """``scipy.stats.wilcoxon(scores[a], scores[b])`` for each pair, corrected for ``m = len(pairs)`` comparisons."""
    m = len(pairs)
    results = []
    for a, b in pairs:
        stat, p, note = _signed_rank(scores[a], scores[b], alternative, zero_method)
        results.append(WilcoxonResult(stat, p, bonferroni(p, m), int(np.size(scores[a])), m, note))
    return results
