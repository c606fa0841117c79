"""export, predict and status through ``lit_al.cli.main`` on real (tiny) runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lit_al.cli import main
from lit_al.model import TextClassifier, load_run_model, save_run_model
from tiny import write_config, write_csv, write_dataset

TEXTS = ["the ball and the goal today", "bank stock price of the market", "chip code robot",
         "team score and the new fund in the big city of data"]
LABELS = ["sport", "money", "tech"]


def _fit(tmp_path_factory, name, *, multi_label=False, pooling=None, head=None):
    root = tmp_path_factory.mktemp(name)
    data = write_dataset(root / "data", multi_label=multi_label)
    bert = root / "bert"
    from tiny import write_tiny_bert

    write_tiny_bert(bert)
    run_dir = root / "run"
    config = write_config(root / "c.yaml", model=bert, data=data, run_dir=run_dir, multi_label=multi_label, rounds=1)
    args = ["fit", "--config", str(config)] + (["--model.pooling", pooling] if pooling else [])
    args += ["--model.head", head] if head else []
    assert main(args) == 0
    return run_dir


@pytest.fixture(scope="module")
def native_run(tmp_path_factory):
    """Single-label with the default head: the encoder's own BertForSequenceClassification."""
    return _fit(tmp_path_factory, "native")


@pytest.fixture(scope="module")
def native_multilabel_run(tmp_path_factory):
    """Multi-label with the default head (sigmoid, problem_type multi_label_classification)."""
    return _fit(tmp_path_factory, "native_multi", multi_label=True)


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory):
    """Single-label, lit_al's head with pooling: pooled, no hidden layer: exported as BertForSequenceClassification."""
    return _fit(tmp_path_factory, "pooled", pooling="pooled")


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    """Multi-label, lit_al's head with cls pooling: exported with lit_al's own architecture."""
    return _fit(tmp_path_factory, "multi", multi_label=True, pooling="cls")


def _reference_probs(run_dir, texts):
    """lit_al's probabilities, one unpadded text at a time."""
    from transformers import AutoTokenizer

    model, meta = load_run_model(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(meta["model"]["model_name_or_path"])
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text, truncation=True, max_length=16, return_tensors="pt")
            rows.append(model.probabilities(model(dict(encoded)))[0].numpy())
    return np.stack(rows), model


PIPELINE_SCRIPT = r"""
import json, sys
sys.modules["lit_al"] = None  # lit_al must not be needed to load or run the export
from transformers import AutoModelForSequenceClassification, pipeline
folders, texts, trust, sigmoid = json.loads(sys.argv[1])
out = {}
for folder in folders:
    kwargs = {"function_to_apply": "sigmoid"} if sigmoid else {}
    pipe = pipeline("text-classification", model=folder, trust_remote_code=trust, device="cpu")
    out[folder] = {"rows": [{r["label"]: r["score"] for r in row} for row in pipe(texts, top_k=None, truncation=True, **kwargs)],
                   "class": type(pipe.model).__name__}
    if trust:
        try:
            AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=False)
            out[folder]["loads_without_trust"] = True
        except Exception:
            out[folder]["loads_without_trust"] = False
print(json.dumps(out))
"""


