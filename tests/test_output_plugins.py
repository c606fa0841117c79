"""Outputs from the user's own module: catalogued by subclassing ``lit_al.outputs.Output``, used by a run.

The plug-in under test is ``tests/plugins/logit_margin.py`` (an output and the strategy that needs it),
which a config names by ``class_path`` only: nothing in lit_al knows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lit_al.cli import main
from lit_al.errors import StrategyError
from lit_al.outputs import CATALOG, Output, PredictionOptions, PredictionRequest, flagged
from tiny import write_config, write_dataset

RIVAL = 3


@pytest.fixture
def catalog():
    """The catalogue as it was before the test: outputs a test defines do not outlive it."""
    saved = dict(CATALOG)
    yield CATALOG
    CATALOG.clear()
    CATALOG.update(saved)


@dataclass(frozen=True)
class ScaleOptions:
    scale: float = 1.0
    mode: str = "abs"
    floor: int | None = None


def _define(name: str = "scaled_probe", **attributes):
    """Define (and so catalogue) an ``Output`` subclass named ``name``."""
    body = {"name": name, "options": ScaleOptions, "compute": lambda self, module, batch, request, cache: None,
            **attributes}
    return type("Probe", (Output,), body)


# ------------------------------------------------------------------ a real run


def _round0_model(model_dir: Path, round0_dir: Path):
    """The run's round-0 classifier (the shared round-0 weights), in eval mode."""
    from lit_al.model import TextClassifier
    from lit_al.round0 import SharedRound0

    model = TextClassifier(model_name_or_path=str(model_dir), num_labels=3, multi_label=False,
                           label_names=["sport", "money", "tech"])
    SharedRound0.load_weights(model, round0_dir)
    return model.eval()


def _brute_force_margins(model_dir: Path, round0_dir: Path, texts: list[str]) -> np.ndarray:
    """z_(1) - z_(RIVAL) of every text, one text at a time through the round-0 model's plain forward pass."""
    import torch
    from transformers import AutoTokenizer

    model = _round0_model(model_dir, round0_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    margins = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=16, return_tensors="pt")
            logits = model({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})[0]
            ordered = torch.sort(logits, descending=True).values
            margins.append(float(ordered[0] - ordered[RIVAL - 1]))
    return np.array(margins)


def _fit_with(strategy: dict, tmp_path: Path, tiny_bert: Path) -> Path:
    """A 1-round ``lit_al fit`` of a 60-text pool in ``tmp_path/run`` with ``strategy`` (a plug-in's class_path;
    tests/ is on sys.path, as a user's package would be), keeping its outputs; returns the data folder."""
    data = write_dataset(tmp_path / "data", n_pool=60)
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=data, run_dir=tmp_path / "run",
                          strategy=strategy, rounds=1, query_size=10)
    payload = json.loads(config.read_text())
    payload["loop"].update(keep_outputs=True, round0_model_dir=str(tmp_path / "round0"))
    config.write_text(json.dumps(payload))
    assert main(["fit", "--config", str(config)]) == 0
    return data


def test_a_run_uses_an_output_and_a_strategy_from_the_users_own_module(tmp_path, tiny_bert):
    data = _fit_with({"class_path": "plugins.logit_margin.SmallestLogitMargin", "init_args": {"rival": RIVAL}},
                     tmp_path, tiny_bert)
    run = tmp_path / "run"
    pool = pd.read_csv(data / "train.csv")
    state = json.loads((run / "state.json").read_text())
    initial = {r["pool_index"] for r in state["records"] if r["round"] == -1}  # the initial set (round −1)
    unlabeled = np.array(sorted(set(range(len(pool))) - initial))
    selected = pd.read_csv(run / "rounds" / "round_000" / "selected.csv")
    kept = np.load(run / "rounds" / "round_000" / "outputs" / "logit_margin.npy")

    brute = _brute_force_margins(tiny_bert, tmp_path / "round0", pool["text"].tolist())
    np.testing.assert_allclose(kept[unlabeled], brute[unlabeled], atol=1e-4)  # the computer, with rival=3
    picked = selected["pool_index"].to_numpy()
    assert len(picked) == 10 and set(picked) <= set(unlabeled)
    assert list(selected["id"]) == [pool["id"][i] for i in picked]
    np.testing.assert_allclose(selected["score"], brute[picked], atol=1e-4)
    rest = np.setdiff1d(unlabeled, picked)
    assert brute[picked].max() <= brute[rest].min() + 1e-4  # the smallest margins of the pool
    assert np.all(np.diff(selected["score"]) >= 0)  # best (smallest) first
    assert "plugins.logit_margin.SmallestLogitMargin" in (run / "config.yaml").read_text()
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["query_strategy"].iloc[0] == "plugins.logit_margin.SmallestLogitMargin"


