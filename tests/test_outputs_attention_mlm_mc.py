"""Model-side outputs: ``attention_intra`` (MII), ``surprisal`` (ALPS), consistent ``mc_probs`` (BatchBALD).

Each is checked against a brute-force reference on the tiny random BERT:
eager ``output_attentions=True``, the full-vocabulary MLM forward, and the old
independent-mask MC loop.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from transformers import AutoModel, BertForMaskedLM

from lit_al.outputs import attention as outputs_attention
from lit_al.outputs import mlm as outputs_mlm
from lit_al.cli import main
from lit_al.errors import StrategyError
from lit_al.functional.attention import attention_intra
from lit_al.model import TextClassifier
from lit_al.outputs.mc import MASK_BLOCK_ROWS, ConsistentDropout
from lit_al.outputs.forward import ForwardCache, dropout_active, seeded
from lit_al.outputs.registry import compute_outputs
from lit_al.strategies import PredictionRequest
from tiny import write_config, write_dataset, write_tiny_bert

PAD, UNK, CLS, SEP = 0, 1, 2, 3


@pytest.fixture
def bert(tiny_bert):
    return tiny_bert


@pytest.fixture
def mlm(tiny_mlm):
    return tiny_mlm


def _batch(rows: list[list[int]], pool_index: list[int]) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "pool_index": torch.tensor(pool_index)}


ROWS = [[CLS, 10, 11, 12, UNK, 14, SEP], [CLS, 13, 20, SEP], [CLS, 25, SEP]]


def _request(needs, seed=0, **options) -> PredictionRequest:
    return PredictionRequest(frozenset(needs), options, seed=seed)


# ------------------------------------------------------------------ attention_intra
def _peaked(model: TextClassifier) -> TextClassifier:
    """Sharpen the last layer's attention (a random tiny BERT attends almost uniformly, R_intra ≈ 0)."""
    with torch.no_grad():
        attention = model.encoder.encoder.layer[-1].attention.self
        attention.query.weight.mul_(8.0)
        attention.key.weight.mul_(8.0)
    return model


def _reference_attention(model: TextClassifier, batch) -> torch.Tensor:
    eager = AutoModel.from_pretrained(model.model_path, attn_implementation="eager").eval()
    eager.load_state_dict(model.encoder.state_dict())
    with torch.no_grad():
        out = eager(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True)
    return out.attentions[-1]


@pytest.mark.parametrize("mode", ["column_sum", "row_sum"])
def test_attention_intra_matches_eager_output_attentions(bert, mode):
    model = _peaked(TextClassifier(str(bert), num_labels=3).eval())
    assert model.encoder.config._attn_implementation == "sdpa"  # the recompute path
    batch = _batch(ROWS, [0, 1, 2])
    with torch.no_grad():
        got = compute_outputs(model, batch, _request({"attention_intra"}, attention_intra=mode))["attention_intra"]
    expected = attention_intra(_reference_attention(model, batch), batch["attention_mask"], mode)
    assert got.shape == (3,)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
    if mode == "column_sum":
        assert (got > 1e-3).all()
    else:
        assert got.abs().max() < 1e-10  # softmax rows sum to 1


def test_attention_intra_eager_encoder_uses_its_own_weights(bert, monkeypatch):
    model = _peaked(TextClassifier(str(bert), num_labels=3, attn_implementation="eager").eval())

    def refuse(*args, **kwargs):
        raise AssertionError("an eager encoder returns its probabilities; nothing to recompute")

    monkeypatch.setattr(outputs_attention, "_recompute_probabilities", refuse)
    batch = _batch(ROWS, [0, 1, 2])
    with torch.no_grad():
        got = compute_outputs(model, batch, _request({"attention_intra"}))["attention_intra"]
    expected = attention_intra(_reference_attention(model, batch), batch["attention_mask"])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-8)


