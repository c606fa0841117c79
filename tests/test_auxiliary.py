"""Perceptron Ensemble and DAL (lit_al.functional.auxiliary, lit_al.strategies.auxiliary)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lit_al.errors import StrategyError
from lit_al.functional import auxiliary as A
from lit_al.strategies import get_strategy


def test_inverse_frequency_weights():
    w = A.inverse_frequency_weights(torch.tensor([3, 1, 0]), 4)
    np.testing.assert_allclose(w.numpy(), [4 / 3, 4.0, 0.0])


def _keras_class_weight_as_ibm_wrote_it(y_onehot: np.ndarray) -> dict[int, float]:
    """IBM's (and Gissin's) expression, literally: ``{0: N / Y[Y==0].shape[0], 1: N / Y[Y==1].shape[0]}``."""
    n = y_onehot.shape[0]
    return {0: n / y_onehot[y_onehot == 0].shape[0], 1: n / y_onehot[y_onehot == 1].shape[0]}


def test_example_weights_none_is_what_the_authors_code_ran():
    classes = np.array([0, 0, 0, 1, 0, 1, 0])  # imbalanced: 5 vs 2
    y = np.eye(2)[classes]
    keras = _keras_class_weight_as_ibm_wrote_it(y)
    assert keras == {0: 1.0, 1: 1.0}  # both counts are N on a one-hot Y
    reference = np.array([keras[c] for c in classes])
    np.testing.assert_array_equal(A.example_weights(torch.tensor(y), "none").numpy(), reference)


def test_example_weights_balanced_hand_values():
    classes = np.array([0, 0, 0, 1, 0, 1, 0])
    y = torch.tensor(np.eye(2)[classes])
    expected = [7 / 5 if c == 0 else 7 / 2 for c in classes]  # N / N_c by hand
    np.testing.assert_allclose(A.example_weights(y, "balanced").numpy(), expected, rtol=1e-6)
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]])  # label 0: 3 pos, label 1: 1 pos
    expected_ml = [[4 / 3, 4 / 3], [4 / 3, 4.0], [4.0, 4 / 3], [4 / 3, 4 / 3]]
    np.testing.assert_allclose(A.example_weights(targets, "balanced", multi_label=True).numpy(), expected_ml, rtol=1e-6)
    np.testing.assert_array_equal(A.example_weights(targets, "none", multi_label=True).numpy(), np.ones((4, 2)))
    with pytest.raises(ValueError, match="class_weight"):
        A.example_weights(targets, True)


def test_pe_class_weight_changes_training_only_when_balanced():
    x, y = _separable()
    default = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(0), **FAST)
    none = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(0), class_weight="none", **FAST)
    balanced = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(0), class_weight="balanced", **FAST)
    assert torch.equal(default[0], none[0])
    assert not torch.equal(none[0], balanced[0])


def test_pe_entropy_hand_values():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    eps = 1e-10
    expected = [-2 * 0.5 * math.log(0.5 + eps), -math.log(1.0 + eps)]
    np.testing.assert_allclose(A.perceptron_ensemble_entropy(p), expected, rtol=1e-12)
    ml = np.array([[0.5, 0.9]])
    expected_ml = -(0.5 * math.log(0.5 + eps) * 2 + 0.9 * math.log(0.9 + eps) + 0.1 * math.log(0.1 + eps))
    np.testing.assert_allclose(A.perceptron_ensemble_entropy(ml, multi_label=True), [expected_ml], rtol=1e-12)


def test_keras_adam_first_step():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = A.KerasAdam([p], lr=0.1)
    (3.0 * p[0] - 0.5 * p[1]).backward()
    opt.step()
    # t = 1: m = 0.1 g, v = 0.001 g², step = lr·sqrt(0.001)/0.1 · m/(sqrt(v)+eps) ≈ lr·sign(g)
    g = np.array([3.0, -0.5])
    expected = np.array([1.0, -2.0]) - 0.1 * math.sqrt(0.001) / 0.1 * (0.1 * g) / (np.sqrt(0.001) * np.abs(g) + 1e-7)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)


def _separable(n_pos=40, n_neg=8, d=6, seed=0):
    """Positives around +3 e_0, negatives around -3 e_0: |pos| ≠ |neg| on purpose."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.5, size=(n_pos + n_neg, d))
    x[:n_pos, 0] += 3.0
    x[n_pos:, 0] -= 3.0
    y = np.zeros((n_pos + n_neg, 2))
    y[:n_pos, 1] = 1.0  # class 1 = positive
    y[n_pos:, 0] = 1.0
    return x.astype(np.float32), y


FAST = dict(lr=0.05, epochs=20, dropout=0.5)


def test_pe_labels_are_aligned():
    x, y = _separable()
    weight, bias = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(0), **FAST)
    probe = np.zeros((2, x.shape[1]), dtype=np.float32)
    probe[0, 0], probe[1, 0] = 3.0, -3.0  # a clear positive, a clear negative
    mean = A.perceptron_ensemble_mean_probs(weight, bias, probe)
    assert mean[0, 1] > 0.5 and mean[1, 1] < 0.5
    assert weight.shape == (10, x.shape[1], 2) and bias.shape == (10, 2)


