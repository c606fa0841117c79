"""Analysis metrics (STRATEGIES.md §2): hand-computed examples and brute-force references."""

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from lit_al.analysis import (
    area_under_learning_curve,
    batch_overlap,
    bonferroni,
    diversity,
    labels_to_reach,
    mean_entropy_under_reference_model,
    representativeness,
    token_jaccard,
    token_jaccard_from_counts,
    token_jaccard_from_ids,
    wilcoxon_pairwise,
    wilcoxon_vs_reference,
)
from lit_al.analysis.statistics import ALL_ZERO_NOTE


def _line(values):
    """Points on the x axis of R²."""
    return np.stack([np.asarray(values, dtype=float), np.zeros(len(values))], axis=1)


def _pairwise(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


# ---------------------------------------------------------------- §2.1 diversity
def test_diversity_hand_computed():
    u = _line([0, 1, 3, 6])
    b = _line([0, 6])
    # paper NN1: distances to nearest of {0, 6}: 0, 1, 3, 0 -> mean 1 -> D = 1
    assert diversity(u, b, mode="paper") == pytest.approx(1.0)
    # ibm_code NN2: second-nearest of {0, 6}: 6, 5, 3, 6 -> mean 20/4 = 5 -> D = 0.2
    assert diversity(u, b, mode="ibm_code") == pytest.approx(0.2)


def test_diversity_edge_cases():
    u = _line([0, 1])
    assert diversity(u, u, mode="paper") == math.inf  # every distance 0
    with pytest.raises(ValueError):
        diversity(u, _line([0]), mode="ibm_code")  # NN2 needs |B| >= 2
    with pytest.raises(ValueError):
        diversity(u, u, mode="bogus")


@pytest.mark.parametrize("mode,rank", [("paper", 0), ("ibm_code", 1)])
def test_diversity_brute_force(mode, rank):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(50, 5))
    batch = rng.choice(50, size=8, replace=False)
    b = u[batch]
    dist = np.sort(_pairwise(u, b), axis=1)[:, rank]
    assert diversity(u, b, mode=mode) == pytest.approx(1.0 / dist.mean(), rel=1e-5)


# ---------------------------------------------------------------- §2.2 representativeness
def test_representativeness_hand_computed():
    u = _line([0, 1, 2, 4])
    # K = 2. KNN(0) = (1 + 2)/2 = 1.5; KNN(4) = (2 + 3)/2 = 2.5; mean 2 -> Rep = 0.5
    assert representativeness(u, [0, 3], k=2) == pytest.approx(0.5)
    # include_self: KNN(0) = (0+1+2)/3 = 1; KNN(4) = (0+2+3)/3 = 5/3; mean 4/3 -> Rep = 0.75
    assert representativeness(u, [0, 3], k=2, include_self=True) == pytest.approx(0.75)


@pytest.mark.parametrize("include_self", [False, True])
def test_representativeness_brute_force(include_self):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(50, 4))
    batch = rng.choice(50, size=7, replace=False)
    d = np.sort(_pairwise(u[batch], u), axis=1)  # column 0 is the self-distance 0
    k = 10
    knn = d[:, : k + 1].sum(1) / (k + 1) if include_self else d[:, 1 : k + 1].mean(1)
    expected = 1.0 / knn.mean()
    assert representativeness(u, batch, k=k, include_self=include_self) == pytest.approx(expected, rel=1e-5)


def test_representativeness_rejects_bad_positions():
    with pytest.raises(ValueError):
        representativeness(_line([0, 1]), [])
    with pytest.raises(ValueError):
        representativeness(_line([0, 1]), [2])


# ---------------------------------------------------------------- §2.3 Gd
def test_token_jaccard_hand_computed():
    d = [[101, 5, 6, 102]]
    rest = [[101, 6, 7, 102], [101, 8, 102]]
    # V_D = {101,5,6,102}, V_D' = {101,6,7,8,102}; ∩ = {101,6,102} (3), ∪ = {101,5,6,7,8,102} (6)
    assert token_jaccard(d, rest) == pytest.approx(0.5)
    # ignoring specials: {5,6} vs {6,7,8}: ∩ = 1, ∪ = 4
    assert token_jaccard(d, rest, ignore_ids=[101, 102]) == pytest.approx(0.25)
    assert token_jaccard([], []) == 0.0