def test_attention_intra_shares_the_encoder_pass_and_removes_its_hooks(bert):
    model = _peaked(TextClassifier(str(bert), num_labels=3).eval())
    calls = []
    model.encoder.register_forward_hook(lambda *args: calls.append(1))
    batch = _batch(ROWS, [0, 1, 2])
    with torch.no_grad():
        out = compute_outputs(model, batch, _request({"attention_intra", "cls_hidden", "probs"}))
    assert len(calls) == 1
    attention = model.encoder.encoder.layer[-1].attention.self
    assert not attention._forward_hooks and not attention._forward_pre_hooks
    alone = compute_outputs(model, batch, _request({"attention_intra"}))["attention_intra"]
    torch.testing.assert_close(out["attention_intra"], alone)
    # with the shared pass already done, the computer runs its own hooked pass
    cache = ForwardCache(model, batch)
    _ = cache.encoder_output
    again = outputs_attention.attention_intra_output(model, batch, _request({"attention_intra"}), cache)
    torch.testing.assert_close(again, alone)


def test_attention_intra_errors(bert, monkeypatch):
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [0, 1, 2])
    with pytest.raises(StrategyError, match="attention_intra"):
        compute_outputs(model, batch, _request({"attention_intra"}, attention_intra="diagonal"))
    monkeypatch.setattr(outputs_attention, "_can_recompute", lambda attention: False)
    with pytest.raises(StrategyError, match="attn_implementation: eager"):
        compute_outputs(model, batch, _request({"attention_intra"}))


# ------------------------------------------------------------------ surprisal
def _reference_surprisal(mlm_path, batch) -> torch.Tensor:
    """−ln softmax(full MLM logits)[w_i] at every position (B, width)."""
    model = BertForMaskedLM.from_pretrained(mlm_path).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return -torch.log_softmax(logits, -1).gather(2, batch["input_ids"][..., None]).squeeze(-1)


def _eligible(batch) -> torch.Tensor:
    ids = batch["input_ids"]
    return (batch["attention_mask"] == 1) & ~torch.isin(ids, torch.tensor([PAD, UNK, CLS, SEP, 4]))


def _surprisal(model, batch, mlm, seed=0, **options):
    options = {"mlm_model": str(mlm), "token_rate": 0.15, "max_length": 10, **options}
    with torch.no_grad():
        return compute_outputs(model, batch, _request({"surprisal"}, seed=seed, **options))["surprisal"]


def test_surprisal_at_rate_one_equals_full_vocabulary_brute_force(bert, mlm):
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [3, 7, 11])
    got = _surprisal(model, batch, mlm, token_rate=1.0)
    width = batch["input_ids"].shape[1]
    assert got.shape == (3, 10) and (got[:, width:] == 0).all()
    eligible = _eligible(batch)
    expected = torch.where(eligible, _reference_surprisal(mlm, batch), torch.zeros(()))
    torch.testing.assert_close(got[:, :width], expected, rtol=1e-5, atol=1e-6)
    assert ((got[:, :width] > 0) == eligible).all()  # [CLS], [SEP], [UNK] and padding never sampled


def test_surprisal_samples_per_example_and_is_deterministic(bert, mlm):
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [3, 7, 11])
    got = _surprisal(model, batch, mlm, seed=5, token_rate=0.5)
    width = batch["input_ids"].shape[1]
    draw = outputs_mlm.sample_positions(5, batch["pool_index"], 10, 0.5)[:, :width] & _eligible(batch)
    assert ((got[:, :width] > 0) == draw).all() and draw.any() and not draw.all()
    reference = _reference_surprisal(mlm, batch)
    torch.testing.assert_close(got[:, :width][draw], reference[draw], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_surprisal(model, batch, mlm, seed=5, token_rate=0.5), got, rtol=0, atol=0)
    # the same example alone (narrower padding, another batch) gets the same row
    alone = _surprisal(model, _batch([ROWS[1]], [7]), mlm, seed=5, token_rate=0.5)
    torch.testing.assert_close(alone[0], got[1], rtol=1e-5, atol=1e-6)
    # another seed draws other positions for the long example
    other = _surprisal(model, batch, mlm, seed=6, token_rate=0.5)
    assert not torch.equal(other[0] > 0, got[0] > 0) or not torch.equal(other[1] > 0, got[1] > 0)


def test_surprisal_head_only_path_equals_full_logits_path(bert, mlm, monkeypatch):
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [3, 7, 11])
    lm = outputs_mlm.load_masked_lm(model, str(mlm))
    assert lm.head is lm.model.cls
    fast = _surprisal(model, batch, mlm, token_rate=0.6)
    monkeypatch.setattr(lm, "head", None)
    full = _surprisal(model, batch, mlm, token_rate=0.6)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    assert outputs_mlm.load_masked_lm(model, str(mlm)) is lm  # loaded once per module


