"""TextClassifier and the prediction outputs on a tiny random BERT."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_al.model import TextClassifier
from lit_al.outputs.forward import dropout_active
from lit_al.outputs.registry import compute_outputs
from lit_al.strategies import PredictionRequest


@pytest.fixture
def bert(tiny_bert):
    return tiny_bert


def _batch():
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "pool_index": torch.tensor([4, 9])}


@pytest.mark.parametrize("pooling", ["cls", "pooled", "mean"])
def test_pooling_and_probabilities(bert, pooling):
    model = TextClassifier(str(bert), pooling=pooling, num_labels=3).eval()
    out = compute_outputs(model, _batch(), PredictionRequest(frozenset({"probs", "embeddings", "cls_hidden"})))
    assert out["probs"].shape == (2, 3)
    torch.testing.assert_close(out["probs"].sum(-1), torch.ones(2))
    assert out["embeddings"].shape == (2, 32) and out["cls_hidden"].shape == (2, 32)


def test_mean_pooling_ignores_padding(bert):
    model = TextClassifier(str(bert), pooling="mean", num_labels=2).eval()
    batch = _batch()
    full = model.sentence_representation(model.encode(batch), batch["attention_mask"])
    short = {k: v[1:, :3] if v.ndim == 2 else v[1:] for k, v in batch.items()}
    alone = model.sentence_representation(model.encode(short), short["attention_mask"])
    torch.testing.assert_close(full[1], alone[0], atol=1e-5, rtol=1e-5)


def test_multilabel_head_is_sigmoid_and_hidden_layer(bert):
    model = TextClassifier(str(bert), num_labels=4, multi_label=True, hidden_size=16).eval()
    out = compute_outputs(model, _batch(), PredictionRequest(frozenset({"probs", "embeddings"})))
    assert out["probs"].shape == (2, 4) and not torch.allclose(out["probs"].sum(-1), torch.ones(2))
    assert out["embeddings"].shape == (2, 16)


def test_encoder_trains_with_dropout(bert):
    model = TextClassifier(str(bert), num_labels=2)
    assert model.encoder.training  # from_pretrained returns eval mode; the module must train with dropout


@pytest.mark.parametrize("scope", ["full", "head"])
def test_mc_probs_are_stochastic_seeded_and_restore_modes(bert, scope):
    model = TextClassifier(str(bert), num_labels=3, dropout=0.3).eval()
    request = PredictionRequest(frozenset({"mc_probs"}), {"mc_passes": 4, "mc_scope": scope}, seed=5)
    a = compute_outputs(model, _batch(), request)["mc_probs"]
    b = compute_outputs(model, _batch(), request)["mc_probs"]
    assert a.shape == (2, 4, 3)
    torch.testing.assert_close(a, b)  # seeded per (seed, batch, pass)
    assert not torch.allclose(a[:, 0], a[:, 1])  # dropout was on
    assert not any(m.training for m in model.modules())  # every mode restored
    deterministic = compute_outputs(model, _batch(), PredictionRequest(frozenset({"probs"})))["probs"]
    assert not torch.allclose(a.mean(1), deterministic)


def test_dropout_active_touches_only_dropout_and_its_owners():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)))
    net.eval()
    with dropout_active(net):
        assert net[2][1].training and net[2].training
        assert not net[1].training and not net[0].training
    assert not any(m.training for m in net.modules())


@pytest.mark.slow
def test_compiled_encoder_gives_the_same_outputs_and_weights(bert):
    torch.manual_seed(0)
    plain = TextClassifier(str(bert), num_labels=3).eval()
    compiled = TextClassifier(str(bert), num_labels=3, compile=True).eval()
    compiled.load_state_dict(plain.state_dict())
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no "_orig_mod." prefixes
    request = PredictionRequest(frozenset({"probs", "embeddings"}))
    with torch.inference_mode():
        expected = compute_outputs(plain, _batch(), request)
        got = compute_outputs(compiled, _batch(), request)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5)
    assert compiled.encoder._compiled_call_impl is not None
