"""Gradient outputs (``egl_full``, ``egl_word``, ``alden_interpretation``) against plain autograd, and the loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from lit_al.cli import main
from lit_al.errors import StrategyError
from lit_al.functional.gradient import sample_multilabel_targets
from lit_al.model import TextClassifier
from lit_al.outputs.gradients import example_generator, word_ids_from_pieces, wordpiece_continuation_table
from lit_al.outputs.registry import compute_outputs
from lit_al.strategies import PredictionRequest, get_strategy
from tiny import write_config, write_dataset, write_tiny_bert

SPECIAL = {0, 1, 2, 3, 4}  # [PAD] [UNK] [CLS] [SEP] [MASK] in tiny.py's vocabulary


@pytest.fixture
def bert(tiny_bert):
    return tiny_bert


@pytest.fixture(scope="module")
def pieces_bert(tmp_path_factory):
    """The tiny BERT with two vocabulary entries turned into WordPiece continuations (same vocab size)."""
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "pieces", rename={"who": "##s", "what": "##ing"})


def _batch():
    # token 10 repeats in row 0; [UNK] (1) is special; row 2 has no content token
    ids = torch.tensor([[2, 10, 11, 10, 1, 12, 3], [2, 13, 14, 3, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "pool_index": torch.tensor([5, 9, 2])}


def _model(path, **kwargs):
    torch.manual_seed(0)
    return TextClassifier(str(path), **kwargs).eval()


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _loss(model, logits, target):
    if model.multi_label:
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    return F.cross_entropy(logits, target)


def _targets(model, probs, pool_index, seed, samples):
    """Reference targets: every class, or the documented per-example Bernoulli draws."""
    if not model.multi_label:
        return [torch.tensor([c]) for c in range(probs.shape[-1])], probs[0]
    y = sample_multilabel_targets(probs.float(), samples, example_generator(seed, pool_index))[:, 0]
    return [y[s][None] for s in range(samples)], torch.full((samples,), 1.0 / samples)


def _row(batch, b):
    return {k: v[b : b + 1] for k, v in batch.items()}


# ---------------------------------------------------------------- egl_full
@pytest.mark.parametrize("multi_label,norm", [(False, "l2"), (False, "squared"), (True, "l2")])
def test_egl_full_matches_per_example_autograd(bert, multi_label, norm):
    model = _model(bert, num_labels=3, multi_label=multi_label, pooling="mean")
    batch = _batch()
    request = PredictionRequest(frozenset({"egl_full"}), {"egl_norm": norm, "egl_samples": 4}, seed=11)
    with torch.inference_mode():  # what Lightning does by default: the computer must refuse it
        with pytest.raises(StrategyError, match="inference_mode"):
            compute_outputs(model, batch, request)
    model.train()  # the computer must switch dropout off itself
    got = compute_outputs(model, batch, request)["egl_full"]
    assert model.training  # and restore the mode
    model.eval()
    assert got.shape == (3,)
    for b in range(3):
        row = _row(batch, b)  # padded, unlike the computer's per-example forward
        with torch.no_grad():
            probs = model.probabilities(model(row))
        targets, weights = _targets(model, probs, int(row["pool_index"]), 11, 4)
        expected = 0.0
        for target, weight in zip(targets, weights):
            model.zero_grad()
            _loss(model, model(row), target).backward()
            squared = sum(float(p.grad.double().pow(2).sum()) for p in _params(model) if p.grad is not None)
            expected += float(weight) * (squared if norm == "squared" else squared**0.5)
        assert got[b].item() == pytest.approx(expected, rel=1e-4)


def test_egl_full_does_not_depend_on_batching(bert):
    model = _model(bert, num_labels=2, multi_label=True)
    batch = _batch()
    request = PredictionRequest(frozenset({"egl_full"}), {"egl_samples": 3}, seed=4)
    whole = compute_outputs(model, batch, request)["egl_full"]
    alone = torch.cat([compute_outputs(model, _row(batch, b), request)["egl_full"] for b in range(3)])
    torch.testing.assert_close(whole, alone, rtol=1e-5, atol=1e-7)
    other_seed = compute_outputs(model, batch, PredictionRequest(frozenset({"egl_full"}), {"egl_samples": 3}, seed=5))
    assert not torch.equal(whole, other_seed["egl_full"])


# ---------------------------------------------------------------- egl_word
@pytest.mark.parametrize("multi_label,norm", [(False, "l2"), (False, "squared"), (True, "l2")])
def test_egl_word_matches_autograd_on_the_embedding_matrix(bert, multi_label, norm):
    model = _model(bert, num_labels=3, multi_label=multi_label)
    batch = _batch()
    request = PredictionRequest(frozenset({"egl_word"}), {"egl_norm": norm, "egl_samples": 3}, seed=2)
    trainable = [p.requires_grad for p in model.parameters()]
    got = compute_outputs(model, batch, request)["egl_word"]
    assert [p.requires_grad for p in model.parameters()] == trainable  # frozen only while computing
    weight = model.encoder.get_input_embeddings().weight
    for b in range(3):
        row = _row(batch, b)
        ids = row["input_ids"][0][row["attention_mask"][0].bool()].tolist()
        words = sorted(set(ids) - SPECIAL)
        with torch.no_grad():
            probs = model.probabilities(model(row))
        targets, weights = _targets(model, probs, int(row["pool_index"]), 2, 3)
        per_word = np.zeros(len(words))
        for target, w in zip(targets, weights):
            (grad,) = torch.autograd.grad(_loss(model, model(row), target), weight)
            lengths = grad[words].double().norm(dim=-1).numpy()
            per_word += float(w) * (lengths**2 if norm == "squared" else lengths)
        expected = per_word.max() if words else 0.0
        assert got[b].item() == pytest.approx(expected, rel=1e-4, abs=1e-9)
    assert got[2].item() == 0.0  # only [CLS] [SEP]: W(x) is empty


# ------------------------------------------------------------------- ALDEN
def _token_gradients(model, batch, point, target):
    """Reference (B, ℓ, D): autograd w.r.t. a zero perturbation added at the embedding point."""
    module = model.encoder.get_input_embeddings() if point == "word" else model.encoder.embeddings.LayerNorm
    deltas = []

    def add_delta(mod, args, output):
        delta = torch.zeros_like(output, requires_grad=True)
        deltas.append(delta)
        return output + delta

    handle = module.register_forward_hook(add_delta)
    try:
        logits = model(batch)
    finally:
        handle.remove()
    if target == "predicted":
        picked = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
        return torch.autograd.grad(picked, deltas[0])[0]
    per_logit = [torch.autograd.grad(logits[:, c].sum(), deltas[0], retain_graph=True)[0] for c in range(logits.shape[1])]
    return torch.stack(per_logit, dim=2).flatten(2)


def _chosen(grads, tokens, reference, normalize):
    """Brute force: the chosen token's (normalised) gradient per example."""
    rows = []
    for b, positions in enumerate(tokens):
        if not positions:
            rows.append(torch.zeros(grads.shape[-1]))
            continue
        g = grads[b, positions]
        unit = g / g.norm(dim=-1, keepdim=True) if normalize else g
        if reference is None:
            score = g.norm(dim=-1)
        else:
            score = torch.cdist(unit.double(), torch.as_tensor(reference).double()).min(dim=1).values
        rows.append(unit[int(score.argmax())])
    return torch.stack(rows)


