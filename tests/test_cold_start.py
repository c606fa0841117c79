"""ProbCover and TypiClust: brute-force references on small arrays (lit_al.functional.coverage / typicality, lit_al.index)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from lit_al import index as I
from lit_al.errors import StrategyError
from lit_al.functional import coverage as Cov
from lit_al.functional import typicality as Typ
from lit_al.strategies import get_strategy


def _blobs(seed=0, sizes=(30, 20, 12), d=4, spread=0.4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(sizes), d)) * 4.0
    return np.concatenate([c + rng.normal(size=(s, d)) * spread for c, s in zip(centers, sizes)]).astype(np.float32)


# ------------------------------------------------------------------ index
def test_radius_neighbors_matches_pairwise_distances():
    x = _blobs()
    offsets, neighbors = I.radius_neighbors(x, 1.1, block_size=16)
    dist = cdist(x.astype(np.float64), x.astype(np.float64))
    for i in range(x.shape[0]):
        assert neighbors[offsets[i] : offsets[i + 1]].tolist() == np.flatnonzero(dist[i] < 1.1).tolist()
    offsets, neighbors = I.radius_neighbors(x, 0.0)
    assert neighbors.size == 0 and offsets.tolist() == [0] * (x.shape[0] + 1)
    dup = np.zeros((3, 2), dtype=np.float32)
    offsets, neighbors = I.radius_neighbors(dup, 1e-6)
    assert neighbors.tolist() == [0, 1, 2] * 3  # coincident points are all in each other's ball


def test_nearest_foreign_distance_brute_force():
    x = _blobs()
    labels = np.repeat([0, 1, 2], [30, 20, 12])
    dist = cdist(x.astype(np.float64), x.astype(np.float64))
    expected = np.where(labels[:, None] != labels[None, :], dist, np.inf).min(axis=1)
    np.testing.assert_allclose(I.nearest_foreign_distance(x, labels), expected, rtol=1e-5)
    assert np.isinf(I.nearest_foreign_distance(x, np.zeros(x.shape[0]))).all()


def test_kmeans_labels_finds_separated_blobs():
    x = _blobs()
    labels = I.kmeans_labels(x, 3, np.random.default_rng(0))
    truth = np.repeat([0, 1, 2], [30, 20, 12])
    assert all(np.unique(labels[truth == c]).size == 1 for c in range(3))
    assert np.unique(labels).size == 3
    assert I.kmeans_labels(x[:4], 9, np.random.default_rng(0)).tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------ ProbCover
def _brute_purity(x, pseudo, delta):
    dist = cdist(x.astype(np.float64), x.astype(np.float64))
    pure = [(pseudo[dist[i] < delta] == pseudo[i]).all() for i in range(x.shape[0])]
    return float(np.mean(pure))


@pytest.mark.parametrize("alpha", [0.95, 0.8, 1.0])
def test_purity_radius_is_the_largest_pure_enough_delta(alpha):
    x = _blobs(spread=1.2)  # overlapping blobs: purity drops with δ
    pseudo = I.kmeans_labels(x, 3, np.random.default_rng(1))
    delta = Cov.purity_radius(I.nearest_foreign_distance(x, pseudo), alpha)
    assert _brute_purity(x, pseudo, delta) >= alpha - 1e-12
    assert _brute_purity(x, pseudo, delta * (1 + 3e-6)) < alpha  # any larger δ is not pure enough


def test_purity_radius_hand_values():
    r = np.array([0.5, 0.1, 0.3, 0.9, 0.7, 0.2, 0.4, 0.8, 0.6, 1.0])
    assert Cov.purity_radius(r, 0.8) == pytest.approx(0.3, rel=2e-6)  # at most 2 of 10 radii may lie below δ
    assert Cov.purity_radius(r, 0.8) < 0.3  # the margin below the boundary
    assert Cov.purity_radius(r, 1.0) == pytest.approx(0.1, rel=2e-6)
    assert Cov.purity_radius(np.full(4, np.inf), 0.95) == 0.0  # one cluster: no finite impure δ
    with pytest.raises(ValueError, match="alpha"):
        Cov.purity_radius(r, 0.0)


def _brute_greedy(x, delta, candidates, covered, k):
    ball = cdist(x.astype(np.float64), x.astype(np.float64)) < delta
    covered = covered.copy()
    available = candidates.copy()
    picks, gains = [], []
    for _ in range(k):
        gain = (ball & ~covered[None, :]).sum(axis=1)
        gain[~available] = -1
        i = int(np.argmax(gain))  # the first maximum: the lowest position
        picks.append(i)
        gains.append(int(gain[i]))
        available[i] = False
        covered |= ball[i]
    return picks, gains


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_coverage_greedy_matches_dense_brute_force(seed):
    x = _blobs(seed=seed, spread=1.0)
    rng = np.random.default_rng(seed)
    labeled = np.zeros(x.shape[0], dtype=bool)
    labeled[rng.choice(x.shape[0], 5, replace=False)] = True
    delta = 1.3
    offsets, neighbors = I.radius_neighbors(x, delta)
    ball = cdist(x.astype(np.float64), x.astype(np.float64)) < delta
    covered = ball[labeled].any(axis=0)
    picks, gains = Cov.max_coverage_greedy(offsets, neighbors, ~labeled, covered, 40)
    ref_picks, ref_gains = _brute_greedy(x, delta, ~labeled, covered, 40)
    assert picks.tolist() == ref_picks and gains.tolist() == ref_gains
    assert gains[-1] == 0  # everything covered: the rest are ties, taken by the lowest position


def test_max_coverage_greedy_ties_follow_the_index():
    offsets, neighbors = np.arange(5), np.arange(4)  # four points, each ball holds only itself
    picks, gains = Cov.max_coverage_greedy(offsets, neighbors, np.ones(4, bool), np.zeros(4, bool), 2, index=np.array([7, 3, 9, 5]))
    assert picks.tolist() == [1, 3] and gains.tolist() == [1, 1]


def test_probcover_strategy_covers_the_uncovered_blob():
    x = _blobs(sizes=(30, 20, 12), spread=0.3)
    labels = np.full((x.shape[0], 3), np.nan)
    labeled = np.arange(30, 35)  # inside the second blob: its ball covers that blob
    labels[labeled] = np.eye(3)[1]
    unlabeled = np.setdiff1d(np.arange(x.shape[0]), labeled)
    strategy = get_strategy("probcover", delta=2.0, normalize=False)
    selection = strategy.select({"pretrained_embeddings": x, "labels": labels}, labeled, unlabeled, 2)
    assert sorted(np.searchsorted([0, 30, 50], selection.indices, side="right").tolist()) == [1, 3]  # blobs 0 and 2
    assert selection.scores.tolist() == [30, 12] and selection.info["delta"] == 2.0
    auto = get_strategy("probcover", normalize=False)
    chosen = auto.select({"pretrained_embeddings": x, "labels": labels}, labeled, unlabeled, 2)
    assert 0.0 < chosen.info["delta"] < 20.0


def test_probcover_options():
    finetuned = get_strategy("probcover", encoder="finetuned", delta=0.5)
    assert finetuned.needs == {"embeddings"} and finetuned.requires_trained_model
    assert finetuned.cold_start_fallback["encoder"] == "pretrained" and finetuned.cold_start_fallback["delta"] == 0.5
    cold = get_strategy("probcover")
    assert cold.needs == {"pretrained_embeddings"} and not cold.requires_trained_model and cold.cold_start_fallback is None
    with pytest.raises(StrategyError, match="probcover: delta"):
        get_strategy("probcover", delta=0.0)
    with pytest.raises(StrategyError, match="probcover: alpha"):
        get_strategy("probcover", alpha=1.5)
    with pytest.raises(StrategyError, match="probcover: encoder"):
        get_strategy("probcover", encoder="frozen")


def test_probcover_fixes_delta_at_its_first_selection():
    """δ is chosen once per run, as the paper fixes it per dataset: later rounds' seeds do not move it."""
    x = np.random.default_rng(0).normal(size=(240, 6)).astype(np.float32)  # no clusters: k-means varies with the seed
    labels = np.full((x.shape[0], 3), np.nan)
    labeled = np.arange(6)
    labels[labeled] = np.eye(3)[np.arange(6) % 3]
    unlabeled = np.arange(6, x.shape[0])
    outputs = {"pretrained_embeddings": x, "labels": labels}
    fresh = [get_strategy("probcover").select(outputs, labeled, unlabeled, 4, seed=s).info["delta"] for s in range(4)]
    assert len(set(fresh)) > 1  # what each round would choose afresh: δ would drift
    strategy = get_strategy("probcover")
    deltas = [strategy.select(outputs, labeled, unlabeled, 4, seed=s).info["delta"] for s in range(4)]
    assert deltas == [fresh[0]] * 4
    assert strategy.run_record() == {"delta": {"pretrained_embeddings": fresh[0]}}
    resumed = get_strategy("probcover")  # another process: the loop hands the record back
    resumed.restore_run_record(strategy.run_record())
    assert resumed.select(outputs, labeled, unlabeled, 4, seed=3).info["delta"] == fresh[0]
    assert get_strategy("probcover", delta=0.7).run_record() == {}  # a given δ is not a choice to record