def _brute_force_flagged(model_dir: Path, round0_dir: Path, texts: list[str], labeled: np.ndarray, samples: int):
    """The three flagged outputs of ``plugins.flagged_outputs``, one text at a time through the round-0 model's
    plain forward pass: ||W_argmax|| (the output layer's weight row of the top class), h(x) minus the labeled
    texts' mean h(x), and softmax(z / t) for t = 1..samples."""
    import torch
    from transformers import AutoTokenizer

    model = _round0_model(model_dir, round0_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    layer = model.output_layer
    seen = {}
    hook = layer.register_forward_hook(lambda module, inputs, output: seen.update(h=inputs[0][0]))
    features, logits = [], []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=16, return_tensors="pt")
            logits.append(model({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})[0])
            features.append(seen["h"])
    hook.remove()
    z, h = torch.stack(logits), torch.stack(features)
    gradient = layer.weight.detach()[z.argmax(dim=-1)].norm(dim=-1)
    centered = h - h[torch.as_tensor(labeled)].mean(dim=0)
    temperatures = torch.arange(1, samples + 1, dtype=torch.float32)
    tempered = torch.softmax(z[:, None, :] / temperatures[None, :, None], dim=-1)  # (n, T, C)
    return gradient.numpy(), h.numpy(), centered.numpy(), tempered.numpy()


def test_outputs_flagged_gradients_reference_and_sample_axis_are_computed_as_declared(tmp_path, tiny_bert, catalog):
    """``plugins.flagged_outputs``: an output taking gradients (scored outside inference mode), one relative to the
    labeled texts (they are scored first and handed to it), and one with a sample axis (the strategy sees (T, n, C))
    each equal a plain forward pass's values, and the strategy picks by all three. (``catalog``: flagged outputs
    outliving the test would change what ``flagged`` answers elsewhere.)"""
    from plugins.flagged_outputs import flagged_score

    samples = 4
    data = _fit_with({"class_path": "plugins.flagged_outputs.LargestFlaggedScore", "init_args": {"samples": samples}},
                     tmp_path, tiny_bert)
    run = tmp_path / "run"
    pool = pd.read_csv(data / "train.csv")
    state = json.loads((run / "state.json").read_text())
    labeled = np.array(sorted(r["pool_index"] for r in state["records"] if r["round"] == -1))
    unlabeled = np.setdiff1d(np.arange(len(pool)), labeled)
    outputs = run / "rounds" / "round_000" / "outputs"
    gradient, h, centered, tempered = _brute_force_flagged(tiny_bert, tmp_path / "round0", pool["text"].tolist(),
                                                           labeled, samples)

    np.testing.assert_allclose(np.load(outputs / "top_logit_gradient.npy")[unlabeled], gradient[unlabeled], atol=1e-4)
    kept_centered = np.load(outputs / "centered_features.npy")
    np.testing.assert_allclose(kept_centered[labeled], h[labeled], atol=1e-4)  # the reference pass: h(x) itself
    np.testing.assert_allclose(kept_centered[unlabeled], centered[unlabeled], atol=1e-4)
    assert np.abs(centered[unlabeled] - h[unlabeled]).max() > 1e-2  # the reference changed the pool's rows
    kept_tempered = np.load(outputs / "tempered_probs.npy")  # on disk as written: (n, T, C)
    assert kept_tempered.shape == (len(pool), samples, 3)
    np.testing.assert_allclose(kept_tempered[unlabeled], tempered[unlabeled], atol=1e-5)

    brute = flagged_score(gradient[unlabeled], centered[unlabeled], np.moveaxis(tempered, 0, 1)[:, unlabeled])
    selected = pd.read_csv(run / "rounds" / "round_000" / "selected.csv")
    picked = selected["pool_index"].to_numpy()
    order = np.argsort(-brute, kind="stable")[:10]
    assert list(picked) == list(unlabeled[order])  # the largest scores, largest first
    np.testing.assert_allclose(selected["score"], brute[order], atol=1e-4)


def test_a_bad_option_of_the_users_output_is_one_line_before_anything_runs(tmp_path, tiny_bert, capsys):
    data = write_dataset(tmp_path / "data", n_pool=30)
    strategy = {"class_path": "plugins.logit_margin.SmallestLogitMargin", "init_args": {"rival": 1}}
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=data, run_dir=tmp_path / "run", strategy=strategy)
    assert main(["fit", "--config", str(config)]) != 0
    err = capsys.readouterr().err.strip()
    assert "output 'logit_margin': rival must be at least 2, got 1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------- catalogue rules


def test_a_subclass_is_catalogued_with_its_flags_and_has_a_computer(catalog):
    from lit_al.outputs.registry import computer

    probe = _define("probe_rows", row_shape="(T, d)", gradients=True, sample_axis=True)
    spec = catalog["probe_rows"]
    assert (spec.row_shape, spec.gradients, spec.reference, spec.sample_axis) == ("(T, d)", True, False, True)
    assert spec.computer is probe and spec.options is ScaleOptions
    assert "probe_rows" in flagged("gradients") and "probe_rows" in flagged("sample_axis")
    assert computer("probe_rows").__self__.__class__ is probe
    for name in catalog:  # every catalogued output, built-in or not, has a computer
        assert callable(computer(name)), name