@pytest.mark.parametrize("point,target,normalize", [
    ("word", "predicted", True), ("after_layernorm", "all_logits", False), ("word", "all_logits", True),
])
def test_alden_interpretation_two_passes_match_autograd(bert, point, target, normalize):
    model = _model(bert, num_labels=3)
    batch = _batch()
    options = {"alden_interpretation": {"target": target, "embedding_point": point, "normalize": normalize,
                                         "subword_aggregate": "none"}}
    grads = _token_gradients(model, batch, point, target)
    tokens = [[t for t in range(7) if batch["attention_mask"][b, t] and int(batch["input_ids"][b, t]) not in SPECIAL]
              for b in range(3)]
    labeled = compute_outputs(model, batch, PredictionRequest(frozenset({"alden_interpretation"}), options))
    z_l = labeled["alden_interpretation"]
    assert z_l.shape == (3, 32 * (1 if target == "predicted" else 3))
    torch.testing.assert_close(z_l, _chosen(grads, tokens, None, normalize), rtol=1e-4, atol=1e-6)
    # at the scale of the rows (unnormalised gradients of a random head are ~1e-5): else every distance is the
    # reference's norm and the farthest token is decided by rounding
    scale = 1.0 if normalize else float(z_l.abs().max())
    reference = scale * torch.randn(4, z_l.shape[1], generator=torch.Generator().manual_seed(0))
    request = PredictionRequest(frozenset({"alden_interpretation"}), options, reference={"alden_interpretation": reference})
    unlabeled = compute_outputs(model, batch, request)["alden_interpretation"]
    torch.testing.assert_close(unlabeled, _chosen(grads, tokens, reference, normalize), rtol=1e-4, atol=1e-6)
    assert torch.count_nonzero(unlabeled[2]) == 0  # no content token


def test_word_ids_match_the_tokenizer(pieces_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pieces_bert)
    texts = ["the balls and coaching teams", "goals of a big chip", "codes data"]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"].bool()
    valid = mask & ~torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    got = word_ids_from_pieces(ids, valid, wordpiece_continuation_table(tokenizer, len(tokenizer)))
    for b in range(len(texts)):
        first = {}
        expected = []
        for position, word in enumerate(encoded.word_ids(b)):
            if word is None or not valid[b, position]:
                expected.append(-1)
            else:
                expected.append(first.setdefault(word, len(first)))
        assert got[b].tolist() == expected
    assert (got[0] >= 0).sum() > len(set(got[0].tolist()) - {-1})  # some word has several pieces