def test_token_jaccard_from_ids():
    ragged = [[101, 5, 6, 102], [101, 6, 7, 102], [101, 8, 102]]
    assert token_jaccard_from_ids(ragged, [True, False, False]) == pytest.approx(0.5)
    padded = np.array([[101, 5, 6, 102], [101, 6, 7, 102], [101, 8, 102, 0]])
    # padding id 0 joins V_D': ∩ = 3, ∪ = {0,101,5,6,7,8,102} (7)
    assert token_jaccard_from_ids(padded, np.array([True, False, False])) == pytest.approx(3 / 7)
    with pytest.raises(ValueError):
        token_jaccard_from_ids(padded, [True, False])



def test_token_jaccard_from_counts_matches_the_id_sets():
    rng = np.random.default_rng(3)
    rows = [rng.integers(0, 40, size=rng.integers(1, 9)) for _ in range(60)]
    total = np.bincount(np.concatenate(rows))
    selected = np.zeros_like(total)
    mask = np.zeros(60, dtype=bool)
    for batch in np.array_split(rng.permutation(60)[:45], 5):  # D grows round by round
        mask[batch] = True
        selected += np.bincount(np.concatenate([rows[i] for i in batch]), minlength=total.size)
        for ignore in (None, [0, 5, 39, 1000]):
            assert token_jaccard_from_counts(selected, total, ignore) == pytest.approx(
                token_jaccard_from_ids(rows, mask, ignore)
            )
    assert token_jaccard_from_counts(np.zeros(3, int), np.zeros(3, int)) == 0.0
    with pytest.raises(ValueError, match="subset"):
        token_jaccard_from_counts(np.array([2]), np.array([1]))

# ---------------------------------------------------------------- §2.4 Gu
def test_mean_entropy_hand_computed():
    # H([1, 0]) = 0 (0·ln(1/0) := 0); H([.5, .5]) = ln 2 -> mean ln2 / 2
    assert mean_entropy_under_reference_model(np.array([[1.0, 0.0], [0.5, 0.5]])) == pytest.approx(math.log(2) / 2)
    # uniform over 4 classes: ln 4
    assert mean_entropy_under_reference_model(np.full((3, 4), 0.25)) == pytest.approx(math.log(4))
    with pytest.raises(ValueError):
        mean_entropy_under_reference_model(np.zeros((0, 2)))


