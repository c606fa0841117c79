"""ALDEN reconstruction (STRATEGIES.md §1.16): token selection, diversity and batch selection vs brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_al.errors import StrategyError
from lit_al.functional import interpretation as I
from lit_al.index import kcenter_greedy
from lit_al.strategies import get_strategy
from strategy_fixtures import make_outputs


def _grads(seed, B=4, L=6, D=5):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(B, L, D, generator=gen, dtype=torch.float64) * torch.rand(B, L, 1, generator=gen, dtype=torch.float64)
    mask = torch.ones(B, L, dtype=torch.long)
    mask[:, 0] = 0  # [CLS]
    mask[0, L - 1] = 0  # [SEP] of the longest row
    mask[1:, 3:] = 0
    if B > 2:
        mask[2, 1:] = 0  # no real token at all
    return g, mask


def _select_loop(g, mask, reference, normalize):
    out = np.zeros((g.shape[0], g.shape[2]))
    for b in range(g.shape[0]):
        best, best_t = -np.inf, None
        for t in range(g.shape[1]):
            if not mask[b, t]:
                continue
            v = g[b, t].numpy()
            u = v / np.linalg.norm(v) if normalize else v
            if reference is None:
                score = np.linalg.norm(v)
            else:
                score = min(np.linalg.norm(u - z) for z in reference.numpy())
            if score > best:
                best, best_t = score, u
        if best_t is not None:
            out[b] = best_t
    return out


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("with_reference", [False, True])
def test_select_token_interpretations_matches_loop(normalize, with_reference):
    g, mask = _grads(0)
    reference = None
    if with_reference:
        reference = torch.randn(7, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        if normalize:
            reference = reference / reference.norm(dim=1, keepdim=True)
    got = I.select_token_interpretations(g, mask, reference, normalize=normalize, chunk_size=3)
    assert got.shape == (4, 5) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _select_loop(g, mask, reference, normalize), atol=1e-12)


def test_select_token_interpretations_labeled_pass_uses_raw_norm_and_ties_first():
    g = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [0.0, 5.0], [10.0, 0.0]]])
    mask = torch.tensor([[0, 1, 1, 0]])  # the largest token is masked out
    got = I.select_token_interpretations(g, mask, None, normalize=True)
    torch.testing.assert_close(got, torch.tensor([[0.6, 0.8]]))  # norms tie at 5: the first wins, then normalised
    raw = I.select_token_interpretations(g, mask, torch.empty(0, 2), normalize=False)
    torch.testing.assert_close(raw, torch.tensor([[3.0, 4.0]]))  # empty reference = labeled-pass rule


def test_select_token_interpretations_hand_example_and_empty_row():
    g = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]], [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 1], [0, 0, 0]])
    reference = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # unit vectors (1,0), (0,1), (-1,0): min distances 0, 0, sqrt(2) -> the third token
    got = I.select_token_interpretations(g, mask, reference, normalize=True)
    torch.testing.assert_close(got, torch.tensor([[-1.0, 0.0], [0.0, 0.0]]))


def _aggregate_loop(g, word_ids, mode):
    B, L, D = g.shape
    out, wmask = np.zeros((B, L, D)), np.zeros((B, L))
    for b in range(B):
        for w in range(L):
            pieces = [t for t in range(L) if word_ids[b, t] == w]
            if not pieces:
                continue
            wmask[b, w] = 1
            if mode == "sum":
                out[b, w] = sum(g[b, t].numpy() for t in pieces)
            else:
                norms = [np.linalg.norm(g[b, t].numpy()) for t in pieces]
                out[b, w] = g[b, pieces[int(np.argmax(norms))]].numpy()
    return out, wmask


@pytest.mark.parametrize("mode", ["sum", "max"])
def test_aggregate_subwords_matches_loop(mode):
    g, _ = _grads(2, B=2, L=7, D=3)
    g[1, 3] = g[1, 2]  # two pieces of one word with equal norms: the first must win
    word_ids = torch.tensor([[-1, 0, 0, 1, 2, 2, -1], [-1, 0, 1, 1, -1, -1, -1]])
    got, wmask = I.aggregate_subwords(g, word_ids, mode)
    ref, ref_mask = _aggregate_loop(g, word_ids, mode)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    np.testing.assert_array_equal(wmask.numpy(), ref_mask)
    with pytest.raises(ValueError):
        I.aggregate_subwords(g, word_ids, "mean")


def test_sentence_diversity_matches_brute_force(monkeypatch):
    monkeypatch.setattr(I, "_BLOCK_ROWS", 4)
    rng = np.random.default_rng(0)
    z, z_l = rng.normal(size=(11, 6)).astype(np.float32), rng.normal(size=(3, 6))
    expected = [min(np.linalg.norm(x.astype(np.float64) - c) for c in z_l) for x in z]
    np.testing.assert_allclose(I.sentence_diversity(z, z_l), expected, atol=1e-9)
    with pytest.raises(ValueError):
        I.sentence_diversity(z, np.empty((0, 6)))


def _problem(seed=0, n=40, multi_label=False):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    labeled, unlabeled = np.sort(perm[:8]), np.sort(perm[8:])
    return make_outputs({"alden_interpretation"}, n=n, multi_label=multi_label, labeled=labeled, seed=seed), labeled, unlabeled


def test_alden_topk_matches_brute_force():
    out, labeled, unlabeled = _problem()
    z = out["alden_interpretation"]
    div = [min(np.linalg.norm(z[i] - z[j]) for j in labeled) for i in unlabeled]
    order = sorted(range(unlabeled.size), key=lambda p: (-div[p], unlabeled[p]))
    picked = get_strategy("alden", variant="topk").select(out, labeled, unlabeled, 7).indices
    np.testing.assert_array_equal(picked, unlabeled[order[:7]])


def test_alden_kcenter_is_farthest_first_from_labeled():
    out, labeled, unlabeled = _problem(seed=3)
    z = out["alden_interpretation"].astype(np.float64)
    picked = get_strategy("alden").select(out, labeled, unlabeled, 6).indices
    centers, expected = list(labeled), []
    for _ in range(6):
        rest = [i for i in unlabeled if i not in expected]
        dist = [min(np.linalg.norm(z[i] - z[c]) for c in centers) for i in rest]
        best = rest[int(np.argmax(dist))]
        expected.append(best)
        centers.append(best)
    np.testing.assert_array_equal(picked, expected)
    positions = kcenter_greedy(z[unlabeled], z[labeled], 6, np.random.default_rng(0))
    np.testing.assert_array_equal(picked, unlabeled[np.asarray(positions)])


def test_alden_options_and_prediction_request():
    single = get_strategy("alden")
    assert single.needs == {"alden_interpretation"} and single.predict_labeled and single.requires_trained_model
    assert single.prediction_options() == {
        "alden_interpretation": {"target": "predicted", "embedding_point": "word", "normalize": True, "subword_aggregate": "none"}
    }
    multi = get_strategy("alden", multi_label=True, embedding_point="after_layernorm", subword_aggregate="sum")
    assert multi.prediction_options()["alden_interpretation"] == {
        "target": "all_logits", "embedding_point": "after_layernorm", "normalize": True, "subword_aggregate": "sum"
    }
    with pytest.raises(StrategyError, match="multi-label"):
        get_strategy("alden", multi_label=True, target="predicted")
    for bad in ({"variant": "kmedoids"}, {"target": "probs"}, {"embedding_point": "position"},
                {"normalize": "yes"}, {"subword_aggregate": "mean"}):
        with pytest.raises(StrategyError, match=next(iter(bad))):
            get_strategy("alden", **bad)


def test_alden_refuses_empty_labeled_set():
    out, labeled, unlabeled = _problem()
    with pytest.raises(StrategyError, match="labeled"):
        get_strategy("alden").select(out, np.array([], dtype=int), np.arange(40), 3).indices