def _pipeline_probs(tmp_path, folders, texts, *, trust, sigmoid=False):
    """Run transformers' pipeline on exported folders in a fresh process where ``import lit_al`` fails."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    payload = json.dumps([[str(f) for f in folders], texts, trust, sigmoid])
    done = subprocess.run([sys.executable, "-c", PIPELINE_SCRIPT, payload], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _as_matrix(rows):
    return np.array([[row[name] for name in LABELS] for row in rows])


def _assert_no_local_path(folder, *paths):
    """No file of ``folder`` names a local path: the machine's folders stay on the machine."""
    needles = [str(p) for p in paths] + [str(p.resolve()) for p in paths]
    for file in folder.rglob("*"):
        if file.is_file() and file.suffix in (".json", ".txt", ".py", ".model", ""):
            text = file.read_text(encoding="utf-8", errors="replace")
            assert not any(needle in text for needle in needles), f"{file.name} names a local path"


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("which", ["single", "multi"])
def test_native_export_loads_with_pipeline_without_lit_al_or_remote_code(tmp_path, native_run, native_multilabel_run,
                                                                         which, capsys):
    run_dir = native_run if which == "single" else native_multilabel_run
    out = tmp_path / "export"
    old = os.umask(0o022)
    try:
        assert main(["export", str(run_dir), str(out)]) == 0
    finally:
        os.umask(old)
    assert "BertForSequenceClassification; loads with no remote code" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and "auto_map" not in config
    multi = which == "multi"
    assert config["problem_type"] == ("multi_label_classification" if multi else "single_label_classification")
    assert config["id2label"] == {"0": "sport", "1": "money", "2": "tech"} and config["label2id"]["tech"] == 2
    assert config.get("_name_or_path", "") == ""  # the encoder was a local folder: no path is written
    info = json.loads((out / "lit_al_export.json").read_text())
    assert info["head"] == "native" and info["trust_remote_code"] is False and info["run"] == run_dir.name
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 16
    assert not list(out.glob("*.py"))
    _assert_no_local_path(out, run_dir.parent, tmp_path)
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)  # umask 022: drwxr-xr-x, -rw-r--r--
    assert {oct(f.stat().st_mode & 0o777) for f in out.iterdir()} == {oct(0o644)}
    result = _pipeline_probs(tmp_path, [out], TEXTS, trust=False, sigmoid=multi)[str(out)]
    assert result["class"] == "BertForSequenceClassification"
    expected, _ = _reference_probs(run_dir, TEXTS)
    assert np.allclose(expected.sum(1), 1.0) != multi
    np.testing.assert_allclose(_as_matrix(result["rows"]), expected, atol=1e-5)


def test_export_pooled_bert_is_standard_and_matches_lit_al(tmp_path, pooled_run, capsys):
    out = tmp_path / "export"
    assert main(["export", str(pooled_run), str(out)]) == 0
    assert "BertForSequenceClassification" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and "auto_map" not in config
    assert config["problem_type"] == "single_label_classification"
    assert config["id2label"] == {"0": "sport", "1": "money", "2": "tech"} and config["label2id"]["tech"] == 2
    assert (out / "model.safetensors").exists() and not list(out.glob("*.py")) and not list(out.glob("*.bin"))
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 16
    assert json.loads((out / "lit_al_export.json").read_text())["head"] == "lit_al"
    result = _pipeline_probs(tmp_path, [out], TEXTS, trust=False)[str(out)]
    assert result["class"] == "BertForSequenceClassification"
    expected, _ = _reference_probs(pooled_run, TEXTS)
    np.testing.assert_allclose(_as_matrix(result["rows"]), expected, atol=1e-5)