@pytest.mark.parametrize("name,fragment", [
    ("probs", "already taken by a built-in output"),
    ("labels", "taken by lit_al"),
    ("mc_passes", "taken by lit_al"),
    ("Bad Name", "lower-case letters"),
])
def test_a_name_lit_al_uses_is_refused(catalog, name, fragment):
    with pytest.raises(StrategyError, match=fragment):
        _define(name)


def test_two_classes_cannot_share_a_name_but_a_redefinition_of_the_same_class_can(catalog):
    _define("probe_twice")
    _define("probe_twice")  # the same module and class name: a module imported again
    with pytest.raises(StrategyError, match="already taken by"):
        type("Other", (Output,), {"name": "probe_twice", "compute": lambda *a: None})


def test_an_output_without_compute_or_with_options_that_are_not_a_dataclass_is_refused(catalog):
    with pytest.raises(StrategyError, match="define compute"):
        type("NoCompute", (Output,), {"name": "probe_nocompute"})
    with pytest.raises(StrategyError, match="must be a dataclass"):
        _define("probe_dict_options", options=dict)


def test_a_subclass_without_a_name_is_a_base_and_is_not_catalogued(catalog):
    before = set(catalog)
    type("Base", (Output,), {"compute": lambda *a: None})
    assert set(catalog) == before


# ---------------------------------------------------------------- its options


def test_its_options_reach_it_and_only_it(catalog):
    _define()
    request = PredictionRequest(frozenset({"probs", "scaled_probe"}), {"mc_passes": 3, "scaled_probe": {"scale": 2}})
    assert request.options.of("scaled_probe") == ScaleOptions(scale=2)
    assert request.options.mc_passes == 3
    assert PredictionRequest(frozenset({"scaled_probe"})).options.of("scaled_probe") == ScaleOptions()
    with pytest.raises(StrategyError, match=r"output\(s\) \['scaled_probe'\], which the request does not need"):
        PredictionRequest(frozenset({"probs"}), {"scaled_probe": {"scale": 2}})
    assert PredictionOptions(per_output={"scaled_probe": {"mode": "sq"}}).of("scaled_probe").mode == "sq"


@pytest.mark.parametrize("value,fragment", [
    ({"colour": 1}, r"output 'scaled_probe': unknown option\(s\) \['colour'\]; known: \['scale', 'mode', 'floor'\]"),
    ({"scale": "big"}, "option scale must be float, got 'big'"),
    ({"scale": True}, "option scale must be float"),
    ({"mode": 3}, "option mode must be str"),
    ({"floor": 1.5}, "option floor must be int"),
    (["scale"], "must be a mapping"),
])
def test_its_options_are_checked_with_one_line(catalog, value, fragment):
    _define()
    with pytest.raises(StrategyError, match=fragment):
        PredictionRequest(frozenset({"scaled_probe"}), {"scaled_probe": value})


def test_its_options_own_checks_become_one_line():
    from plugins.logit_margin import LogitMargin  # noqa: F401  (catalogues logit_margin)

    with pytest.raises(StrategyError, match="output 'logit_margin': rival must be at least 2, got 1"):
        PredictionRequest(frozenset({"logit_margin"}), {"logit_margin": {"rival": 1}})


def test_options_of_an_output_that_takes_none_or_is_unknown_are_refused(catalog):
    _define("probe_plain", options=None)
    with pytest.raises(StrategyError, match=r"unknown prediction option\(s\) \['probe_plain'\]"):
        PredictionRequest(frozenset({"probe_plain"}), {"probe_plain": {}})
    with pytest.raises(StrategyError, match="no catalogued output of that name takes options"):
        PredictionOptions(per_output={"nothing_here": {}})


def test_a_strategy_names_a_plugin_output_once_it_is_defined(catalog):
    from lit_al.strategies import Strategy

    with pytest.raises(StrategyError, match="import its module first"):
        type("Early", (Strategy,), {"needs": frozenset({"probe_later"})})
    _define("probe_later")
    strategy = type("Later", (Strategy,), {"needs": frozenset({"probe_later"})})()
    assert strategy.prediction_request(seed=4).needs == {"probe_later"}


def test_defining_an_output_needs_neither_torch_nor_lightning():
    """The catalogue and ``Output`` are torch-free: a plug-in module loads torch only when ``compute`` runs."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import plugins.logit_margin as plugin\n"
        "from lit_al.outputs import CATALOG\n"
        "assert 'logit_margin' in CATALOG\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'transformers', 'faiss'}))\n"
    )
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