def test_alden_subword_sum_adds_piece_gradients(pieces_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pieces_bert)
    model = _model(pieces_bert, num_labels=3)
    encoded = tokenizer(["balls coaching of data", "teams"], padding=True, return_tensors="pt")
    batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "pool_index": torch.tensor([0, 1])}
    options = {"target": "predicted", "embedding_point": "word", "normalize": False}
    request = PredictionRequest(frozenset({"alden_interpretation"}),
                                {"alden_interpretation": {**options, "subword_aggregate": "sum"}})
    got = compute_outputs(model, batch, request)["alden_interpretation"]
    grads = _token_gradients(model, batch, "word", "predicted")
    for b in range(2):
        words: dict[int, torch.Tensor] = {}
        for position, word in enumerate(encoded.word_ids(b)):
            if word is not None:
                words[word] = words.get(word, 0) + grads[b, position]
        best = max(words.values(), key=lambda g: float(g.norm()))
        torch.testing.assert_close(got[b], best, rtol=1e-4, atol=1e-6)


def test_alden_refuses_subwords_without_wordpiece(bert, monkeypatch):
    from lit_al.outputs.forward import classifier_tokenizer

    model = _model(bert, num_labels=2)
    tokenizer = classifier_tokenizer(model)
    monkeypatch.setattr(type(tokenizer), "backend_tokenizer", property(lambda self: None))
    request = PredictionRequest(frozenset({"alden_interpretation"}), {"alden_interpretation": {"subword_aggregate": "max"}})
    with pytest.raises(StrategyError, match="subword_aggregate"):
        compute_outputs(model, _batch(), request)


# ------------------------------------------------------------ declarations
def test_strategies_declare_gradients_and_labeled_first_pass():
    assert get_strategy("egl", variant="full").needs_gradients
    assert get_strategy("egl", variant="word").needs_gradients
    assert not get_strategy("egl").needs_gradients and not get_strategy("entropy").needs_gradients
    alden = get_strategy("alden")
    assert alden.needs_gradients and alden.predict_labeled_first
    assert not get_strategy("egl", variant="full").predict_labeled_first


# ----------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "single", n_pool=40)


@pytest.mark.parametrize("strategy", [
    {"name": "egl", "variant": "full"},
    {"name": "egl", "variant": "word"},
    {"name": "alden"},
])
def test_one_round_through_the_cli(tmp_path, bert, tiny_data, strategy, monkeypatch):
    from lit_al.data.module import ActiveDataModule
    from lit_al.outputs.predictor import OutputPredictor

    loaded: list[list[int]] = []  # the rows of every prediction loader, in order
    predicted: list[tuple[list[int], bool]] = []
    real_loader, real_start = ActiveDataModule.predict_loader, OutputPredictor.on_predict_start

    def loader(self, rows, shard=(0, 1)):
        loaded.append([int(i) for i in rows])
        return real_loader(self, rows, shard)

    def record(self):
        real_start(self)
        if self.request.needs == {"probs"}:
            return  # the stop set's pass (stopping signals), not the strategy's
        predicted.append((loaded[-1], bool(self.request.reference)))

    monkeypatch.setattr(ActiveDataModule, "predict_loader", loader)
    monkeypatch.setattr(OutputPredictor, "on_predict_start", record)
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=bert, data=tiny_data, run_dir=run_dir, strategy=strategy,
                          rounds=1, query_size=7)
    assert main(["fit", "--config", str(config)]) == 0
    selected = pd.read_csv(run_dir / "rounds" / "round_000" / "selected.csv")
    assert len(selected) == 7 and selected["pool_index"].is_unique
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["query_strategy"].iloc[0] == strategy["name"]
    state = json.loads((run_dir / "state.json").read_text())
    seed_rows = sorted(r["pool_index"] for r in state["records"] if r["round"] == 0)
    assert sum(r["round"] == 1 for r in state["records"]) == 7
    if strategy["name"] == "alden":
        (labeled_rows, first_ref), (unlabeled_rows, second_ref) = predicted
        assert len(labeled_rows) == 12 and len(unlabeled_rows) == 28
        assert not set(labeled_rows) & set(unlabeled_rows)
        assert not first_ref and second_ref  # Z_L reaches the unlabeled pass only
        assert sorted(labeled_rows) == seed_rows
    else:
        assert len(predicted) == 1 and len(predicted[0][0]) == 28
    if strategy.get("variant") in ("full", "word"):
        assert selected["score"].notna().all() and selected["score"].is_monotonic_decreasing