# ------------------------------------------------------------------ TypiClust
def _brute_typiclust(x, clusters, labeled, k, K=20, min_size=5, power=1):
    dist = cdist(x.astype(np.float64), x.astype(np.float64)) ** power
    ids = np.unique(clusters)
    held = {c: int(labeled[clusters == c].sum()) for c in ids}
    size = {c: int((clusters == c).sum()) for c in ids}
    ordered = sorted(ids, key=lambda c: (held[c], -size[c], c))
    groups = [[c for c in ordered if size[c] > min_size], [c for c in ordered if size[c] <= min_size]]
    open_ = ~labeled
    picks = []
    for group in groups:
        while len(picks) < k and any(open_[clusters == c].any() for c in group):
            for c in group:
                members = np.flatnonzero(open_ & (clusters == c))
                if len(picks) == k or members.size == 0:
                    continue
                kk = max(1, min(K, members.size // 2))
                sub = dist[np.ix_(members, members)]
                np.fill_diagonal(sub, np.inf)
                mean = np.sort(sub, axis=1)[:, :kk].mean(axis=1) if members.size > 1 else np.zeros(1)
                picks.append(int(members[np.argmin(mean)]))
                open_[picks[-1]] = False
    return picks


@pytest.mark.parametrize("power", [1, 2])
def test_typiclust_select_matches_brute_force(power):
    x = _blobs(sizes=(40, 25, 9, 4), spread=1.0)
    rng = np.random.default_rng(3)
    clusters = I.kmeans_labels(x, 6, np.random.default_rng(0))
    labeled = np.zeros(x.shape[0], dtype=bool)
    labeled[rng.choice(x.shape[0], 6, replace=False)] = True

    def mean_knn(positions, k):
        if positions.size < 2:
            return np.zeros(positions.size)
        return (I.knn_distances(x[positions], k=k, exclude_self=True).astype(np.float64) ** power).mean(axis=1)

    for k, K in ((4, 20), (15, 3), (int((~labeled).sum()), 20)):
        picks, scores = Typ.typiclust_select(clusters, labeled, k, mean_knn, num_neighbors=K)
        assert picks.tolist() == _brute_typiclust(x, clusters, labeled, k, K=K, power=power)
        assert (scores > 0).all()


def test_cluster_order_and_counts():
    clusters = np.array([0] * 7 + [1] * 9 + [2] * 3 + [3] * 8)
    labeled = np.zeros(clusters.size, dtype=bool)
    labeled[0] = True  # cluster 0 is covered
    big, small = Typ.cluster_order(clusters, labeled)
    assert big.tolist() == [1, 3, 0] and small.tolist() == [2]
    assert Typ.typiclust_num_clusters(10, 50, 1000) == 60
    assert Typ.typiclust_num_clusters(400, 500, 10**5) == 500
    assert Typ.typiclust_num_clusters(0, 50, 20) == 20


def test_typiclust_strategy_picks_the_center_of_each_blob():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + rng.normal(size=(20, 2)) for c in centers] + [centers]).astype(np.float32)  # 60, 61, 62: centers
    strategy = get_strategy("typiclust", num_neighbors=10, normalize=False)
    selection = strategy.select({"pretrained_embeddings": x}, np.array([], dtype=int), np.arange(63), 3)
    picked = selection.indices
    # the exact center of each blob is its most typical point (smallest mean 10-NN distance)
    dist = cdist(x, x)
    np.fill_diagonal(dist, np.inf)
    typical = [int(np.argmin(np.sort(dist[idx][:, idx], axis=1)[:, :10].mean(axis=1))) for idx in
               (np.r_[0:20, 60], np.r_[20:40, 61], np.r_[40:60, 62])]
    expected = {np.r_[0:20, 60][typical[0]], np.r_[20:40, 61][typical[1]], np.r_[40:60, 62][typical[2]]}
    assert set(picked.tolist()) == expected and selection.scores.shape == (3,)


