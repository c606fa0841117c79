"""lit_al.index against brute-force NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from lit_al import index as idx


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _kcenter_reference(x: np.ndarray, centers: np.ndarray | None, k: int, first: int | None = None) -> list[int]:
    """O(n²) greedy k-center in float64, the textbook loop."""
    dist = _pairwise(x, x)
    if centers is not None and len(centers):
        delta = _pairwise(x, centers).min(axis=1)
        picks: list[int] = []
    else:
        picks = [first]
        delta = dist[first].copy()
        delta[first] = -1.0
    while len(picks) < k:
        best = int(np.argmax(delta))
        picks.append(best)
        delta = np.minimum(delta, dist[best])
        delta[picks] = -1.0
    return picks


@pytest.fixture
def points():
    return np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)


# ---------------------------------------------------------------- k-center
def test_kcenter_matches_bruteforce_with_centers(points):
    centers = np.random.default_rng(1).normal(size=(15, 8))
    picks = idx.kcenter_greedy(points, centers, 40, np.random.default_rng(0))
    assert picks.tolist() == _kcenter_reference(points, centers, 40)


def test_kcenter_matches_bruteforce_without_centers(points):
    picks = idx.kcenter_greedy(points, None, 40, np.random.default_rng(5))
    first = int(np.random.default_rng(5).integers(len(points)))  # the same single draw
    assert picks[0] == first
    assert picks.tolist() == _kcenter_reference(points, None, 40, first=first)
    empty = idx.kcenter_greedy(points, np.empty((0, 8)), 40, np.random.default_rng(5))
    np.testing.assert_array_equal(empty, picks)


def test_kcenter_returns_pick_radii(points):
    centers = points[:4]
    picks, radius = idx.kcenter_greedy(points, centers, 10, np.random.default_rng(0), return_distances=True)
    chosen = [*centers]
    for p, r in zip(picks, radius):
        np.testing.assert_allclose(r, _pairwise(points[p : p + 1], np.array(chosen)).min(), rtol=1e-4)
        chosen.append(points[p])
    assert np.all(np.diff(radius) <= 1e-6)  # the covering radius never grows
    _, radius = idx.kcenter_greedy(points, None, 3, np.random.default_rng(0), return_distances=True)
    assert radius[0] == np.inf and np.isfinite(radius[1:]).all()


def test_kcenter_first_pick_is_farthest_from_centers(points):
    centers = points[:3]
    picks = idx.kcenter_greedy(points, centers, 1, np.random.default_rng(0))
    assert picks[0] == int(np.argmax(_pairwise(points, centers).min(axis=1)))


def test_kcenter_duplicates_and_k_larger_than_m():
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 12 rows, 3 distinct
    picks = idx.kcenter_greedy(x, x[:1], 20, np.random.default_rng(0))
    assert sorted(picks.tolist()) == list(range(12))
    # the first two picks are the lowest positions of the two rows far from the center
    assert picks[:2].tolist() == [4, 8]
    # after that every delta is 0: ties go to the lowest unpicked position
    assert picks[2:].tolist() == [0, 1, 2, 3, 5, 6, 7, 9, 10, 11]


@pytest.mark.parametrize("d", [2, 3, 16, 64])
def test_kcenter_lazy_equals_eager(d):
    rng = np.random.default_rng(d)
    x = np.concatenate([rng.normal(size=(1500, d)), rng.normal(size=(500, d)) * 0.1 + 4.0]).astype(np.float32)
    x = np.concatenate([x, x[:300]])  # exact duplicates
    for centers in (x[:25], None):
        eager = idx.kcenter_greedy(x, centers, 150, np.random.default_rng(1), lazy=False)
        lazy = idx.kcenter_greedy(x, centers, 150, np.random.default_rng(1), lazy=True)
        np.testing.assert_array_equal(lazy, eager)
    # k = m exercises the full refresh path and the ties at delta = 0
    small = x[:130]
    np.testing.assert_array_equal(
        idx.kcenter_greedy(small, small[:3], 130, np.random.default_rng(0)),
        idx.kcenter_greedy(small, small[:3], 130, np.random.default_rng(0), lazy=False),
    )


def test_kcenter_lazy_equals_eager_on_pools_of_repeated_points():
    """Exact δ ties everywhere: the lazy pick must take the lower position, as the eager argmax does.

    Pools of a few distinct rows, each repeated, shuffled, and larger than the lazy loop's
    first refreshed block (``_LazyKCenter.INITIAL_WIDTH``) so that a tie between the
    refreshed block and a lower-position row outside it decides picks.
    """
    width = idx._LazyKCenter.INITIAL_WIDTH
    differing = []
    for trial in range(24):
        rng = np.random.default_rng(trial)
        distinct = rng.integers(-3, 4, size=(int(rng.integers(3, 12)), 2)).astype(np.float32)
        m = int(rng.integers(4 * width, 10 * width))
        x = distinct[rng.integers(0, distinct.shape[0], size=m)]
        centers = x[:2] if trial % 2 else None
        k = int(rng.integers(width, 2 * width))
        eager, eager_r = idx.kcenter_greedy(x, centers, k, np.random.default_rng(trial), lazy=False, return_distances=True)
        lazy, lazy_r = idx.kcenter_greedy(x, centers, k, np.random.default_rng(trial), lazy=True, return_distances=True)
        if not (np.array_equal(lazy, eager) and np.array_equal(lazy_r, eager_r)):
            differing.append(trial)
    assert not differing, f"lazy and eager k-center picks differ on pools {differing}"


def test_kcenter_normalize_equals_prenormalized(points):
    centers = points[:5] * 3.0
    a = idx.kcenter_greedy(points, centers, 20, np.random.default_rng(0), normalize=True)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    b = idx.kcenter_greedy(unit, unit[:5], 20, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)


def test_kcenter_accepts_float64_and_blocks(points):
    centers = points[:7].astype(np.float64)
    a = idx.kcenter_greedy(points.astype(np.float64), centers, 25, np.random.default_rng(0), block_size=17)
    b = idx.kcenter_greedy(points, centers, 25, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- k-means nearest
def _blobs(seed=0, per=40, k=5, d=6):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 50.0
    labels = np.repeat(np.arange(k), per)
    return (means[labels] + rng.normal(size=(k * per, d))).astype(np.float32), labels, means


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_nearest_recovers_blobs(init):
    x, labels, _ = _blobs()
    picks = idx.kmeans_nearest(x, 5, np.random.default_rng(0), init=init)
    assert sorted(labels[picks].tolist()) == [0, 1, 2, 3, 4]
    # each pick is the point nearest to its blob's mean (the k-means centroid here)
    for p in picks:
        members = np.flatnonzero(labels == labels[p])
        centroid = x[members].astype(np.float64).mean(axis=0)
        assert p == members[np.argmin(((x[members] - centroid) ** 2).sum(1))]


def test_kmeans_nearest_deterministic_and_distinct(points):
    a = idx.kmeans_nearest(points, 30, np.random.default_rng(3), n_init=2)
    b = idx.kmeans_nearest(points, 30, np.random.default_rng(3), n_init=2)
    np.testing.assert_array_equal(a, b)
    assert np.unique(a).size == 30
    c = idx.kmeans_nearest(points, 30, np.random.default_rng(3), n_init=2, duplicate_fill="random")
    assert np.unique(c).size == 30


def test_kmeans_nearest_order_by_cluster_size():
    rng = np.random.default_rng(0)
    sizes = [10, 50, 25]
    means = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    x = np.concatenate([m + rng.normal(size=(s, 2)) for m, s in zip(means, sizes)]).astype(np.float32)
    blob = np.repeat(np.arange(3), sizes)
    picks = idx.kmeans_nearest(x, 3, np.random.default_rng(0))
    assert blob[picks].tolist() == [1, 2, 0]


def test_kmeans_nearest_duplicate_fill():
    # 3 distinct vectors, each repeated: 6 centroids cannot all have distinct nearest rows
    x = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=np.float32), 5, axis=0)
    for fill in ("next_nearest", "random"):
        picks = idx.kmeans_nearest(x, 6, np.random.default_rng(0), duplicate_fill=fill)
        assert np.unique(picks).size == 6
        np.testing.assert_array_equal(picks, idx.kmeans_nearest(x, 6, np.random.default_rng(0), duplicate_fill=fill))


def test_greedy_match_serves_pairs_by_distance():
    x = np.array([[0.0], [1.0], [5.0]], dtype=np.float32)
    centroids = np.array([[0.1], [0.2]], dtype=np.float32)
    # both centroids' nearest row is 0; the closer centroid keeps it, the other takes row 1
    owner, assignment = idx._greedy_match(x, centroids)
    assert owner.tolist() == [0, 1] and assignment.tolist() == [0, 1, 1]
    centroids = np.array([[0.2], [0.1]], dtype=np.float32)
    assert idx._greedy_match(x, centroids)[0].tolist() == [1, 0]


@pytest.mark.parametrize("block_size", [1, 7, 4096])
def test_centroid_neighbours_match_brute_force_with_ties(block_size):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(300, 3)).astype(np.float32)  # many exact duplicates: ties everywhere
    centroids = rng.integers(0, 4, size=(9, 3)).astype(np.float32) + 0.5
    sq_all = ((x[None, :, :] - centroids[:, None, :]) ** 2).sum(axis=2)
    for depth in (1, 5, 40):
        (sq, labels), assignment = idx._centroid_neighbours(x, centroids, depth, block_size=block_size)
        order = np.lexsort((np.broadcast_to(np.arange(300), sq_all.shape), sq_all), axis=1)[:, :depth]
        np.testing.assert_array_equal(labels, order)
        np.testing.assert_allclose(sq, np.take_along_axis(sq_all, order, axis=1), rtol=1e-6)
        np.testing.assert_array_equal(assignment, np.argmin(sq_all, axis=0))


def test_kmeans_nearest_small_pools(points):
    np.testing.assert_array_equal(idx.kmeans_nearest(points[:4], 4, np.random.default_rng(0)), np.arange(4))
    np.testing.assert_array_equal(idx.kmeans_nearest(points[:4], 9, np.random.default_rng(0)), np.arange(4))
    assert idx.kmeans_nearest(points[:4], 0, np.random.default_rng(0)).size == 0
    with pytest.raises(ValueError):
        idx.kmeans_nearest(points, 3, np.random.default_rng(0), init="kmeans")


# ---------------------------------------------------------------- k-NN
def test_nearest_neighbors_matches_bruteforce(points):
    base, queries = points[:150], points[150:]
    dist, found = idx.nearest_neighbors(base, queries, 5, block_size=7)
    ref = _pairwise(queries, base)
    order = np.argsort(ref, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(found, order)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, order, axis=1), rtol=1e-4, atol=1e-4)
    assert idx.nearest_neighbors(base[:3], queries, 5)[1].shape == (50, 3)


def test_knn_distances_exclude_self(points):
    ref = _pairwise(points, points)
    np.fill_diagonal(ref, np.inf)
    expected = np.sort(ref, axis=1)[:, :10]
    got = idx.knn_distances(points, None, 10, exclude_self=True, block_size=33)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    other = idx.knn_distances(points[:100], points[100:], 4)
    np.testing.assert_allclose(other, np.sort(_pairwise(points[100:], points[:100]), axis=1)[:, :4], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        idx.knn_distances(points, points[:5], 3, exclude_self=True)


def test_knn_density_matches_bruteforce_with_duplicates(points):
    x = np.concatenate([points, points[:20]])  # exact duplicates: neighbours at distance 0
    ref = _pairwise(x, x)
    np.fill_diagonal(ref, np.inf)
    expected = np.sort(ref, axis=1)[:, :10].mean(axis=1)
    np.testing.assert_allclose(idx.knn_density(x, 10), expected, rtol=1e-4, atol=1e-4)
    positions = np.array([3, 210, 0])
    np.testing.assert_allclose(idx.knn_density(x, 10, query_positions=positions), expected[positions], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(idx.knn_density(x, 10, include_self=True), expected * 10 / 11, rtol=1e-4, atol=1e-4)


def test_knn_density_small_sets():
    x = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(idx.knn_density(x, 10), [5.0, 5.0], rtol=1e-6)
    np.testing.assert_array_equal(idx.knn_density(x[:1], 10), [0.0])
    assert idx.knn_density(x, 10, query_positions=np.array([], dtype=int)).size == 0


# ---------------------------------------------------------------- approximate k-NN
#: The documented recall bound of the approximate indexes on clustered data (README, index option).
RECALL_BOUND = 0.9


def _clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, d)) * 3
    return (centers[rng.integers(0, 20, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_resolve_knn_index_rules_and_validation():
    limit = idx.EXACT_MAX_ROWS
    assert idx.resolve_knn_index("auto", limit, 10 * limit) == "exact"
    assert idx.resolve_knn_index("auto", 10 * limit, limit) == "exact"
    assert idx.resolve_knn_index("auto", limit + 1, limit + 1) == "ivf"
    for method in ("exact", "hnsw", "ivf"):
        assert idx.resolve_knn_index(method, 5, 5) == method
    with pytest.raises(ValueError, match="index must be one of"):
        idx.resolve_knn_index("annoy", 5, 5)


def test_knn_search_exact_matches_bruteforce(points):
    queries = np.random.default_rng(3).normal(size=(30, 8)).astype(np.float32)
    sq, labels = idx.knn_search(points, queries, 5, method="exact")
    dist = _pairwise(queries, points)
    np.testing.assert_array_equal(labels, np.argsort(dist, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(np.sqrt(sq), np.sort(dist, axis=1)[:, :5], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_approximate_knn_recall_and_determinism(method):
    x = _clustered(4000, 32)
    exact = idx.knn_search(x, x, 10, method="exact")[1]
    sq, labels = idx.knn_search(x, x, 10, method=method, seed=3)
    recall = np.mean([np.intersect1d(a, b).size / 10 for a, b in zip(labels, exact)])
    assert recall >= RECALL_BOUND
    # the distances are the true ones of the neighbours found, ascending
    true_sq = ((x[:, None, :] - x[labels]) ** 2).sum(-1)
    np.testing.assert_allclose(sq, true_sq, rtol=1e-3, atol=1e-3)
    assert (np.diff(sq, axis=1) >= 0).all()
    again = idx.knn_search(x, x, 10, method=method, seed=3)
    np.testing.assert_array_equal(labels, again[1])
    np.testing.assert_array_equal(sq, again[0])


def test_approximate_density_is_never_below_exact():
    x = _clustered(3000, 16, seed=1)
    exact = idx.knn_density(x, 10)
    for method in ("hnsw", "ivf"):
        approx = idx.knn_density(x, 10, method=method, seed=0)
        assert (approx >= exact - 1e-4).all()
        assert np.mean(np.isclose(approx, exact, rtol=1e-4)) >= RECALL_BOUND


def test_ivf_short_lists_fall_back_to_exact():
    # k = 150 of 200 rows: the 16 cells a query scans hold fewer rows, so FAISS pads with -1
    x = _clustered(200, 8, seed=2)
    raw = idx._approximate_index(x, "ivf", 0).search(x, 150)[1]
    short = (raw < 0).any(axis=1)
    assert short.any()
    sq, labels = idx.knn_search(x, x, 150, method="ivf")
    exact_sq, exact = idx.knn_search(x, x, 150, method="exact")
    assert (labels >= 0).all() and np.isfinite(sq).all()
    np.testing.assert_array_equal(labels[short], exact[short])


def test_nearest_neighbors_and_density_default_to_exact(points):
    # the exact search stays the default of the primitives, whatever the size
    queries = points[:20]
    np.testing.assert_array_equal(
        idx.nearest_neighbors(points, queries, 4)[1], idx.knn_search(points, queries, 4, method="exact")[1]
    )