def test_export_multilabel_cls_needs_remote_code_and_matches_lit_al(tmp_path, multilabel_run):
    out = tmp_path / "export"
    assert main(["export", str(multilabel_run), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LitAlForSequenceClassification"]
    assert config["problem_type"] == "multi_label_classification" and config["pooling"] == "cls"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModelForSequenceClassification"}
    assert (out / "modeling_lit_al.py").exists() and (out / "configuration_lit_al.py").exists()
    _assert_no_local_path(out, multilabel_run.parent, tmp_path)
    result = _pipeline_probs(tmp_path, [out], TEXTS, trust=True, sigmoid=True)[str(out)]
    assert result["class"] == "LitAlForSequenceClassification" and result["loads_without_trust"] is False
    expected, _ = _reference_probs(multilabel_run, TEXTS)
    assert not np.allclose(expected.sum(1), 1.0)  # sigmoid outputs, not a distribution
    np.testing.assert_allclose(_as_matrix(result["rows"]), expected, atol=1e-5)


HEADS = [
    ({"pooling": "mean"}, False),
    ({"pooling": "cls", "hidden_size": 8, "hidden_activation": "tanh"}, False),
    ({"pooling": "pooled", "hidden_size": 8, "hidden_activation": "gelu"}, True),
]


def test_export_of_every_other_head_matches_lit_al(tmp_path, tiny_bert):
    """Heads no standard class represents: mean pooling, hidden layers (also over the pooler); untrained, perturbed weights."""
    from lit_al.product.export import export_run

    folders, expected = [], {}
    for k, (options, multi_label) in enumerate(HEADS):
        run_dir = tmp_path / f"run{k}"
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("data:\n  max_length: 16\n")
        kwargs = {"model_name_or_path": str(tiny_bert), **options}
        torch.manual_seed(k)
        model = TextClassifier(**kwargs, num_labels=3, multi_label=multi_label, label_names=LABELS)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.3 * torch.randn_like(parameter))
        save_run_model(run_dir / "model", model, kwargs, 0)
        exported = export_run(run_dir, tmp_path / f"out{k}")
        assert exported.trust_remote_code and exported.architecture == "LitAlForSequenceClassification"
        folders.append(exported.directory)
        expected[str(exported.directory)] = _reference_probs(run_dir, TEXTS)[0]
    results = _pipeline_probs(tmp_path, folders, TEXTS, trust=True)
    for folder, (options, multi_label) in zip(folders, HEADS):
        got = _as_matrix(results[str(folder)]["rows"])
        np.testing.assert_allclose(got, expected[str(folder)], atol=1e-5, err_msg=str(options))
        assert np.allclose(got.sum(1), 1.0) != multi_label  # the pipeline picks softmax or sigmoid from problem_type


def test_export_errors_are_one_line(tmp_path, pooled_run, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 1
    assert "not a lit_al run directory" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text("seed: 0\n")
    assert main(["export", str(fresh), str(tmp_path / "out")]) == 1
    assert "no trained model yet" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert main(["export", str(pooled_run), str(busy)]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
    assert (busy / "keep.txt").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".busy")]
    assert main(["export", str(pooled_run), str(busy), "--overwrite", "true"]) == 0
    assert not (busy / "keep.txt").exists() and (busy / "config.json").exists()


# ------------------------------------------------------------------ predict
def test_predict_writes_probabilities_in_input_order(tmp_path, pooled_run, capsys):
    rows = [{"doc": f"d{i}", "body": text} for i, text in enumerate(TEXTS * 3)]
    source = write_csv(tmp_path / "new.csv", rows)
    output = tmp_path / "out" / "predictions.csv"
    assert main(["predict", str(pooled_run), "--input", str(source), "--output", str(output), "--text_column", "body",
                 "--id_column", "doc", "--batch_size", "5", "--progress", "false"]) == 0
    assert "predictions for 12 text(s)" in capsys.readouterr().out
    table = pd.read_csv(output)
    assert list(table.columns) == ["id", "text", "predicted", "confidence", "prob_sport", "prob_money", "prob_tech"]
    assert table["id"].tolist() == [r["doc"] for r in rows] and table["text"].tolist() == [r["body"] for r in rows]
    expected, _ = _reference_probs(pooled_run, TEXTS * 3)
    probs = table[["prob_sport", "prob_money", "prob_tech"]].to_numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)  # length-sorted, padded batches change nothing
    assert table["predicted"].tolist() == [LABELS[j] for j in expected.argmax(1)]
    np.testing.assert_allclose(table["confidence"], expected.max(1), atol=1e-5)
    assert [p.name for p in output.parent.iterdir()] == ["predictions.csv"]  # no temporary file left


def test_predict_multilabel_thresholds_and_numbers_rows(tmp_path, multilabel_run):
    source = write_csv(tmp_path / "new.csv", [{"text": t} for t in TEXTS])
    output = tmp_path / "predictions.csv"
    assert main(["predict", str(multilabel_run), "--input", str(source), "--output", str(output), "--progress", "false"]) == 0
    table = pd.read_csv(output, keep_default_na=False)
    assert table["id"].astype(str).tolist() == ["1", "2", "3", "4"]
    expected, model = _reference_probs(multilabel_run, TEXTS)
    for row, probs in zip(table.itertuples(), expected):
        chosen = [j for j in range(3) if probs[j] >= model.threshold]
        assert row.predicted == "|".join(LABELS[j] for j in chosen)
        confidences = [float(c) for c in str(row.confidence).split("|")] if chosen else []
        np.testing.assert_allclose(confidences, probs[chosen], atol=1e-5)