# ---------------------------------------------------------------- §2.5 overlap
def test_batch_overlap_hand_computed():
    # {1,2,3,4} ∩ {3,4,5,6} = {3,4}: 2/4 = 0.5; with k = 50: 2/50 = 0.04
    assert batch_overlap([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(0.5)
    assert batch_overlap(np.array([1, 2, 3, 4]), np.array([3, 4, 5, 6]), k=50) == pytest.approx(0.04)
    assert batch_overlap([1, 2], [3, 4]) == 0.0
    with pytest.raises(ValueError):
        batch_overlap([], [])


# ---------------------------------------------------------------- §2.6 (b) ALC
def test_area_under_learning_curve_hand_computed():
    # trapezoids: 10·(0.5+0.7)/2 = 6; 20·(0.7+0.9)/2 = 16; (6 + 16)/(30 − 0) = 22/30
    assert area_under_learning_curve([0, 10, 30], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    # a constant curve keeps its value
    assert area_under_learning_curve([100, 200, 400], [0.8, 0.8, 0.8]) == pytest.approx(0.8)
    # one row per seed
    per_seed = area_under_learning_curve([0, 10, 30], np.array([[0.5, 0.7, 0.9], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(per_seed, [22 / 30, 1.0])
    with pytest.raises(ValueError):
        area_under_learning_curve([0, 0, 1], [1, 1, 1])
    with pytest.raises(ValueError):
        area_under_learning_curve([0], [1])


# ---------------------------------------------------------------- §2.7 labels to reach
def test_labels_to_reach_hand_computed():
    n = [500, 1000, 1500, 2000]
    m = [0.5, 0.6, 0.8, 0.85]
    # first m >= 0.7 at 1500; interpolation 1000 + (0.7−0.6)/(0.8−0.6)·500 = 1250
    r = labels_to_reach(n, m, 0.7)
    assert (r.n_interpolated, r.n_grid, r.reached) == (pytest.approx(1250), 1500, True)
    assert r.fraction_interpolated == pytest.approx(1250 / 2000)
    assert r.fraction_grid == pytest.approx(0.75)
    # exact hit at a grid point: 500 + (0.6−0.5)/(0.6−0.5)·500 = 1000
    assert labels_to_reach(n, m, 0.6).n_interpolated == pytest.approx(1000)
    # reached at the first point
    assert labels_to_reach(n, m, 0.4).n_interpolated == 500
    # never reached: the pool size (100%)
    never = labels_to_reach(n, m, 0.9, pool_size=10_000)
    assert (never.n_interpolated, never.n_grid, never.reached) == (10_000, 10_000, False)
    assert never.fraction_interpolated == 1.0
    # fraction form with a given pool: 1250/10000
    assert labels_to_reach(n, m, 0.7, pool_size=10_000).fraction_interpolated == pytest.approx(0.125)


# ---------------------------------------------------------------- §2.8 Wilcoxon + Bonferroni
def test_wilcoxon_hand_computed():
    r = np.zeros(5)
    s = np.array([1.0, 2, 3, 4, 5])
    scores = {"Random": r, "S": s, "T": -s}
    out = wilcoxon_vs_reference(scores, "Random")
    # all 5 differences positive: W = min(R+, R−) = 0, exact two-sided p = 2/2^5 = 0.0625; m = 2
    assert out["S"].statistic == 0.0
    assert out["S"].p_value == pytest.approx(0.0625)
    assert out["S"].p_adjusted == pytest.approx(0.125)
    assert out["S"].n_comparisons == 2 and out["S"].n_pairs == 5
    # one-sided "greater": R+ = 15, p = 1/32
    greater = wilcoxon_vs_reference(scores, "Random", alternative="greater")
    assert greater["S"].statistic == 15.0
    assert greater["S"].p_value == pytest.approx(1 / 32)
    assert greater["T"].p_value == pytest.approx(1.0)


def test_wilcoxon_matches_scipy_and_bonferroni_cap():
    rng = np.random.default_rng(2)
    scores = {name: rng.normal(size=25) + shift for name, shift in zip("RABCD", [0, 0.8, 0.1, 0, -0.2])}
    vs = wilcoxon_vs_reference(scores, "R")
    assert list(vs) == ["A", "B", "C", "D"]
    for name, result in vs.items():
        ref = stats.wilcoxon(scores[name], scores["R"])
        assert result.p_value == pytest.approx(float(ref.pvalue))
        assert result.statistic == pytest.approx(float(ref.statistic))
        assert result.p_adjusted == pytest.approx(min(1.0, float(ref.pvalue) * 4))
    pairs = wilcoxon_pairwise(scores)
    assert list(pairs) == list(combinations("RABCD", 2))
    for (a, b), result in pairs.items():
        p = float(stats.wilcoxon(scores[a], scores[b]).pvalue)
        assert result.p_value == pytest.approx(p)
        assert result.p_adjusted == pytest.approx(min(1.0, p * 10))
        assert result.n_comparisons == 10
    # the cap: at least one large raw p-value is adjusted to exactly 1
    assert any(r.p_value * 10 > 1 and r.p_adjusted == 1.0 for r in pairs.values())
    assert bonferroni(0.3, 21) == 1.0 and bonferroni(0.001, 21) == pytest.approx(0.021)


def test_wilcoxon_all_zero_differences():
    x = np.array([0.5, 0.6, 0.7])
    out = wilcoxon_vs_reference({"R": x, "S": x.copy()}, "R")
    assert out["S"].p_value == 1.0 and out["S"].p_adjusted == 1.0
    assert out["S"].note == ALL_ZERO_NOTE
    assert wilcoxon_pairwise({"a": x, "b": x.copy()})[("a", "b")].p_value == 1.0
    with pytest.raises(ValueError):
        wilcoxon_vs_reference({"R": x, "S": x[:2]}, "R")
    with pytest.raises(KeyError):
        wilcoxon_vs_reference({"S": x}, "R")
