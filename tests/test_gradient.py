"""BADGE and EGL (lit_al.functional.gradient, lit_al.strategies.gradient) against brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lit_al.errors import StrategyError
from lit_al.functional import gradient as G
from lit_al.strategies import get_strategy


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _problem(n=40, C=4, d=5, seed=0, multi_label=False):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, C)) * 2.0
    probs = 1.0 / (1.0 + np.exp(-z)) if multi_label else _softmax(z)
    return probs, rng.normal(size=(n, d))


def _explicit_kmeanspp(g: np.ndarray, k: int, rng: np.random.Generator, variant: str) -> list[int]:
    """Reference: badge's init_centers on explicit C·d vectors, same draw rule (one rng.random() per pick)."""
    norms = np.linalg.norm(g, axis=1)
    if variant == "alps":
        g = np.divide(g, norms[:, None], out=np.zeros_like(g), where=norms[:, None] > 0)
        first = int(rng.integers(g.shape[0]))
    else:
        first = int(np.argmax(norms))
    chosen = [first]
    dist = np.linalg.norm(g - g[first], axis=1)
    dist[first] = 0.0
    while len(chosen) < k:
        weights = dist**2
        cum = np.cumsum(weights)
        i = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        assert i not in chosen
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(g - g[i], axis=1))
        dist[chosen] = 0.0
    return chosen


def _explicit_gradient_embedding(probs: np.ndarray, h: np.ndarray, multi_label: bool) -> np.ndarray:
    n, C = probs.shape
    target = (probs > 0.5).astype(float) if multi_label else np.eye(C)[probs.argmax(axis=1)]
    return ((probs - target)[:, :, None] * h[:, None, :]).reshape(n, -1)  # (n, C·d)


# ------------------------------------------------------------------ BADGE
def test_badge_residuals_hand_values():
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(G.badge_residuals(probs), [[-0.3, 0.2, 0.1], [0.3, 0.3, -0.6]])
    ml = np.array([[0.9, 0.4, 0.5]])
    np.testing.assert_allclose(G.badge_residuals(ml, multi_label=True), [[-0.1, 0.4, 0.5]])


def test_badge_gradient_norms_factorise():
    probs, h = _problem()
    g = _explicit_gradient_embedding(probs, h, False)
    np.testing.assert_allclose(G.badge_gradient_norms(G.badge_residuals(probs), h), np.linalg.norm(g, axis=1))


