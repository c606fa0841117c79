"""Geometry strategies (coreset, kmeans, alps, cal, density_weighted) and their pure math, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from lit_al.errors import StrategyError
from lit_al.functional import geometry as G
from lit_al.functional import uncertainty as U
from lit_al.index import kmeans_nearest
from lit_al.strategies import get_strategy
from lit_al.strategies.geometry import SURPRISAL


def _pairwise(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _split(n, n_labeled, seed=0):
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_labeled]), np.sort(perm[n_labeled:])


# ---------------------------------------------------------------- pure math
def test_l2_normalize_rows_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-20, 0.0]])
    out = G.l2_normalize_rows(x)
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(out[1], [0.0, 0.0])
    np.testing.assert_allclose(out[2], [1e-8, 0.0], rtol=1e-5)  # norm floored at 1e-12
    assert out.dtype == np.float32


def test_contrastive_kl_hand_values():
    p = np.array([[0.5, 0.5]])
    q = np.array([[[0.9, 0.1], [0.5, 0.5]]])
    kl = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    np.testing.assert_allclose(G.contrastive_kl(p, q), [kl / 2])
    # multi-label: Bernoulli KL per label, summed
    pm = np.array([[0.5, 0.2]])
    qm = np.array([[[0.9, 0.2]]])
    np.testing.assert_allclose(G.contrastive_kl(pm, qm, multi_label=True), [0.9 * np.log(1.8) + 0.1 * np.log(0.2)])
    # zero probabilities are clipped, not NaN
    assert np.isfinite(G.contrastive_kl(np.array([[1.0, 0.0]]), np.array([[[0.0, 1.0]]]))).all()


def test_information_density_hand_values():
    u = np.array([1.0, 2.0, 0.0])
    dist = np.array([0.5, 4.0, 0.0])
    np.testing.assert_allclose(G.information_density(u, dist, beta=1.0), [2.0, 0.5, 0.0], rtol=1e-9)
    np.testing.assert_allclose(G.information_density(u, dist, beta=2.0), [4.0, 0.125, 0.0], rtol=1e-9)
    np.testing.assert_allclose(G.information_density(u, dist, beta=0.0), u)


# ---------------------------------------------------------------- coreset
def test_coreset_matches_bruteforce_kcenter():
    rng = np.random.default_rng(0)
    n = 80
    emb = rng.normal(size=(n, 5))
    labeled, unlabeled = _split(n, 10)
    picked = get_strategy("coreset").select({"embeddings": emb}, labeled, unlabeled, 12).indices
    delta = _pairwise(emb[unlabeled], emb[labeled]).min(axis=1)
    within = _pairwise(emb[unlabeled], emb[unlabeled])
    expected = []
    for _ in range(12):
        best = int(np.argmax(delta))
        expected.append(unlabeled[best])
        delta = np.minimum(delta, within[best])
        delta[best] = -1.0
    assert picked.tolist() == expected


def test_coreset_options_and_flags():
    s = get_strategy("coreset", normalize=True)
    assert s.normalize and s.predict_labeled and s.requires_trained_model and s.needs == {"embeddings"}
    with pytest.raises(StrategyError, match="normalize"):
        get_strategy("coreset", normalize="yes")


# ---------------------------------------------------------------- kmeans / alps
def _blob_pool(seed=0, per=30, k=4, d=6):
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.normal(size=(d, d)))[0][:k]  # orthonormal: well separated after L2 norm
    blob = np.repeat(np.arange(k), per)
    return directions[blob] * 5.0 + rng.normal(size=(k * per, d)) * 0.2, blob


def test_kmeans_encoder_switches_needs_and_cold_start():
    ft = get_strategy("kmeans")
    assert ft.needs == {"embeddings"} and ft.requires_trained_model
    assert ft.cold_start_fallback["name"] == "kmeans" and ft.cold_start_fallback["encoder"] == "pretrained"
    fallback = dict(ft.cold_start_fallback)
    km = get_strategy(fallback.pop("name"), **fallback)
    assert km.needs == {"pretrained_embeddings"} and not km.requires_trained_model and km.cold_start_fallback is None
    assert km.prediction_request().needs == {"pretrained_embeddings"}
    with pytest.raises(StrategyError, match="encoder"):
        get_strategy("kmeans", encoder="frozen")
    with pytest.raises(StrategyError, match="n_init"):
        get_strategy("kmeans", n_init=0)
    with pytest.raises(StrategyError, match="duplicate_fill"):
        get_strategy("kmeans", duplicate_fill="first")
    with pytest.raises(StrategyError, match="init"):
        get_strategy("kmeans", init="kmeans++")


@pytest.mark.parametrize("encoder,output", [("finetuned", "embeddings"), ("pretrained", "pretrained_embeddings")])
def test_kmeans_one_point_per_blob_from_unlabeled(encoder, output):
    emb, blob = _blob_pool()
    labeled, unlabeled = _split(len(blob), 20)
    outputs = {output: emb.copy()}
    outputs[output][labeled] = np.nan  # labeled rows are never read
    picked = get_strategy("kmeans", encoder=encoder).select(outputs, labeled, unlabeled, 4, seed=3).indices
    assert sorted(blob[picked].tolist()) == [0, 1, 2, 3]
    assert np.isin(picked, unlabeled).all()


def test_kmeans_is_scale_invariant_per_row():
    emb, blob = _blob_pool(per=20)
    labeled, unlabeled = _split(len(blob), 8)
    scaled = emb * np.random.default_rng(1).uniform(0.1, 10.0, size=(len(blob), 1))
    a = get_strategy("kmeans").select({"embeddings": emb}, labeled, unlabeled, 6, seed=1).indices
    b = get_strategy("kmeans").select({"embeddings": scaled}, labeled, unlabeled, 6, seed=1).indices
    np.testing.assert_array_equal(a, b)


def test_alps_options_and_selection():
    with pytest.raises(StrategyError, match="mlm_model"):
        get_strategy("alps").prediction_options()
    s = get_strategy("alps", mlm_model="bert-base-uncased", token_rate=0.2, max_length=64)
    assert s.prediction_options() == {"mlm_model": "bert-base-uncased", "token_rate": 0.2, "max_length": 64}
    assert s.needs == {SURPRISAL} and not s.requires_trained_model
    with pytest.raises(StrategyError, match="token_rate"):
        get_strategy("alps", token_rate=0.0)

    emb, blob = _blob_pool(d=12)
    surprisal = np.abs(emb)  # nonnegative rows with blob structure ...
    surprisal[5] = 0.0  # ... and one empty row (nothing sampled): stays a zero vector
    labeled, unlabeled = _split(len(blob), 10)
    picked = get_strategy("alps").select({SURPRISAL: surprisal}, labeled, unlabeled, 4, seed=2).indices
    assert np.unique(picked).size == 4 and np.isin(picked, unlabeled).all()


# ---------------------------------------------------------------- cal
@pytest.mark.parametrize("multi_label", [False, True])
def test_cal_matches_double_loop(multi_label):
    rng = np.random.default_rng(0)
    n, C, K = 30, 3, 4
    emb = rng.normal(size=(n, 4))
    logits = rng.normal(size=(n, C)) * 2
    probs = 1 / (1 + np.exp(-logits)) if multi_label else _softmax(logits)
    labeled, unlabeled = _split(n, 9)
    s = get_strategy("cal", num_neighbors=K, multi_label=multi_label)
    selection = s.select({"embeddings": emb, "probs": probs}, labeled, unlabeled, 5)
    picked = selection.indices

    scores = []
    for x in unlabeled:
        dist = [np.linalg.norm(emb[x] - emb[l]) for l in labeled]
        neighbours = [labeled[j] for j in np.argsort(dist, kind="stable")[:K]]
        total = 0.0
        for l in neighbours:
            for c in range(C):
                q, r = probs[l, c], probs[x, c]
                total += q * np.log(q / r)
                if multi_label:
                    total += (1 - q) * np.log((1 - q) / (1 - r))
        scores.append(total / K)
    scores = np.array(scores)
    expected = unlabeled[np.lexsort((unlabeled, -scores))[:5]]
    np.testing.assert_array_equal(picked, expected)
    np.testing.assert_allclose(selection.scores, np.sort(scores)[::-1][:5], rtol=1e-9)


def test_cal_uses_all_labeled_when_fewer_than_k_and_needs_one():
    rng = np.random.default_rng(1)
    emb, probs = rng.normal(size=(10, 3)), _softmax(rng.normal(size=(10, 2)))
    labeled, unlabeled = np.array([0, 1]), np.arange(2, 10)
    s = get_strategy("cal")
    picked = s.select({"embeddings": emb, "probs": probs}, labeled, unlabeled, 3).indices
    expected = G.contrastive_kl(probs[unlabeled], np.broadcast_to(probs[labeled], (8, 2, 2)))
    np.testing.assert_array_equal(picked, unlabeled[np.lexsort((unlabeled, -expected))[:3]])
    with pytest.raises(StrategyError, match="labeled"):
        s.select({"embeddings": emb, "probs": probs}, np.array([], dtype=int), np.arange(10), 3).indices


# ---------------------------------------------------------------- density_weighted
@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("uncertainty", ["entropy", "least_confidence", "margin"])
def test_density_weighted_matches_bruteforce(uncertainty, multi_label):
    rng = np.random.default_rng(2)
    n, C, K, beta = 40, 3, 5, 1.5
    emb = rng.normal(size=(n, 4))
    logits = rng.normal(size=(n, C)) * 2
    probs = 1 / (1 + np.exp(-logits)) if multi_label else _softmax(logits)
    labeled, unlabeled = _split(n, 6)
    s = get_strategy("density_weighted", uncertainty=uncertainty, num_neighbors=K, beta=beta, multi_label=multi_label)
    selection = s.select({"embeddings": emb, "probs": probs}, labeled, unlabeled, 7)
    picked = selection.indices

    p = probs[unlabeled]
    if uncertainty == "entropy":
        u = U.multilabel_entropy(p) if multi_label else U.entropy(p)
    elif uncertainty == "least_confidence":
        u = U.multilabel_least_confidence(p) if multi_label else U.least_confidence(p)
    else:
        u = 1 - (U.multilabel_margin(p) if multi_label else U.margin(p))
    dist = _pairwise(emb[unlabeled], emb[unlabeled])
    np.fill_diagonal(dist, np.inf)
    knn = np.sort(dist, axis=1)[:, :K].mean(axis=1)
    scores = u * (1 / (1e-12 + knn)) ** beta
    np.testing.assert_array_equal(picked, unlabeled[np.lexsort((unlabeled, -scores))[:7]])
    np.testing.assert_allclose(selection.scores, np.sort(scores)[::-1][:7], rtol=1e-4)


def test_density_weighted_beta_zero_is_uncertainty_sampling():
    rng = np.random.default_rng(3)
    emb, probs = rng.normal(size=(50, 4)), _softmax(rng.normal(size=(50, 4)))
    labeled, unlabeled = _split(50, 5)
    a = get_strategy("density_weighted", beta=0.0).select({"embeddings": emb, "probs": probs}, labeled, unlabeled, 8).indices
    b = get_strategy("entropy").select({"probs": probs}, labeled, unlabeled, 8).indices
    np.testing.assert_array_equal(a, b)
    with pytest.raises(StrategyError, match="uncertainty"):
        get_strategy("density_weighted", uncertainty="bald")
    with pytest.raises(StrategyError, match="beta"):
        get_strategy("density_weighted", beta=float("nan"))


# ---------------------------------------------------------------- index option (CAL, density_weighted)
def _clustered_problem(n=3000, d=16, C=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, d)) * 3
    emb = (centers[rng.integers(0, 20, n)] + rng.normal(size=(n, d))).astype(np.float32)
    probs = _softmax(rng.normal(size=(n, C)) * 2)
    labeled, unlabeled = _split(n, 300, seed)
    return {"embeddings": emb, "probs": probs}, labeled, unlabeled


@pytest.mark.parametrize("name", ["cal", "density_weighted"])
def test_index_option_exact_auto_and_approximate(name):
    outputs, labeled, unlabeled = _clustered_problem()
    exact = get_strategy(name, index="exact").select(outputs, labeled, unlabeled, 50).indices
    # below the size threshold, auto (the default) is the exact search: the same picks as before
    np.testing.assert_array_equal(get_strategy(name).select(outputs, labeled, unlabeled, 50).indices, exact)
    for index in ("hnsw", "ivf"):
        a = get_strategy(name, index=index).select(outputs, labeled, unlabeled, 50, seed=4).indices
        b = get_strategy(name, index=index).select(outputs, labeled, unlabeled, 50, seed=4).indices
        np.testing.assert_array_equal(a, b)
        assert np.intersect1d(a, exact).size >= 0.8 * 50
    with pytest.raises(StrategyError, match=f"{name}: index must be one of"):
        get_strategy(name, index="annoy")


def test_representativeness_index_option():
    from lit_al.analysis import representativeness

    x = _clustered_problem()[0]["embeddings"]
    batch = np.arange(0, 3000, 60)
    exact = representativeness(x, batch, index="exact")
    assert representativeness(x, batch) == exact
    approx = representativeness(x, batch, index="hnsw")
    assert approx <= exact * (1 + 1e-6) and approx >= 0.9 * exact
    with pytest.raises(ValueError, match="index must be one of"):
        representativeness(x, batch, index="annoy")


def test_l2_normalize_rows_in_place_matches_the_copy():
    x = np.random.default_rng(4).normal(size=(20, 5)).astype(np.float32)
    x[3] = 0.0
    expected = G.l2_normalize_rows(x)
    y = x.copy()
    assert G.l2_normalize_rows(y, out=y) is y
    np.testing.assert_array_equal(y, expected)


# ---------------------------------------------------------------- k-means options
@pytest.mark.parametrize(
    "option,value",
    [("n_init", 4), ("max_iter", 1), ("init", "random"), ("early_stop_threshold", 0.5), ("max_points_per_centroid", 2)],
)
@pytest.mark.parametrize("name,output", [("kmeans", "embeddings"), ("alps", SURPRISAL)])
def test_kmeans_options_reach_the_clustering_and_change_the_picks(name, output, option, value):
    """Each k-means option is handed to ``index.kmeans_nearest`` as given, and changes the batch."""
    rows = np.abs(np.random.default_rng(0).normal(size=(60, 5)))  # no cluster structure: many local optima
    labeled, unlabeled = np.arange(0, 60, 6), np.setdiff1d(np.arange(60), np.arange(0, 60, 6))
    strategy = get_strategy(name, **{option: value})
    picked = strategy.select({output: rows}, labeled, unlabeled, 8, seed=5).indices
    vectors = G.l2_normalize_rows(rows[unlabeled].astype(np.float32))
    expected = kmeans_nearest(vectors, 8, np.random.default_rng(5), **strategy.kmeans_options())
    np.testing.assert_array_equal(picked, unlabeled[expected])
    assert strategy.kmeans_options()[option] == value
    default = get_strategy(name).select({output: rows}, labeled, unlabeled, 8, seed=5).indices
    assert not np.array_equal(picked, default)


@pytest.mark.parametrize("name,output", [("kmeans", "embeddings"), ("alps", SURPRISAL)])
def test_kmeans_duplicate_fill_random_changes_the_picks_where_centroids_share_a_point(name, output):
    rows = np.repeat(np.abs(np.random.default_rng(0).normal(size=(6, 5))), 5, axis=0)  # 6 distinct rows, 5 copies each
    none, pool = np.array([], dtype=int), np.arange(30)
    picked = get_strategy(name, duplicate_fill="random").select({output: rows}, none, pool, 8, seed=5).indices
    expected = kmeans_nearest(G.l2_normalize_rows(rows.astype(np.float32)), 8, np.random.default_rng(5),
                              n_init=1, max_iter=10, duplicate_fill="random")
    np.testing.assert_array_equal(picked, expected)
    default = get_strategy(name).select({output: rows}, none, pool, 8, seed=5).indices
    assert not np.array_equal(picked, default)