def test_typiclust_options():
    finetuned = get_strategy("typiclust", encoder="finetuned", num_neighbors=5)
    assert finetuned.needs == {"embeddings"} and finetuned.requires_trained_model
    assert finetuned.cold_start_fallback["num_neighbors"] == 5
    with pytest.raises(StrategyError, match="typiclust: distance"):
        get_strategy("typiclust", distance="cosine")
    with pytest.raises(StrategyError, match="typiclust: max_clusters"):
        get_strategy("typiclust", max_clusters=0)


@pytest.mark.parametrize("name", ["typiclust", "probcover"])
def test_normalize_is_selection_on_unit_rows(name):
    x = _blobs(spread=1.0)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.full((x.shape[0], 3), np.nan)
    labeled, unlabeled = np.arange(3), np.arange(3, x.shape[0])
    labels[labeled] = np.eye(3)
    pick = lambda points, normalize: get_strategy(name, normalize=normalize).select(  # noqa: E731
        {"pretrained_embeddings": points, "labels": labels}, labeled, unlabeled, 6, seed=4).indices.tolist()
    assert pick(x, True) == pick(unit, False)
    assert pick(x, True) != pick(x, False)


@pytest.mark.parametrize("option,value", [("n_init", 4), ("max_iter", 1)])
def test_typiclust_kmeans_options_reach_the_clustering_and_change_the_picks(monkeypatch, option, value):
    import lit_al.strategies.cold_start as cold_start

    calls = []
    real = cold_start.kmeans_labels
    monkeypatch.setattr(cold_start, "kmeans_labels", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    emb = np.random.default_rng(1).normal(size=(80, 4))
    outputs, none, pool = {"pretrained_embeddings": emb}, np.array([], dtype=int), np.arange(80)
    picked = get_strategy("typiclust", **{option: value}).select(outputs, none, pool, 10, seed=3).indices
    assert calls[-1][option] == value
    default = get_strategy("typiclust").select(outputs, none, pool, 10, seed=3).indices
    assert not np.array_equal(picked, default)