@pytest.mark.parametrize("multi_label", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("variant", ["original", "alps"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_badge_factorised_matches_explicit(variant, multi_label, seed):
    probs, h = _problem(seed=seed, multi_label=multi_label)
    g = _explicit_gradient_embedding(probs, h, multi_label)
    expected = _explicit_kmeanspp(g, 15, np.random.default_rng(100 + seed), variant)
    got = G.badge_select(probs, h, 15, np.random.default_rng(100 + seed), multi_label=multi_label, variant=variant)
    assert got.tolist() == expected


@pytest.mark.parametrize("variant", ["original", "alps"])
def test_badge_float32_precision_gives_the_same_picks_here(variant):
    probs, h = _problem(n=200, C=5, d=16, seed=4)
    a = G.badge_select(probs, h, 30, np.random.default_rng(1), variant=variant)
    b = G.badge_select(probs, h.astype(np.float32), 30, np.random.default_rng(1), variant=variant, precision="float32")
    assert a.tolist() == b.tolist()


def test_badge_original_first_center_is_max_norm():
    probs, h = _problem(seed=3)
    norms = G.badge_gradient_norms(G.badge_residuals(probs), h)
    got = G.badge_select(probs, h, 1, np.random.default_rng(0))
    assert got.tolist() == [int(np.argmax(norms))]


def test_badge_can_pick_every_point_once():
    probs, h = _problem(n=12)
    got = G.badge_select(probs, h, 12, np.random.default_rng(0))
    assert sorted(got.tolist()) == list(range(12))


def test_badge_zero_norm_fallback_is_uniform_among_unchosen():
    probs = np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]  # confident everywhere: every gradient is 0
    h = np.random.default_rng(0).normal(size=(8, 4))
    got = G.badge_select(probs, h, 5, np.random.default_rng(5))
    rest = np.arange(1, 8)
    expected_rng = np.random.default_rng(5)
    assert got[0] == 0  # argmax of an all-zero norm vector: the lowest position
    assert got[1:].tolist() == rest[expected_rng.permutation(7)[:4]].tolist()
    alps = G.badge_select(probs, h, 8, np.random.default_rng(5), variant="alps")
    assert sorted(alps.tolist()) == list(range(8))


def test_badge_points_at_the_origin_are_drawn_then_fallback():
    # One row has a nonzero gradient; the other seven sit at the origin, at the same
    # distance from it: the second pick is uniform among them by P ∝ D², after which
    # every D is 0 and the fallback permutes the rest.
    probs = np.eye(3)[np.arange(8) % 3]
    probs[5] = [0.2, 0.5, 0.3]
    h = np.random.default_rng(0).normal(size=(8, 4))
    got = G.badge_select(probs, h, 5, np.random.default_rng(9))
    ref = np.random.default_rng(9)
    zeros = np.array([0, 1, 2, 3, 4, 6, 7])
    second = zeros[int(ref.random() * 7)]
    rest = zeros[zeros != second]
    assert got.tolist() == [5, second, *rest[ref.permutation(6)[:3]].tolist()]


def test_badge_strategy_returns_pool_indices():
    probs, h = _problem(n=30)
    unlabeled = np.arange(5, 30)
    outputs = {"probs": probs, "embeddings": h}
    picked = get_strategy("badge").select(outputs, np.arange(5), unlabeled, 6, seed=3).indices
    positions = G.badge_select(probs[unlabeled], h[unlabeled], 6, np.random.default_rng(3))
    assert picked.tolist() == unlabeled[positions].tolist()
    with pytest.raises(StrategyError, match="badge: variant"):
        get_strategy("badge", variant="kmeans")
    with pytest.raises(StrategyError, match="badge: precision"):
        get_strategy("badge", precision="float16")


# -------------------------------------------------------------------- EGL
def _head_gradient_norm(W, b, h, loss_fn):
    W = W.clone().requires_grad_()
    b = b.clone().requires_grad_()
    loss = loss_fn(W @ h + b)
    gw, gb = torch.autograd.grad(loss, [W, b])
    return float(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()))


def test_egl_head_matches_autograd():
    rng = np.random.default_rng(0)
    n, C, d = 6, 4, 5
    W = torch.tensor(rng.normal(size=(C, d)))
    b = torch.tensor(rng.normal(size=C))
    H = torch.tensor(rng.normal(size=(n, d)))
    probs = torch.softmax(H @ W.T + b, dim=1).numpy()
    expected_l2 = np.zeros(n)
    expected_sq = np.zeros(n)
    for i in range(n):
        for c in range(C):
            norm = _head_gradient_norm(W, b, H[i], lambda z: torch.nn.functional.cross_entropy(z[None], torch.tensor([c])))
            expected_l2[i] += probs[i, c] * norm
            expected_sq[i] += probs[i, c] * norm**2
    np.testing.assert_allclose(G.egl_head(probs, H.numpy()), expected_l2, rtol=1e-10)
    np.testing.assert_allclose(G.egl_head(probs, H.numpy(), norm="squared"), expected_sq, rtol=1e-10)
    # the squared form's closed form (1 - ||p||²)(||h||² + 1)
    np.testing.assert_allclose(expected_sq, (1 - (probs**2).sum(1)) * ((H.numpy() ** 2).sum(1) + 1), rtol=1e-10)


def test_egl_head_multilabel_matches_exhaustive_enumeration():
    rng = np.random.default_rng(1)
    n, J, d = 5, 3, 4
    W = torch.tensor(rng.normal(size=(J, d)))
    b = torch.tensor(rng.normal(size=J))
    H = torch.tensor(rng.normal(size=(n, d)))
    probs = torch.sigmoid(H @ W.T + b).numpy()
    mean_sq = np.zeros(n)
    mean_norm = np.zeros(n)
    for i in range(n):
        for y in itertools.product([0.0, 1.0], repeat=J):
            weight = np.prod([p if yj else 1 - p for p, yj in zip(probs[i], y)])
            target = torch.tensor(y, dtype=torch.float64)
            norm = _head_gradient_norm(
                W, b, H[i], lambda z: torch.nn.functional.binary_cross_entropy_with_logits(z, target, reduction="sum")
            )
            mean_sq[i] += weight * norm**2
            mean_norm[i] += weight * norm
    h = H.numpy()
    np.testing.assert_allclose(G.egl_head_multilabel(probs, h, norm="squared"), mean_sq, rtol=1e-10)
    np.testing.assert_allclose(G.egl_head_multilabel(probs, h, norm="l2"), np.sqrt(mean_sq), rtol=1e-10)
    assert (np.sqrt(mean_sq) >= mean_norm - 1e-12).all()  # RMS >= mean (Jensen)
    mc = G.egl_head_multilabel(probs, h, expectation="monte_carlo", samples=20000, rng=np.random.default_rng(0))
    np.testing.assert_allclose(mc, mean_norm, rtol=0.03)


def test_egl_from_per_class_gradients_reproduces_head_closed_form():
    gen = torch.Generator().manual_seed(0)
    n, C, d = 4, 3, 6
    model = torch.nn.Linear(d, C).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn((C, d), generator=gen, dtype=torch.float64))
        model.bias.copy_(torch.randn(C, generator=gen, dtype=torch.float64))
    x = torch.randn((n, d), generator=gen, dtype=torch.float64)
    probs = torch.softmax(model(x), dim=1).detach()
    norms = torch.zeros((n, C), dtype=torch.float64)
    for i in range(n):
        for c in range(C):
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 1]), torch.tensor([c]))
            grads = torch.autograd.grad(loss, list(model.parameters()))
            norms[i, c] = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    for norm in ("l2", "squared"):
        got = G.egl_from_per_class_gradients(probs, norms, norm=norm).numpy()
        np.testing.assert_allclose(got, G.egl_head(probs.numpy(), x.numpy(), norm=norm), rtol=1e-10)


