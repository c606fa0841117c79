"""``model``, ``data`` and ``strategy`` accept subclasses by ``class_path`` (LightningCLI style)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from extensions import NormedHeadClassifier
from lit_al.cli import main
from tiny import make_rows, write_config


def _write_triple_bar(path, rows):
    path.write_text("".join(f"{r['id']} ||| {r['label']} ||| {r['text']}\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path, tiny_bert):
    data = tmp_path / "data"
    data.mkdir()
    for split, n, seed in (("train", 60, 1), ("dev", 20, 2), ("test", 20, 3)):
        _write_triple_bar(data / f"{split}.txt", make_rows(n, seed=seed, prefix=split))
    path = write_config(tmp_path / "c.yaml", model=tiny_bert, data=data, run_dir=tmp_path / "run", rounds=1)
    payload = json.loads(path.read_text())
    payload["model"] = {"class_path": "extensions.NormedHeadClassifier",
                        "init_args": {**payload["model"], "head_dropout": 0.3}}
    data_args = {**payload["data"], **{k: str(data / f"{k}.txt") for k in ("train", "dev", "test")}}
    payload["data"] = {"class_path": "extensions.TripleBarData", "init_args": data_args}
    payload["strategy"] = {"class_path": "extensions.MaxProbGap"}
    path.write_text(json.dumps(payload))
    return path


def test_a_round_with_a_subclassed_model_data_module_and_strategy(config, tmp_path):
    before = NormedHeadClassifier.instances
    assert main(["fit", "--config", str(config), "--model.head_dropout", "0.25"]) == 0
    assert NormedHeadClassifier.instances > before
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["labeled"].tolist() == [12, 22] and metrics["test_accuracy"].notna().all()
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "class_path: extensions.NormedHeadClassifier" in saved and "head_dropout: 0.25" in saved
    assert "class_path: extensions.TripleBarData" in saved
    selected = pd.read_csv(tmp_path / "run" / "rounds" / "round_000" / "selected.csv")
    assert len(selected) == 10 and metrics["query_strategy"].iloc[0] == "max_prob_gap"
    assert main(["fit", "--resume", str(tmp_path / "run")]) == 0  # the saved subclass config parses back
    from extensions import TripleBarData
    from lit_al.config import saved_data_files

    files = saved_data_files(tmp_path / "run")  # what lit_al label reads: the subclass, with its own read_split
    files.load()
    assert isinstance(files, TripleBarData) and len(files.pool) == 60


def test_a_subclassed_data_module_names_its_own_lines(config, tmp_path, capsys):
    train = tmp_path / "data" / "train.txt"
    lines = train.read_text().splitlines()
    lines[4] = "train-4 ||| weather ||| ball goal"
    train.write_text("\n".join(lines) + "\n")
    assert main(["fit", "--config", str(config), "--data.labels", "[sport, money, tech]"]) == 1
    assert f"line 5 of {train}: label 'weather' is not in the label schema" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_class_path_that_is_not_a_subclass_is_one_line(config, tmp_path, capsys):
    assert main(["fit", "--config", str(config), "--model", "extensions.TripleBarData"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lit_al: error:") and "TripleBarData" in err and len(err.splitlines()) == 1