def test_surprisal_truncates_wide_inputs_like_the_tokenizer(bert, mlm):
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [3, 7, 11])
    got = _surprisal(model, batch, mlm, token_rate=1.0, max_length=5)
    cut = _batch([[CLS, 10, 11, 12, SEP], [CLS, 13, 20, SEP], [CLS, 25, SEP]], [3, 7, 11])
    expected = torch.where(_eligible(cut), _reference_surprisal(mlm, cut), torch.zeros(()))
    assert got.shape == (3, 5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_surprisal_refuses_a_model_without_mlm_head(bert):
    model = TextClassifier(str(bert), num_labels=3).eval()
    with pytest.raises(StrategyError, match="no masked-LM head weights.*mlm_model"):
        _surprisal(model, _batch(ROWS, [0, 1, 2]), bert)


def test_surprisal_refuses_another_vocabulary_and_bad_options(bert, mlm, tmp_path):
    other = write_tiny_bert(tmp_path / "other", mlm=True, rename={"river": "lake"})
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [0, 1, 2])
    with pytest.raises(StrategyError, match="different vocabulary"):
        _surprisal(model, batch, other)
    with pytest.raises(StrategyError, match="mlm_model"):
        compute_outputs(model, batch, _request({"surprisal"}))
    with pytest.raises(StrategyError, match="token_rate"):
        _surprisal(model, batch, mlm, token_rate=0.0)
    with pytest.raises(StrategyError, match="mlm_model 'no/such-model'"):
        _surprisal(model, batch, "no/such-model")


# ------------------------------------------------------------------ mc_probs
def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _mc(model, batch, seed=3, **options):
    options = {"mc_passes": 4, **options}
    with torch.no_grad():
        return compute_outputs(model, batch, _request({"mc_probs"}, seed=seed, **options))["mc_probs"]


@pytest.mark.parametrize("scope", ["full", "head"])
def test_consistent_masks_do_not_depend_on_batch_or_position(bert, scope):
    model = TextClassifier(str(bert), num_labels=3, dropout=0.3, hidden_size=8).eval()
    x = ROWS[1]
    first = _mc(model, _batch([x, ROWS[2]], [5, 6]), mc_scope=scope, mc_consistent=True)
    second = _mc(model, _batch([ROWS[0], ROWS[2], x, x], [1, 6, 5, 9]), mc_scope=scope, mc_consistent=True)
    assert first.shape == (2, 4, 3)
    torch.testing.assert_close(second[2], first[0], rtol=1e-5, atol=1e-6)  # another batch, position, padding
    torch.testing.assert_close(second[3], second[2], rtol=1e-5, atol=1e-6)  # another pool index
    torch.testing.assert_close(second[1], first[1], rtol=1e-5, atol=1e-6)
    for t in range(1, 4):
        assert not torch.allclose(first[:, t], first[:, 0])  # each pass draws new masks
    deterministic = compute_outputs(model, _batch([x], [5]), _request({"probs"}))["probs"]
    assert not torch.allclose(first[0], deterministic.expand(4, -1))
    torch.testing.assert_close(_mc(model, _batch([x, ROWS[2]], [5, 6]), mc_scope=scope, mc_consistent=True), first)


def test_consistent_mode_restores_modes_hooks_and_global_rng(bert):
    model = TextClassifier(str(bert), num_labels=3, dropout=0.3).eval()
    model.encoder.encoder.layer[0].train()  # a mixed state must come back as it was
    before = _modes(model)
    rng = torch.random.get_rng_state()
    _mc(model, _batch(ROWS, [0, 1, 2]), mc_consistent=True)
    assert _modes(model) == before
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("scope", ["full", "head"])
def test_independent_mode_is_the_seeded_train_mode_loop(bert, scope):
    model = TextClassifier(str(bert), num_labels=3, dropout=0.3).eval()
    batch = _batch([ROWS[1], ROWS[1]], [4, 9])
    got = _mc(model, batch, mc_scope=scope)
    expected = []
    assert model.head_kind == "native"
    network = model.network  # BertForSequenceClassification: classifier(dropout(pooler output))
    with torch.no_grad():
        pooled = model.encode(batch).pooler_output
        with dropout_active(network.dropout if scope == "head" else model):
            for t in range(4):
                with seeded(3, 4, t):
                    logits = network.classifier(network.dropout(pooled)) if scope == "head" else model(batch)
                    expected.append(model.probabilities(logits))
    torch.testing.assert_close(got, torch.stack(expected, 1), rtol=0, atol=0)
    assert not torch.allclose(got[0], got[1])  # independent masks: identical inputs differ
    assert not any(m.training for m in model.modules())