def test_multilabel_sampling_helpers():
    probs = torch.tensor([[0.0, 1.0, 0.3], [0.5, 0.9, 0.1]])
    a = G.sample_multilabel_targets(probs, 4000, torch.Generator().manual_seed(1))
    b = G.sample_multilabel_targets(probs, 4000, torch.Generator().manual_seed(1))
    assert a.shape == (4000, 2, 3) and torch.equal(a, b)
    np.testing.assert_allclose(a.mean(0).numpy(), probs.numpy(), atol=0.03)
    norms = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(G.egl_from_sampled_gradients(norms).numpy(), [2.0, 2.0])
    np.testing.assert_allclose(G.egl_from_sampled_gradients(norms, norm="squared").numpy(), [5.0, 4.0])


def test_egl_strategy_head_and_model_side_variants():
    probs, h = _problem(n=20)
    unlabeled = np.arange(20)
    picked = get_strategy("egl").select({"probs": probs, "embeddings": h}, np.array([], int), unlabeled, 5).indices
    assert picked.tolist() == np.argsort(-G.egl_head(probs, h), kind="stable")[:5].tolist()

    values = np.array([0.5, 2.0, 2.0, 1.0, 3.0, 0.0])
    for variant, name in (("full", "egl_full"), ("word", "egl_word")):
        strategy = get_strategy("egl", variant=variant, multi_label=True, egl_samples=7, norm="squared")
        assert strategy.needs == frozenset({name})
        assert strategy.prediction_options() == {"egl_norm": "squared", "egl_samples": 7}
        selection = strategy.select({name: values}, np.array([], int), np.arange(6), 3)
        assert selection.indices.tolist() == [4, 1, 2]
        np.testing.assert_array_equal(selection.scores, [3.0, 2.0, 2.0])
    assert get_strategy("egl").prediction_options() == {}
    assert get_strategy("egl", variant="full").prediction_options() == {"egl_norm": "l2"}


def test_egl_strategy_multilabel_head():
    probs, h = _problem(n=20, multi_label=True)
    outputs = {"probs": probs, "embeddings": h}
    closed = get_strategy("egl", multi_label=True).select(outputs, np.array([], int), np.arange(20), 5).indices
    squared = get_strategy("egl", multi_label=True, norm="squared").select(outputs, np.array([], int), np.arange(20), 5).indices
    assert closed.tolist() == squared.tolist()  # sqrt is monotone: same ranking
    mc = get_strategy("egl", multi_label=True, multi_label_expectation="monte_carlo")
    assert mc.select(outputs, np.array([], int), np.arange(20), 5, seed=2).indices.tolist() == mc.select(
        outputs, np.array([], int), np.arange(20), 5, seed=2
    ).indices.tolist()


@pytest.mark.parametrize(
    "options, match",
    [
        ({"variant": "layer"}, "egl: variant"),
        ({"norm": "l1"}, "egl: norm"),
        ({"egl_samples": 0}, "egl: egl_samples"),
        ({"multi_label_expectation": "exact"}, "egl: multi_label_expectation"),
    ],
)
def test_egl_bad_options(options, match):
    with pytest.raises(StrategyError, match=match):
        get_strategy("egl", **options)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_badge_duplicates_of_centers_are_never_drawn(precision):
    """Copies of a chosen center have D² = 0 exactly (not cancellation noise), so once both groups are
    covered the rest comes from the documented fallback, never from a draw weighted by rounding."""
    rng = np.random.default_rng(2)
    probs = np.repeat(np.array([[0.3, 0.5, 0.2], [0.6, 0.1, 0.3]]), 5, axis=0)
    h = np.repeat(rng.normal(size=(2, 7)) * 3.1, 5, axis=0)
    got = G.badge_select(probs, h, 6, np.random.default_rng(1), precision=precision)
    group = got // 5
    assert set(group[:2].tolist()) == {0, 1}
    ref = np.random.default_rng(1)
    ref.random()  # the second pick's draw
    rest = np.setdiff1d(np.arange(10), got[:2])
    assert got[2:].tolist() == rest[ref.permutation(rest.size)[:4]].tolist()