@pytest.mark.parametrize("case,pattern", [
    ("missing_file", r"nope.csv: file not found"),
    ("missing_column", r"new.csv: missing column 'body'"),
    ("missing_id", r"new.csv: missing column 'key'"),
    ("empty_text", r"new.csv: 1 row\(s\) with an empty text \(line 4\); fill or remove them"),
])
def test_predict_bad_input_is_one_line(tmp_path, pooled_run, capsys, case, pattern):
    import re

    rows = [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)]
    if case == "empty_text":
        rows[2]["text"] = "  "
    source = write_csv(tmp_path / "new.csv", rows)
    args = ["predict", str(pooled_run), "--input", str(tmp_path / "nope.csv" if case == "missing_file" else source),
            "--output", str(tmp_path / "p.csv")]
    args += {"missing_column": ["--text_column", "body"], "missing_id": ["--id_column", "key"]}.get(case, [])
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert re.search(pattern, err) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("content, output, pattern", [
    # one unquoted comma: pandas made the id the index and cut the text, and predict exited 0
    ("id,text\nq1,hello, bank stock\n", "p.csv", r"line 2 of .*new.csv: 3 fields where the header has 2; .*double quotes"),
    ('id,text\nq1,"two\nlines"\nq2,  \nq3,ok\n', "p.csv", r"new.csv: 1 row\(s\) with an empty text \(line 4\)"),
    ("id,text\nq1,ok\n", ".", r"--output .*: is a directory; name the CSV file to write"),
    ("id,text\nq1,ok\n", "new.csv/p.csv", r"--output .*new.csv is a file, not a directory"),
])
def test_predict_bad_files_are_one_line_and_write_nothing(tmp_path, pooled_run, capsys, content, output, pattern):
    import re

    source = tmp_path / "new.csv"
    source.write_text(content, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["predict", str(pooled_run), "--input", str(source), "--output", str(tmp_path / output),
                 "--progress", "false"]) == 1
    err = capsys.readouterr().err.strip()
    assert re.search(pattern, err) and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_predict_reads_a_semicolon_file(tmp_path, pooled_run):
    source = tmp_path / "new.csv"
    source.write_text("id;text\nq1;hello, bank stock\nq2;the ball; the goal\n".replace("; the", ", the"), encoding="utf-8")
    assert main(["predict", str(pooled_run), "--input", str(source), "--output", str(tmp_path / "p.csv"),
                 "--progress", "false"]) == 0
    table = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert table["id"].tolist() == ["q1", "q2"] and table["text"].tolist() == ["hello, bank stock", "the ball, the goal"]


# ------------------------------------------------------------------ a damaged model file
DAMAGED_META = [
    ("truncated", lambda text: text[: len(text) // 2], r"damaged, cannot be read"),
    ("empty", lambda text: "", r"damaged, cannot be read"),
    ("a_list", lambda text: "[1, 2]", r"damaged: expected a JSON object, found list"),
    ("no_round", lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "round"}),
     r"damaged: round should be a int, found missing"),
    ("round_two", lambda text: json.dumps({**json.loads(text), "round": "two"}), r"damaged: round should be a int, found str 'two'"),
    ("no_labels", lambda text: json.dumps({**json.loads(text), "task": {"num_labels": 3, "multi_label": False}}),
     r"damaged: task.label_names should be a list, found missing"),
]