def test_pe_multilabel_labels_are_aligned():
    x, y = _separable()
    targets = np.stack([y[:, 1], y[:, 0], y[:, 1]], axis=1)  # J = 3 labels
    weight, bias = A.train_perceptron_ensemble(
        x, targets, generator=torch.Generator().manual_seed(0), multi_label=True, **FAST
    )
    probe = np.zeros((1, x.shape[1]), dtype=np.float32)
    probe[0, 0] = 3.0
    mean = A.perceptron_ensemble_mean_probs(weight, bias, probe, multi_label=True)
    assert mean[0, 0] > 0.5 and mean[0, 1] < 0.5 and mean[0, 2] > 0.5


def test_pe_members_differ_and_training_is_deterministic():
    x, y = _separable()
    a = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(1))
    b = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(1))
    c = A.train_perceptron_ensemble(x, y, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0][0], a[0][1])


def test_pe_strategy_queries_the_boundary():
    x, y = _separable(n_pos=30, n_neg=10)
    rng = np.random.default_rng(3)
    pool = np.concatenate([x, rng.normal(scale=0.3, size=(20, x.shape[1])).astype(np.float32)])
    pool[40:50, 0] += 3.0  # confident positives
    pool[50:60, 0] += 0.0  # on the boundary
    labels = np.full((60, 2), np.nan)
    labels[:40] = y
    labeled, unlabeled = np.arange(40), np.arange(40, 60)
    strategy = get_strategy("perceptron_ensemble", **FAST)
    picked = strategy.select({"embeddings": pool, "labels": labels}, labeled, unlabeled, 10, seed=0).indices
    assert (picked >= 50).sum() >= 8
    again = get_strategy("perceptron_ensemble", **FAST).select(
        {"embeddings": pool, "labels": labels}, labeled, unlabeled, 10, seed=0
    ).indices
    assert picked.tolist() == again.tolist()


def test_pe_strategy_errors():
    with pytest.raises(StrategyError, match="perceptron_ensemble: dropout"):
        get_strategy("perceptron_ensemble", dropout=1.0)
    with pytest.raises(StrategyError, match="perceptron_ensemble: members"):
        get_strategy("perceptron_ensemble", members=0)
    with pytest.raises(StrategyError, match="perceptron_ensemble: class_weight"):
        get_strategy("perceptron_ensemble", class_weight=True)
    emb = np.zeros((4, 3))
    labels = np.full((4, 2), np.nan)
    with pytest.raises(StrategyError, match="at least one labeled"):
        get_strategy("perceptron_ensemble").select({"embeddings": emb, "labels": labels}, [0], [1, 2, 3], 1).indices


# -------------------------------------------------------------------- DAL
def test_discriminator_early_stop():
    rng = np.random.default_rng(0)
    lab = torch.tensor(rng.normal(size=(20, 4)) - 4.0, dtype=torch.float32)
    unl = torch.tensor(rng.normal(size=(200, 4)) + 4.0, dtype=torch.float32)
    _, epochs = A.train_discriminator(lab, unl, generator=torch.Generator().manual_seed(0), lr=1e-2, max_epochs=30)
    assert epochs < 30
    _, epochs = A.train_discriminator(
        lab, unl, generator=torch.Generator().manual_seed(0), lr=1e-2, max_epochs=4, stop_accuracy=1.0
    )
    assert epochs == 4  # accuracy can never exceed 1.0


def _dal_geometry(seed=0):
    """L and most of U around the origin; 15 unlabeled points in a far cluster.

    Width 64 (not d = 5): three ReLU layers of width 5 die too easily to test behaviour.
    """
    rng = np.random.default_rng(seed)
    labeled = rng.normal(size=(20, 5))
    near = rng.normal(size=(185, 5))
    far = rng.normal(size=(15, 5)) + 6.0
    return labeled.astype(np.float32), np.concatenate([near, far]).astype(np.float32)


def test_dal_prefers_points_far_from_labeled():
    e_l, e_u = _dal_geometry()
    # One mini-query: the 10 points most confidently "unlabeled" all lie in the far cluster.
    picked = A.dal_select(e_l, e_u, 10, np.random.default_rng(0), lr=1e-2, hidden_size=64, sub_batches=1)
    assert len(set(picked.tolist())) == 10
    assert (picked >= 185).sum() == 10
    # Five mini-queries: once far points join L', the far cluster counts as covered and
    # the batch diversifies, but it still over-samples the cluster (random: 0.75 expected).
    picked = A.dal_select(e_l, e_u, 10, np.random.default_rng(0), lr=1e-2, hidden_size=64)
    assert 2 <= (picked >= 185).sum() < 10