def test_consistent_dropout_masks():
    p = 0.25
    net = nn.Dropout(p)
    root = nn.Sequential(net)
    with ConsistentDropout(root, seed=1) as masks:
        masks.begin_pass(0)
        wide = net(torch.ones(2, 2 * MASK_BLOCK_ROWS + 6, 50))
        narrow = net(torch.ones(3, MASK_BLOCK_ROWS + 8, 50))  # second call of the module: another mask
        masks.begin_pass(0)
        again = net(torch.ones(1, MASK_BLOCK_ROWS + 8, 50))  # first call again
        vector = net(torch.ones(4, 50))
        masks.begin_pass(1)
        next_pass = net(torch.ones(1, MASK_BLOCK_ROWS + 8, 50))
    assert torch.equal(wide[0], wide[1])  # one mask for the whole batch
    scaled = torch.tensor(1 / (1 - p))
    assert ((wide == 0) | torch.isclose(wide, scaled)).all()
    assert abs(float((wide == 0).float().mean()) - p) < 0.03
    torch.testing.assert_close(again[0], wide[0, : MASK_BLOCK_ROWS + 8])  # mask of a position ignores the width
    assert not torch.equal(narrow[0], again[0]) and not torch.equal(next_pass[0], again[0])
    assert torch.equal(vector[0], vector[3]) and vector.shape == (4, 50)
    assert not net._forward_hooks and net.training  # Sequential() is built in train mode; restored


def test_consistent_dropout_refuses_other_flavours_and_bad_options(bert):
    with pytest.raises(StrategyError, match="Dropout2d"):
        with ConsistentDropout(nn.Sequential(nn.Dropout2d(0.1)), seed=0):
            pass
    model = TextClassifier(str(bert), num_labels=3).eval()
    batch = _batch(ROWS, [0, 1, 2])
    with pytest.raises(StrategyError, match="mc_consistent"):
        _mc(model, batch, mc_consistent="yes")
    with pytest.raises(StrategyError, match="mc_scope"):
        _mc(model, batch, mc_scope="encoder")
    with pytest.raises(StrategyError, match="mc_passes"):
        _mc(model, batch, mc_passes=0)


# ------------------------------------------------------------------ through the loop
@pytest.mark.parametrize(
    "strategy, output",
    [({"name": "alps", "max_length": 16}, "surprisal"), ({"name": "mii"}, "attention_intra")],
)
def test_outputs_through_the_cli_loop(tmp_path, bert, mlm, strategy, output):
    if strategy["name"] == "alps":
        strategy = {**strategy, "mlm_model": str(mlm)}
    data = write_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir, strategy=strategy, rounds=1)
    raw = json.loads(config.read_text())
    raw["loop"]["keep_outputs"] = True
    config.write_text(json.dumps(raw))
    assert main(["fit", "--config", str(config)]) == 0
    round_dir = run_dir / "rounds" / "round_000"
    selected = pd.read_csv(round_dir / "selected.csv")
    assert len(selected) == 10 and selected["pool_index"].is_unique
    rows = np.load(round_dir / "outputs" / f"{output}.npy")
    unlabeled = ~np.isnan(rows.reshape(len(rows), -1)).any(axis=1)
    assert unlabeled.sum() >= 68  # 80 pool rows, 12 labeled (MII predicts those too)
    values = rows[unlabeled]
    if output == "surprisal":
        assert values.shape[1] == 16 and (values >= 0).all() and (values > 0).any(axis=1).mean() > 0.5
    else:
        assert np.unique(values).size > 50  # distinct inputs, distinct attention