@pytest.mark.parametrize("verb", ["status", "export", "predict"])
@pytest.mark.parametrize("case, damage, pattern", DAMAGED_META, ids=[c[0] for c in DAMAGED_META])
def test_a_damaged_model_file_is_one_line_and_nothing_is_written(tmp_path, pooled_run, capsys, verb, case, damage, pattern):
    import re

    run_dir = tmp_path / "run"
    shutil.copytree(pooled_run, run_dir)
    meta = run_dir / "model" / "lit_al_model.json"
    meta.write_text(damage(meta.read_text(encoding="utf-8")), encoding="utf-8")
    source = write_csv(tmp_path / "new.csv", [{"text": t} for t in TEXTS])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier export")
    args = {"status": ["status", str(run_dir)],
            "export": ["export", str(run_dir), str(out), "--overwrite", "true"],
            "predict": ["predict", str(run_dir), "--input", str(source), "--output", str(out / "p.csv"), "--progress", "false"]}
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()
    assert main(args[verb]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(meta) in err and re.search(pattern, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging folder left
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # nothing put in place, nothing replaced


# ------------------------------------------------------------------ status
def test_status_of_a_finished_run(pooled_run, capsys):
    assert main(["status", str(pooled_run)]) == 0
    out = capsys.readouterr().out
    state = json.loads((pooled_run / "state.json").read_text())
    counts = {name: sum(name in r["labels"] for r in state["records"]) for name in LABELS}
    assert "state: finished; 2 round(s) done; last model from round 1" in out
    assert f"labeled: 22 ({', '.join(f'{n} {counts[n]}' for n in sorted(counts))})" in out
    assert "pending: none" in out and "last metrics: round 1" in out
    assert "kappa_mean" in out and "overall_uncertainty" in out and "not enabled" in out and "not selected" not in out
    assert "stopped by: its budget (loop.rounds, loop.max_labels or the pool); no stopping criterion fired" in out


def test_status_of_an_interrupted_and_a_fresh_run(tmp_path, pooled_run, capsys):
    run_dir = tmp_path / "interrupted"
    shutil.copytree(pooled_run, run_dir)
    state = json.loads((run_dir / "state.json").read_text())
    state.update(finished=False, completed_rounds=1,
                 pending={"round": 1, "pool_indices": [70, 71, 72], "scores": [0.3, 0.2, 0.1], "strategy": "entropy"})
    (run_dir / "state.json").write_text(json.dumps(state))
    config = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text(config.replace("stabilizing_predictions: false", "stabilizing_predictions: true"))
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "state: waiting for labels;" in out
    assert "pending: 3 item(s) proposed in round 1: 0 answered (0 labeled, 0 skipped), 3 to label" in out
    assert "(>= 0.99)" in out  # the enabled criterion with its threshold
    assert "stopping: no criterion has fired; the run goes on" in out and "stopped by" not in out

    state["records"].append({"pool_index": 70, "id": "x70", "round": 1, "source": "person", "labels": ["sport"]})
    state["skipped"] = [{"pool_index": 71, "id": "x71", "round": 1, "reason": "skip"}]
    (run_dir / "state.json").write_text(json.dumps(state))
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "state: labeling (2 of 3 answered; lit_al query --resume trains on them)" in out
    assert "pending: 3 item(s) proposed in round 1: 2 answered (1 labeled, 1 skipped), 1 to label" in out
    state["records"].append({"pool_index": 72, "id": "x72", "round": 1, "source": "person", "labels": ["tech"]})
    (run_dir / "state.json").write_text(json.dumps(state))
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "state: ready for the next round (every item of the batch is answered: lit_al query --resume)" in out
    assert "waiting for labels" not in out and "3 answered (2 labeled, 1 skipped), 0 to label" in out

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text(config)
    assert main(["status", str(fresh)]) == 0
    assert "state: fresh" in capsys.readouterr().out


def test_status_of_a_damaged_state_is_one_line(tmp_path, pooled_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(pooled_run, run_dir)
    (run_dir / "state.json").write_text("[]")
    assert main(["status", str(run_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("state.json: cannot read the label state: expected a JSON object, found list"), err


def test_status_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"lit_al: error: {tmp_path}: not a lit_al run directory (no state.json or config.yaml)"
    assert main(["status", str(tmp_path / "missing")]) == 1
    assert "no such directory" in capsys.readouterr().err