def test_dal_mini_query_sizes_and_determinism(monkeypatch):
    e_l, e_u = _dal_geometry()
    sizes = []
    real_top_k = A.top_k

    def spy(scores, k, **kw):
        sizes.append(k)
        return real_top_k(scores, k, **kw)

    monkeypatch.setattr(A, "top_k", spy)
    a = A.dal_select(e_l, e_u, 13, np.random.default_rng(4), max_epochs=2)
    assert sizes == [2, 2, 2, 2, 5]  # m = 13 // 5, the last takes the remainder
    sizes.clear()
    A.dal_select(e_l, e_u, 3, np.random.default_rng(4), max_epochs=1)
    assert sizes == [1, 1, 1]  # k < sub_batches: one point per mini-query
    b = A.dal_select(e_l, e_u, 13, np.random.default_rng(4), max_epochs=2)
    assert a.tolist() == b.tolist()


def test_dal_strategy_pool_indices_and_errors():
    e_l, e_u = _dal_geometry()
    emb = np.concatenate([e_l, e_u])
    labeled, unlabeled = np.arange(20), np.arange(20, 220)
    picked = get_strategy("dal", lr=1e-2, hidden_size=64, sub_batches=1).select({"embeddings": emb}, labeled, unlabeled, 10, seed=1).indices
    assert (picked >= 205).sum() == 10
    with pytest.raises(StrategyError, match="at least one labeled"):
        get_strategy("dal").select({"embeddings": emb}, np.array([], int), unlabeled, 5).indices
    with pytest.raises(StrategyError, match="dal: sub_batches"):
        get_strategy("dal", sub_batches=0)
    with pytest.raises(StrategyError, match="dal: stop_accuracy"):
        get_strategy("dal", stop_accuracy=1.5)
    with pytest.raises(StrategyError, match="dal: class_weight"):
        get_strategy("dal", class_weight="inverse")


@pytest.mark.parametrize("class_weight", ["none", "balanced"])
def test_dal_discriminator_weights(monkeypatch, class_weight):
    """The discriminator's loss weights: 1.0 for everyone (default) or N / N_c (labeled 0, unlabeled 1)."""
    seen = []
    real = A.example_weights

    def spy(targets, mode, **kw):
        out = real(targets, mode, **kw)
        seen.append((targets.argmax(dim=1).numpy(), out.numpy()))
        return out

    monkeypatch.setattr(A, "example_weights", spy)
    lab = torch.zeros((3, 2))
    unl = torch.ones((9, 2))
    A.train_discriminator(lab, unl, generator=torch.Generator().manual_seed(0), max_epochs=1, class_weight=class_weight)
    classes, weights = seen[0]
    assert classes.tolist() == [0] * 3 + [1] * 9
    expected = np.ones(12) if class_weight == "none" else np.where(classes == 0, 12 / 3, 12 / 9)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def _spy(monkeypatch, name):
    """Wrap ``functional.auxiliary.<name>`` to record the keyword arguments of each call."""
    calls = []
    real = getattr(A, name)

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(A, name, spy)
    return calls


@pytest.mark.parametrize("option,value", [("lr", 0.2), ("epochs", 3), ("batch_size", 7)])
def test_pe_training_options_reach_the_training_and_change_the_scores(monkeypatch, option, value):
    x, y = _separable(n_pos=30, n_neg=10)
    pool = np.concatenate([x, np.random.default_rng(3).normal(scale=0.3, size=(20, x.shape[1])).astype(np.float32)])
    labels = np.full((60, 2), np.nan)
    labels[:40] = y
    outputs, labeled, unlabeled = {"embeddings": pool, "labels": labels}, np.arange(40), np.arange(40, 60)
    calls = _spy(monkeypatch, "train_perceptron_ensemble")
    changed = get_strategy("perceptron_ensemble", **{**FAST, option: value}).select(outputs, labeled, unlabeled, 5, seed=0)
    assert calls[-1][option] == value
    default = get_strategy("perceptron_ensemble", **FAST).select(outputs, labeled, unlabeled, 5, seed=0)
    assert not np.array_equal(changed.scores, default.scores)


@pytest.mark.parametrize("option,value", [("batch_size", 7), ("candidate_ratio", 0.5), ("max_epochs", 1)])
def test_dal_training_options_reach_dal_select_and_change_the_batch(monkeypatch, option, value):
    emb = np.random.default_rng(2).normal(size=(120, 5)).astype(np.float32)
    outputs, labeled, unlabeled = {"embeddings": emb}, np.arange(20), np.arange(20, 120)
    base = dict(lr=1e-2, hidden_size=16, max_epochs=5)
    calls = _spy(monkeypatch, "dal_select")
    changed = get_strategy("dal", **{**base, option: value}).select(outputs, labeled, unlabeled, 10, seed=1).indices
    assert calls[-1][option] == value
    default = get_strategy("dal", **base).select(outputs, labeled, unlabeled, 10, seed=1).indices
    assert not np.array_equal(changed, default)
