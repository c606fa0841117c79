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


# ------------------------------------------------------------------ output bias at the prior, head learning rate
def test_prior_output_bias_by_hand():
    from lit_al.model import prior_output_bias

    targets = torch.tensor([[1, 0], [1, 0], [0, 0], [1, 1]])
    # p = (n_j + 1/2) / (n + 1): 3.5 / 5 = 0.7 and 1.5 / 5 = 0.3
    torch.testing.assert_close(prior_output_bias(targets, multi_label=True),
                               torch.tensor([0.8472979, -0.8472979]))  # log(0.7 / 0.3)
    one_hot = torch.tensor([[1, 0, 0], [1, 0, 0], [0, 1, 0]])
    # (2.5, 1.5, 0.5) / 4: softmax of log p is p / sum(p)
    bias = prior_output_bias(one_hot, multi_label=False)
    torch.testing.assert_close(bias, torch.log(torch.tensor([0.625, 0.375, 0.125])))


def test_start_from_label_prior_sets_the_output_biases_only_when_asked(bert):
    import numpy as np

    targets = np.array([[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    plain = TextClassifier(str(bert), num_labels=4, multi_label=True, hidden_size=16, output_bias="default")
    before = plain.head.out.bias.detach().clone()
    assert plain.start_from_label_prior(targets) is False
    torch.testing.assert_close(plain.head.out.bias, before)
    prior = (torch.tensor(targets.sum(0)) + 0.5) / 4.0
    for output_bias in ("prior", "auto"):  # auto: prior for a sigmoid head
        model = TextClassifier(str(bert), num_labels=4, multi_label=True, hidden_size=16, output_bias=output_bias)
        assert model.start_from_label_prior(targets) is True
        torch.testing.assert_close(torch.sigmoid(model.head.out.bias.detach()), prior)
    softmax = TextClassifier(str(bert), num_labels=4)
    assert softmax.hparams.output_bias == "auto" and softmax.start_from_label_prior(targets[:, :4]) is False
    one_hot = np.eye(4, dtype=np.float32)[[0, 0, 1]]
    explicit = TextClassifier(str(bert), num_labels=4, output_bias="prior")
    assert explicit.start_from_label_prior(one_hot) is True
    assert explicit.head_kind == "native" and explicit.output_layer is explicit.network.classifier
    torch.testing.assert_close(torch.softmax(explicit.output_layer.bias.detach(), -1), torch.tensor([2.5, 1.5, 0.5, 0.5]) / 5.0)


def test_head_lr_gives_the_head_its_own_learning_rate_and_keeps_the_decay_groups(bert):
    model = TextClassifier(str(bert), num_labels=3, lr=1e-5, head_lr=1e-3, weight_decay=0.01, lr_schedule="constant",
                           hidden_size=8)
    optimizer = model.configure_optimizers()
    ids = {id(p): name for name, p in model.named_parameters()}
    by_name = {ids[id(p)]: (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    assert by_name["head.out.weight"] == (1e-3, 0.01) and by_name["head.out.bias"] == (1e-3, 0.0)
    assert by_name["head.hidden.0.weight"] == (1e-3, 0.01)
    assert all(lr == 1e-5 for name, (lr, _) in by_name.items() if name.startswith("encoder."))
    assert by_name["encoder.embeddings.LayerNorm.weight"] == (1e-5, 0.0)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(by_name) == trainable
    same = TextClassifier(str(bert), num_labels=3, lr=1e-5, lr_schedule="constant").configure_optimizers()
    assert {group["lr"] for group in same.param_groups} == {1e-5}


def test_a_head_without_a_linear_out_keeps_its_initialisation_unless_prior_is_asked_for(bert, caplog):
    import numpy as np

    from lit_al.errors import ConfigError

    targets = np.eye(3, dtype=np.float32)
    for output_bias in ("auto", "prior"):
        model = TextClassifier(str(bert), num_labels=3, multi_label=True, output_bias=output_bias, head="lit_al")
        model.head = nn.Sequential(nn.Linear(32, 3))
        if output_bias == "auto":
            assert model.start_from_label_prior(targets) is False
            assert "keeps its own initialisation" in caplog.text
        else:
            with pytest.raises(ConfigError, match="head.out"):
                model.start_from_label_prior(targets)


@pytest.mark.parametrize("options", [{"head_lr": 0.0}, {"output_bias": "zero"}])
def test_bad_head_options_are_one_config_error(bert, options):
    from lit_al.errors import ConfigError

    with pytest.raises(ConfigError, match="head_lr|output_bias"):
        TextClassifier(str(bert), num_labels=3, **options)
