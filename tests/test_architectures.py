"""The architecture matrix: nine encoder families, every strategy family, a native export loaded by ``pipeline``.

Each family is a tiny random masked-LM checkpoint with a tokenizer trained on the fly
(``tiny_encoders``). Per family: one ``lit_al fit`` round per strategy family (uncertainty,
MC dropout, BADGE, Core-Set, EGL, ALPS with the family's masked LM, ALDEN) through the real
loop, the round-0 model trained once and shared (``loop.round0_model_dir``) and the batch
proposed to a person (``loop.oracle: person``), so that each run scores and selects without
training again; then ``lit_al export`` and, in a process without lit_al, ``pipeline``.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest
import torch

from lit_al.cli import main
from lit_al.errors import ConfigError
from lit_al.model import TextClassifier, load_run_model, save_run_model
from test_product import LABELS, TEXTS, _as_matrix, _assert_no_local_path, _pipeline_probs
from tiny import write_config, write_dataset
from tiny_encoders import FAMILIES, write_encoder

#: One strategy per strategy family (ALPS's masked LM is the family's own checkpoint).
STRATEGIES = {
    "uncertainty": "entropy",
    "mc_dropout": {"name": "bald", "mc_passes": 3},
    "badge": "badge",
    "coreset": "coreset",
    "egl": "egl",
    "alps": {"name": "alps", "mlm_model": None},
    "alden": "alden",
}
#: Native classes by family (the test checks the export is this class and loads without remote code).
NATIVE_CLASSES = {
    "bert": "BertForSequenceClassification", "roberta": "RobertaForSequenceClassification",
    "distilbert": "DistilBertForSequenceClassification", "deberta-v2": "DebertaV2ForSequenceClassification",
    "electra": "ElectraForSequenceClassification", "xlm-roberta": "XLMRobertaForSequenceClassification",
    "mpnet": "MPNetForSequenceClassification", "albert": "AlbertForSequenceClassification",
    "modernbert": "ModernBertForSequenceClassification",
}
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
def data(root):
    return write_dataset(root / "data", n_pool=40, n_dev=12, n_test=12)


@pytest.fixture(scope="module")
def encoders(root):
    return {family: write_encoder(family, root / "encoders" / family) for family in FAMILIES}


def _config(root, family, encoder, data, name, strategy):
    if isinstance(strategy, dict) and strategy.get("name") == "alps":
        strategy = {**strategy, "mlm_model": str(encoder)}
    path = write_config(root / family / f"{name}.yaml", model=encoder, data=data, run_dir=root / family / name,
                        strategy=strategy, rounds=1, query_size=5, initial={"scenario": "random", "n": 10})
    config = json.loads(path.read_text())
    config["trainer"]["max_epochs"] = 1
    config["loop"].update(oracle="person", round0_model_dir=str(root / family / "round0"))
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_strategy_family_runs_a_round_and_the_model_exports_natively(family, root, data, encoders, caplog):
    start = time.perf_counter()
    encoder = encoders[family]
    (root / family).mkdir(exist_ok=True)
    for name, strategy in STRATEGIES.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lit_al"):
            assert main(["fit", "--config", str(_config(root, family, encoder, data, name, strategy))]) == 0, name
        state = json.loads((root / family / name / "state.json").read_text())
        assert len(state["pending"]["pool_indices"]) == 5, name  # one round: a batch proposed
        if name == "mc_dropout":
            # ALBERT and ModernBERT checkpoints set every encoder dropout to 0: MC dropout says so
            assert ("every dropout rate" in caplog.text) == (family in ("albert", "modernbert")), caplog.text
    out = root / family / "export"
    assert main(["export", str(root / family / "uncertainty"), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [NATIVE_CLASSES[family]] and "auto_map" not in config
    assert not list(out.glob("*.py"))
    _assert_no_local_path(out, root)
    TIMES[family] = time.perf_counter() - start


def _reference_probs(run_dir, texts):
    from transformers import AutoTokenizer

    model, meta = load_run_model(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(meta["model"]["model_name_or_path"])
    with torch.no_grad():
        rows = [model.probabilities(model({k: v for k, v in tokenizer(t, truncation=True, max_length=16,
                                                                       return_tensors="pt").items()
                                           if k in ("input_ids", "attention_mask")}))[0].numpy() for t in texts]
    return np.stack(rows)


#: lit_al heads a transformers class computes exactly (product.export.EXACT_HEADS), by family.
EXACT = {
    "bert": {"pooling": "pooled"}, "albert": {"pooling": "pooled"},
    "roberta": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "tanh"},
    "xlm-roberta": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "tanh"},
    "mpnet": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "tanh"},
    "electra": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "gelu"},
    "deberta-v2": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "gelu"},
    "distilbert": {"pooling": "cls", "hidden_size": 32, "hidden_activation": "relu"},
}


def _exact_lit_al_export(root, family, encoder):
    """A lit_al head with perturbed weights, kept as a run's model and exported: (folder, lit_al's probabilities)."""
    from lit_al.product.export import export_run

    run_dir = root / family / "exact_run"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("data:\n  max_length: 16\n")
    kwargs = {"model_name_or_path": str(encoder), "head": "lit_al", **EXACT[family]}
    torch.manual_seed(0)
    model = TextClassifier(**kwargs, num_labels=3, label_names=LABELS)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    save_run_model(run_dir / "model", model, kwargs, 0)
    exported = export_run(run_dir, root / family / "exact_export")
    assert not exported.trust_remote_code and exported.architecture == NATIVE_CLASSES[family]
    return exported.directory, _reference_probs(run_dir, TEXTS)


def test_every_export_loads_with_pipeline_without_lit_al_and_gives_lit_al_probabilities(root, data, encoders):
    """The nine native exports, and the lit_al heads exported as their exact transformers class, in one process."""
    folders, expected = [], {}
    for family in FAMILIES:
        if not (root / family / "export").exists():
            pytest.skip("needs the matrix runs of this module (run the whole file)")
        folders.append(root / family / "export")
        expected[str(folders[-1])] = _reference_probs(root / family / "uncertainty", TEXTS)
    for family in EXACT:
        folder, probs = _exact_lit_al_export(root, family, encoders[family])
        folders.append(folder)
        expected[str(folder)] = probs
    results = _pipeline_probs(root, folders, TEXTS, trust=False)
    for folder in folders:
        result = results[str(folder)]
        family = folder.parent.name
        assert result["class"] == NATIVE_CLASSES[family]
        np.testing.assert_allclose(_as_matrix(result["rows"]), expected[str(folder)], atol=1e-5, err_msg=str(folder))
    print("matrix seconds per family:", {family: round(seconds, 1) for family, seconds in TIMES.items()})


@pytest.mark.parametrize("family", ["distilbert", "deberta-v2", "electra", "modernbert"])
def test_pooled_on_an_encoder_without_a_pooler_is_refused_when_the_model_is_built(family, encoders):
    with pytest.raises(ConfigError, match="has no pooler"):
        TextClassifier(str(encoders[family]), pooling="pooled", num_labels=3)


def test_pooled_without_a_pooler_fails_before_the_run_directory_is_written(root, data, encoders, capsys):
    config = _config(root, "distilbert", encoders["distilbert"], data, "pooled", "entropy")
    run_dir = root / "distilbert" / "pooled"
    assert main(["fit", "--config", str(config), "--model.pooling", "pooled"]) == 1
    err = capsys.readouterr().err.strip()
    assert "has no pooler" in err and len(err.splitlines()) == 1, err
    assert not run_dir.exists()


def test_an_encoder_dropout_of_zero_stays_zero_in_lit_als_head(encoders):
    """ALBERT's config says hidden_dropout_prob 0.0: the head keeps 0.0 (it was turned into 0.1)."""
    model = TextClassifier(str(encoders["albert"]), head="lit_al", num_labels=3)
    assert model.encoder.config.hidden_dropout_prob == 0.0 and model.head.dropout.p == 0.0
    assert TextClassifier(str(encoders["bert"]), head="lit_al", num_labels=3).head.dropout.p == 0.1


def test_native_dropout_option_sets_every_head_dropout(encoders):
    model = TextClassifier(str(encoders["modernbert"]), dropout=0.25, num_labels=3)
    rates = {name: module.p for name, module in model.network.named_modules() if isinstance(module, torch.nn.Dropout)
             and not name.startswith("model.")}
    assert rates == {"drop": 0.25}


@pytest.mark.parametrize("options", [{"pooling": "cls"}, {"hidden_size": 8}, {"hidden_activation": "tanh"}])
def test_lit_al_head_options_with_the_native_head_are_one_config_error(options, encoders):
    with pytest.raises(ConfigError, match=f"model.{next(iter(options))} shapes lit_al's own head"):
        TextClassifier(str(encoders["bert"]), head="native", num_labels=3, **options)
    assert TextClassifier(str(encoders["bert"]), num_labels=3, **options).head_kind == "lit_al"  # unset head: lit_al
