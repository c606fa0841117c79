"""MII (STRATEGIES.md §1.14): hand-computed values and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_al.errors import StrategyError
from lit_al.functional import attention as A
from lit_al.functional.uncertainty import margin, multilabel_margin
from lit_al.strategies import get_strategy
from strategy_fixtures import make_outputs

# one head, three tokens; rows are softmax-like (sum to 1)
ATT3 = [[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
# column sums 0.8, 1.3, 0.9 -> mean 1, population variance (0.04 + 0.09 + 0.01) / 3
COLUMN_VALUE = 0.14 / 3


def _t(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def test_attention_intra_hand_computed_no_padding():
    attn = _t(ATT3)[None, None]
    mask = torch.ones(1, 3)
    assert A.attention_intra(attn, mask, "column_sum").item() == pytest.approx(COLUMN_VALUE, abs=1e-12)
    assert A.attention_intra(attn, mask, "row_sum").item() == pytest.approx(0.0, abs=1e-12)


def test_attention_intra_row_sum_formula_on_unnormalised_rows():
    # row sums 0.9, 1.2, 1.0: mean 31/30, deviations -4/30, 5/30, -1/30 -> variance 42/2700
    attn = _t([[0.5, 0.3, 0.1], [0.1, 0.8, 0.3], [0.2, 0.2, 0.6]])[None, None]
    assert A.attention_intra(attn, torch.ones(1, 3), "row_sum").item() == pytest.approx(42 / 2700, abs=1e-12)


def test_attention_intra_hand_computed_with_padding():
    # HF BERT masks pad KEYS: real rows put 0 on the pad column; the pad query row is normalised too
    padded = [row + [0.0] for row in ATT3] + [[0.3, 0.3, 0.4, 0.0]]
    attn = _t(padded)[None, None]
    mask = torch.tensor([[1, 1, 1, 0]])
    assert A.attention_intra(attn, mask, "column_sum").item() == pytest.approx(COLUMN_VALUE, abs=1e-12)
    assert A.attention_intra(attn, mask, "row_sum").item() == pytest.approx(0.0, abs=1e-12)
    # mass on the pad key of a real row is ignored by row sums (k runs over real tokens only)
    leaky = [[0.5, 0.3, 0.1, 0.1], [0.1, 0.8, 0.3, 0.5], [0.2, 0.2, 0.6, 0.0], [0.3, 0.3, 0.4, 0.0]]
    got = A.attention_intra(_t(leaky)[None, None], mask, "row_sum").item()
    assert got == pytest.approx(42 / 2700, abs=1e-12)


def _masked_softmax_attention(gen, B, h, L, lengths, dtype=torch.float64):
    scores = torch.randn(B, h, L, L, generator=gen, dtype=dtype) * 2.0
    mask = (torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]).long()
    scores = scores + (1 - mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min
    return scores.softmax(dim=-1), mask


def _intra_loop(attn, mask, mode):
    out = []
    for b in range(attn.shape[0]):
        real = np.flatnonzero(mask[b].numpy())
        per_head = []
        for i in range(attn.shape[1]):
            a = attn[b, i].numpy()[np.ix_(real, real)]
            s = a.sum(axis=0) if mode == "column_sum" else a.sum(axis=1)
            per_head.append(((s - s.mean()) ** 2).mean())
        out.append(np.mean(per_head))
    return np.array(out)


@pytest.mark.parametrize("mode", A.ATTENTION_INTRA_MODES)
def test_attention_intra_batched_matches_loop(mode):
    gen = torch.Generator().manual_seed(3)
    attn, mask = _masked_softmax_attention(gen, 4, 3, 7, [7, 5, 2, 3])
    got = A.attention_intra(attn, mask, mode)
    assert got.shape == (4,) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _intra_loop(attn, mask, mode), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_attention_intra_row_sum_is_exactly_zero(dtype):
    """Softmax rows sum to 1: row_sum variances are 0 exactly, not rounding noise that would order ties."""
    gen = torch.Generator().manual_seed(7)
    attn, mask = _masked_softmax_attention(gen, 16, 4, 32, [32, 30, 9, 17] * 4, dtype=dtype)
    assert torch.equal(A.attention_intra(attn, mask, "row_sum"), torch.zeros(16, dtype=dtype))
    uniform = torch.full((2, 3, 5, 5), 0.2, dtype=dtype)  # every column also sums to 1
    assert torch.equal(A.attention_intra(uniform, torch.ones(2, 5), "column_sum"), torch.zeros(2, dtype=dtype))
    # a real (non-uniform) column-sum variance is far above the resolution and kept
    assert (A.attention_intra(attn, mask, "column_sum") > 1e-3).all()


def test_attention_intra_column_mean_is_one_under_key_masking():
    gen = torch.Generator().manual_seed(5)
    attn, mask = _masked_softmax_attention(gen, 3, 2, 6, [6, 4, 2])
    got = A.attention_intra(attn, mask, "column_sum")
    # with s̄ = 1 substituted: (1/h) Σ_i (1/n_t) Σ_k (s_k − 1)²
    s = torch.einsum("bhjk,bj->bhk", attn, mask.double())
    n_t = mask.sum(1).double()
    ref = ((((s - 1.0) ** 2) * mask[:, None, :]).sum(-1) / n_t[:, None]).mean(1)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


def test_attention_intra_dtype_and_validation():
    gen = torch.Generator().manual_seed(0)
    attn, mask = _masked_softmax_attention(gen, 2, 2, 4, [4, 3], dtype=torch.float32)
    out = A.attention_intra(attn.to(torch.bfloat16), mask.bool(), "column_sum")
    assert out.dtype == torch.float32
    empty = A.attention_intra(attn, torch.zeros(2, 4), "column_sum")
    assert torch.equal(empty, torch.zeros(2))
    with pytest.raises(ValueError, match="mode"):
        A.attention_intra(attn, mask, "diagonal")
    with pytest.raises(ValueError, match="mask"):
        A.attention_intra(attn, mask[:, :3], "column_sum")


@pytest.mark.parametrize("multi_label", [False, True])
def test_class_centers_match_loop(multi_label):
    rng = np.random.default_rng(1)
    n, d, C = 30, 5, 4
    reps = rng.normal(size=(n, d))
    labels = np.full((n, C), np.nan)
    rows = np.array([0, 3, 4, 8, 11, 17, 20])
    if multi_label:
        y = (rng.random((rows.size, C)) < 0.5).astype(float)
        y[:, 2] = 0.0  # a label with no positive
    else:
        y = np.eye(C)[[0, 1, 1, 3, 0, 3, 1]]  # class 2 never labeled
    labels[rows] = y
    centers, ids = A.class_centers(reps, labels, rows)
    expected_ids = [c for c in range(C) if y[:, c].sum() > 0]
    assert ids.tolist() == expected_ids and 2 not in ids
    for center, c in zip(centers, ids):
        members = [r for r, row in zip(rows, y) if row[c] == 1]
        np.testing.assert_allclose(center, np.mean([reps[m] for m in members], axis=0), atol=1e-12)


def test_inter_correlation_matches_loop(monkeypatch):
    monkeypatch.setattr(A, "_BLOCK_ROWS", 7)  # exercise several blocks
    rng = np.random.default_rng(2)
    reps = rng.normal(size=(20, 6)).astype(np.float32)
    centers = rng.normal(size=(3, 6))
    got = A.inter_correlation(reps, centers)
    for i, x in enumerate(reps.astype(np.float64)):
        cos = [x @ c / (np.linalg.norm(x) * np.linalg.norm(c)) for c in centers]
        assert got[i] == pytest.approx(max(cos), abs=1e-9)
    with pytest.raises(ValueError):
        A.inter_correlation(reps, np.empty((0, 6)))


def test_mii_score_formula_and_sign():
    f_u, intra, inter = np.array([0.1, 0.5]), np.array([0.2, 0.4]), np.array([0.9, -0.3])
    np.testing.assert_allclose(A.mii_score(f_u, intra, inter), [0.02 - 0.9, 0.2 + 0.3])
    np.testing.assert_allclose(A.mii_score(f_u, intra, inter, inter_sign=1), [0.02 + 0.9, 0.2 - 0.3])
    with pytest.raises(ValueError):
        A.mii_score(f_u, intra, inter, inter_sign=0)


def _problem(multi_label, seed=0, n=50):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    labeled, unlabeled = np.sort(perm[:10]), np.sort(perm[10:])
    needs = {"probs", "cls_hidden", "attention_intra"}
    return make_outputs(needs, n=n, multi_label=multi_label, labeled=labeled, seed=seed), labeled, unlabeled


def _brute_inter(out, labeled, unlabeled):
    labels = out["labels"]
    centers = []
    for c in range(labels.shape[1]):
        members = [i for i in labeled if labels[i, c] == 1]
        if members:
            centers.append(out["cls_hidden"][members].mean(axis=0))
    result = []
    for i in unlabeled:
        x = out["cls_hidden"][i]
        result.append(max(x @ c / (np.linalg.norm(x) * np.linalg.norm(c)) for c in centers))
    return np.array(result)


def _smallest_first(scores, unlabeled, k):
    order = sorted(range(len(unlabeled)), key=lambda j: (scores[j], unlabeled[j]))
    return unlabeled[order[:k]]


@pytest.mark.parametrize("inter_sign", [-1, 1])
@pytest.mark.parametrize("multi_label", [False, True])
def test_mii_strategy_matches_brute_force(multi_label, inter_sign):
    out, labeled, unlabeled = _problem(multi_label)
    strategy = get_strategy("mii", multi_label=multi_label, inter_sign=inter_sign)
    picked = strategy.select(out, labeled, unlabeled, 8).indices
    probs = out["probs"][unlabeled]
    f_u = multilabel_margin(probs, "min") if multi_label else margin(probs)
    scores = f_u * out["attention_intra"][unlabeled] + inter_sign * _brute_inter(out, labeled, unlabeled)
    np.testing.assert_array_equal(picked, _smallest_first(scores, unlabeled, 8))


def test_mii_ablations_match_brute_force():
    out, labeled, unlabeled = _problem(False, seed=4)
    intra = out["attention_intra"][unlabeled]
    picked = get_strategy("mii_intra").select(out, labeled, unlabeled, 6).indices
    np.testing.assert_array_equal(picked, _smallest_first(intra, unlabeled, 6))
    inter = _brute_inter(out, labeled, unlabeled)
    picked = get_strategy("mii_inter").select(out, labeled, unlabeled, 6).indices
    np.testing.assert_array_equal(picked, _smallest_first(-inter, unlabeled, 6))
    picked = get_strategy("mii_inter", inter_sign=1).select(out, labeled, unlabeled, 6).indices
    np.testing.assert_array_equal(picked, _smallest_first(inter, unlabeled, 6))


def test_mii_options_and_prediction_request():
    assert get_strategy("mii").prediction_options() == {"attention_intra": "column_sum"}
    assert get_strategy("mii_intra", intra="row_sum").prediction_options() == {"attention_intra": "row_sum"}
    assert get_strategy("mii_inter").prediction_options() == {}
    mii = get_strategy("mii")
    assert mii.needs == {"probs", "cls_hidden", "attention_intra"}
    assert mii.predict_labeled and mii.uses_labels and mii.requires_trained_model
    with pytest.raises(StrategyError, match="intra"):
        get_strategy("mii", intra="rows")
    with pytest.raises(StrategyError, match="inter_sign"):
        get_strategy("mii", inter_sign=2)
    with pytest.raises(StrategyError, match="inter_sign"):
        get_strategy("mii_inter", inter_sign=True)


def test_mii_ignores_labeled_rows_without_labels_and_refuses_when_none_left():
    out, labeled, unlabeled = _problem(False)
    reference = get_strategy("mii").select(out, labeled[1:], unlabeled, 5).indices
    out["labels"][labeled[0]] = np.nan
    np.testing.assert_array_equal(get_strategy("mii").select(out, labeled, unlabeled, 5).indices, reference)
    out["labels"][labeled] = np.nan
    with pytest.raises(StrategyError, match="positive label"):
        get_strategy("mii").select(out, labeled, unlabeled, 3).indices


def test_attention_intra_column_mean_is_one_with_real_bert_padding():
    # HF BERT (eager attention; SDPA returns no attention probabilities) masks pad keys with
    # finfo.min, so real query rows put exactly zero mass on padding and s̄ = 1, whatever the weights
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, attn_implementation="eager",
    )
    model = transformers.BertModel(config).eval()
    ids = torch.randint(5, 40, (3, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 2 + [0] * 6])
    with torch.no_grad():
        attn = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions[-1]
    assert float((attn * (1 - mask)[:, None, None, :]).sum()) == 0.0
    sums = torch.einsum("bhjk,bj->bhk", attn, mask.float())
    for b, n_t in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(sums[b, :, :n_t].mean(-1), torch.ones(2), atol=1e-6, rtol=0)
    np.testing.assert_allclose(A.attention_intra(attn, mask).numpy(), _intra_loop(attn.double(), mask, "column_sum"), atol=1e-6)
    assert float(A.attention_intra(attn, mask, "row_sum").abs().max()) < 1e-6
