"""People in the loop: an unlabeled pool, query → a person labels → label → query, every import format, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lit_al.errors import ConfigError

from lit_al.cli import main
from tiny import make_rows, write_csv

LABELS = ["money", "sport", "tech"]


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    """A text-only pool (labels.txt beside it), a labeled test set, and the hidden gold labels of the pool."""
    folder = tmp_path_factory.mktemp("people") / "data"
    rows = make_rows(60, seed=1, prefix="pool")
    write_csv(folder / "pool.csv", [{"id": r["id"], "text": r["text"]} for r in rows])
    write_csv(folder / "test.csv", make_rows(24, seed=3, prefix="test"))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return folder, {r["id"]: r["label"] for r in rows}


def _config(path: Path, model: Path, data: Path, run_dir: Path, **initial) -> Path:
    config = {
        "seed": 2, "run_dir": str(run_dir),
        "model": {"model_name_or_path": str(model), "lr": 1e-3},
        "data": {"train": str(data / "pool.csv"), "test": str(data / "test.csv"), "max_length": 16, "batch_size": 8,
                 "eval_batch_size": 16, "initial": initial or {"scenario": "keyword_query", "query": "ball|bank|chip", "n": 8}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": "entropy",
        "loop": {"query_size": 6, "rounds": None},
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def _fill(csv_path: Path, gold: dict[str, str], rows: int | None = None) -> Path:
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    frame["label"] = [gold[i] for i in frame["id"]]
    if rows is not None:
        frame.loc[frame.index[rows:], "label"] = ""
    frame.to_csv(csv_path, index=False)
    return csv_path


def test_walkthrough_query_label_query(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    config = _config(tmp_path / "c.yaml", tiny_bert, data, run_dir)
    assert main(["query", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "8 of 8 items to label" in out and f"lit_al label {run_dir}" in out
    round0 = run_dir / "rounds" / "round_000"
    for name in ("to_label.csv", "label_studio_tasks.json", "label_studio_config.xml", "to_label.jsonl"):
        assert (round0 / name).is_file()
    state = _state(run_dir)
    assert state["records"] == [] and state["pending"]["strategy"] == "keyword_query"
    proposed = pd.read_csv(round0 / "to_label.csv", dtype=str, keep_default_na=False)
    assert all(any(w in t for w in ("ball", "bank", "chip")) for t in proposed["text"])  # keyword hits proposed

    assert main(["label", str(run_dir), str(_fill(round0 / "to_label.csv", gold)), "--annotator", "ana"]) == 0
    records = _state(run_dir)["records"]
    assert len(records) == 8 and {r["source"] for r in records} == {"person"} and {r["annotator"] for r in records} == {"ana"}
    assert all(r["time"].endswith("+00:00") and r["round"] == 0 for r in records)  # the answers to batch round_000

    for round_index in (1, 2):
        assert main(["query", "--resume", str(run_dir)]) == 0
        state = _state(run_dir)
        assert state["completed_rounds"] == round_index and state["pending"]["round"] == round_index
        batch = run_dir / "rounds" / f"round_{round_index:03d}" / "to_label.csv"
        frame = pd.read_csv(batch, dtype=str, keep_default_na=False)
        assert len(frame) == 6 and (frame["suggested_label"] != "").all() and (frame["confidence"] != "").all()
        tasks = json.loads((batch.parent / "label_studio_tasks.json").read_text())
        assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == [frame["suggested_label"][0]]
        assert main(["label", str(run_dir), str(_fill(batch, gold))]) == 0
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["round"].tolist() == [1, 2] and metrics["labeled"].tolist() == [8, 14]
    assert len(_state(run_dir)["records"]) == 20
    assert (run_dir / "model" / "model.safetensors").is_file()
    # the product: a standard Hugging Face folder, and new texts labeled with the last model
    exported = tmp_path / "classifier"
    assert main(["export", str(run_dir), str(exported)]) == 0
    assert (exported / "config.json").is_file() and list(exported.glob("*.safetensors"))
    config = json.loads((exported / "config.json").read_text())
    assert sorted(config["label2id"]) == LABELS
    new = tmp_path / "new.csv"
    write_csv(new, [{"id": f"n{i}", "text": r["text"]} for i, r in enumerate(make_rows(5, seed=9, prefix="n"))])
    assert main(["predict", str(run_dir), "--input", str(new), "--output", str(tmp_path / "pred.csv"),
                 "--progress", "false"]) == 0
    predictions = pd.read_csv(tmp_path / "pred.csv", dtype=str, keep_default_na=False)
    assert len(predictions) == 5 and set(predictions["predicted"]) <= set(LABELS)
    assert main(["status", str(run_dir)]) == 0
    assert "pending" in capsys.readouterr().out


def _round_numbers(run_dir: Path, capsys) -> dict:
    """Every place a person sees the round of the pending batch: folder, state.json, metrics.csv, model, status, page."""
    from lit_al.annotate import RunStore

    state = _state(run_dir)
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    status = capsys.readouterr().out
    pending = state["pending"]["round"]
    folder = run_dir / "rounds" / f"round_{pending:03d}"
    tasks = json.loads((folder / "label_studio_tasks.json").read_text())
    return {
        "folder": int(sorted(p.name for p in (run_dir / "rounds").iterdir() if (p / "to_label.csv").is_file())[-1][6:]),
        "pending": pending,
        "proposed_by": state["proposed_by"][str(pending)]["round"],
        "metrics": int(pd.read_csv(run_dir / "metrics.csv")["round"].iloc[-1]),
        "model": json.loads((run_dir / "model" / "lit_al_model.json").read_text())["round"],
        "status_model": int(status.split("last model from round ")[1].split()[0]),
        "status_pending": int(status.split("proposed in round ")[1].split(":")[0]),
        "status_metrics": int(status.split("last metrics: round ")[1].split()[0].rstrip(";,")),
        "label_studio": {t["predictions"][0]["model_version"] for t in tasks} == {f"lit_al round {pending}"},
        "page": RunStore(run_dir, overlap=False).view("c1")["round"],
    }


def test_one_round_has_one_number_in_folder_state_metrics_status_and_page(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    assert main(["label", str(run_dir), str(_fill(run_dir / "rounds" / "round_000" / "to_label.csv", gold))]) == 0
    assert {r["round"] for r in _state(run_dir)["records"]} == {0}  # the answers to batch round_000
    for round_index in (1, 2):  # round r's model, trained on the answers of rounds < r, proposes batch r
        assert main(["query", "--resume", str(run_dir)]) == 0
        numbers = _round_numbers(run_dir, capsys)
        assert numbers.pop("label_studio") and set(numbers.values()) == {round_index}, numbers
        batch = run_dir / "rounds" / f"round_{round_index:03d}" / "to_label.csv"
        assert main(["label", str(run_dir), str(_fill(batch, gold, rows=2))]) == 0
        assert main(["label", str(run_dir), str(batch)]) == 0  # nothing new: the message names the same round
        assert f"the current batch is round {round_index}'s: 4 of 6 items to label: fill {batch}" in capsys.readouterr().out
        records = _state(run_dir)["records"]
        assert sorted(r["round"] for r in records if r["id"] in set(pd.read_csv(batch)["id"])) == [round_index] * 2
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["round"].tolist() == [1, 2] and metrics["labeled"].tolist() == [8, 10]  # row r: labels of rounds < r


def _as_version_1(state: dict) -> dict:
    """``state`` as lit_al wrote it before one round numbering (``"version": 1``, by hand from that writer):
    an answer to batch r (label or skip) was recorded as round r + 1, the initial set as round 0."""
    def old(rows):
        return [{**row, "round": row["round"] + 1} for row in rows]

    return {**state, "version": 1, "records": old(state["records"]), "skipped": old(state["skipped"])}


def test_a_run_written_before_one_round_numbering_resumes_and_reports_in_it(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    frame = pd.read_csv(run_dir / "rounds" / "round_000" / "to_label.csv", dtype=str, keep_default_na=False)
    frame["label"] = [gold[i] for i in frame["id"]]
    frame.loc[0, "label"], frame.loc[0, "skip"] = "", "not sure"
    frame.to_csv(run_dir / "rounds" / "round_000" / "to_label.csv", index=False)
    assert main(["label", str(run_dir), str(run_dir / "rounds" / "round_000" / "to_label.csv")]) == 0
    assert main(["query", "--resume", str(run_dir)]) == 0  # batch 1 proposed
    new = _state(run_dir)
    old = _as_version_1(new)
    assert [r["round"] for r in old["records"]] == [1] * 7 and old["skipped"][0]["round"] == 1  # what version 1 wrote
    (run_dir / "state.json").write_text(json.dumps(old), encoding="utf-8")
    numbers = _round_numbers(run_dir, capsys)
    assert numbers.pop("label_studio") and set(numbers.values()) == {1}, numbers
    assert _state(run_dir) == old  # reading changed nothing on disk
    batch = run_dir / "rounds" / "round_001" / "to_label.csv"
    assert main(["label", str(run_dir), str(_fill(batch, gold))]) == 0  # the first write saves version 2
    saved = _state(run_dir)
    assert saved["version"] == 2 and saved["skipped"] == new["skipped"]
    assert sorted({r["round"] for r in saved["records"]}) == [0, 1] and sum(r["round"] == 1 for r in saved["records"]) == 6
    assert main(["query", "--resume", str(run_dir)]) == 0  # the resumed run goes on: round 2
    numbers = _round_numbers(run_dir, capsys)
    assert numbers.pop("label_studio") and set(numbers.values()) == {2}, numbers
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["round"].tolist() == [1, 2] and metrics["labeled"].tolist() == [7, 13]


def test_partial_answers_skips_and_repeated_imports(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    batch = run_dir / "rounds" / "round_000" / "to_label.csv"
    frame = pd.read_csv(batch, dtype=str, keep_default_na=False)
    frame.loc[0, "label"] = gold[frame["id"][0]]
    frame.loc[1, "skip"] = "not sure"
    frame.to_csv(batch, index=False)
    assert main(["label", str(run_dir), str(batch)]) == 0
    assert "1 labeled, 0 corrected, 1 skipped, 0 already recorded; 6 of the batch still to label" in capsys.readouterr().out
    before = _state(run_dir)
    assert main(["label", str(run_dir), str(batch)]) == 0  # the same file again imports nothing twice
    assert _state(run_dir)["records"] == before["records"] and _state(run_dir)["skipped"] == before["skipped"]
    assert main(["query", "--resume", str(run_dir)]) == 0  # commits the partial batch, proposes the next
    state = _state(run_dir)
    assert state["completed_rounds"] == 1 and len(state["records"]) == 1
    skipped = {r["id"] for r in state["skipped"]}
    assert skipped == {frame["id"][1]} and state["skipped"][0]["reason"] == "not sure"
    proposed = {state_id for state_id in pd.read_csv(run_dir / "rounds" / "round_001" / "to_label.csv", dtype=str)["id"]}
    assert not proposed & skipped  # a skipped item is not proposed again


@pytest.mark.parametrize("rows,fragment", [
    ("id,label\nnope,sport\n", "line 2: unknown id 'nope'"),
    ("id,label\n{0},golf\n", "line 2: label 'golf' is not in the label schema"),
    ("id,label\n{other},sport\n", "is not in the pending batch"),
    ("id,label\n{0},sport\n{0},tech\n", "line 3: id '{0}' is answered twice"),
    ("id,label,skip\n{0},sport,skip\n", "both a label and a skip mark"),
    ("id,label,skip\n{0},,maybe\n", "line 2: skip mark 'maybe'"),
    ("identifier,label\n{0},sport\n", "line 1: needs the columns id and label"),
    ("id,label\n,sport\n", "line 2: empty id"),
])
def test_bad_answers_are_one_line_and_write_nothing(tmp_path, tiny_bert, unlabeled, capsys, rows, fragment):
    data, _ = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    pending = _state(run_dir)["pending"]
    ids = pd.read_csv(run_dir / "rounds" / "round_000" / "to_label.csv", dtype=str)["id"].tolist()
    other = next(i for i in pd.read_csv(data / "pool.csv", dtype=str)["id"] if i not in ids)
    answers = tmp_path / "answers.csv"
    answers.write_text(rows.format(ids[0], other=other), encoding="utf-8")
    before = (run_dir / "state.json").read_bytes()
    capsys.readouterr()
    assert main(["label", str(run_dir), str(answers)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(answers) in err and fragment.format(ids[0]) in err
    assert (run_dir / "state.json").read_bytes() == before and _state(run_dir)["pending"] == pending


def test_a_contradicting_label_needs_overwrite(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    first = pd.read_csv(run_dir / "rounds" / "round_000" / "to_label.csv", dtype=str)["id"][0]
    answers = tmp_path / "a.csv"
    answers.write_text(f"id,label\n{first},sport\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers)]) == 0
    answers.write_text(f"id,label,annotator\n{first},tech,bo\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers)]) == 1
    assert "was labeled ['sport'] before, now ['tech']; use --overwrite" in capsys.readouterr().err
    assert main(["label", str(run_dir), str(answers), "--overwrite", "true"]) == 0
    record = _state(run_dir)["records"][0]
    assert record["labels"] == ["tech"] and record["annotator"] == "bo"
    answers.write_text(f"id,label\n{first},money\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers), "--overwrite", "false"]) == 1
    assert main(["label", str(run_dir), str(answers), "--overwrite"]) == 0  # the bare flag, as people type it
    assert _state(run_dir)["records"][0]["labels"] == ["money"]
    answers.write_text(f"id,label\n{first},sport\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers), "--overwrite", "--annotator", "cy"]) == 0  # followed by an option
    assert _state(run_dir)["records"][0]["labels"] == ["sport"] and _state(run_dir)["records"][0]["annotator"] == "cy"


@pytest.mark.parametrize("verb, argv, option, expected", [
    ("label", ["RUN", "FILE"], "overwrite", False),
    ("label", ["RUN", "FILE", "--overwrite"], "overwrite", True),
    ("label", ["RUN", "FILE", "--overwrite", "true"], "overwrite", True),
    ("label", ["RUN", "FILE", "--overwrite=false"], "overwrite", False),
    ("label", ["RUN", "FILE", "--no_overwrite"], "overwrite", False),
    ("export", ["RUN", "OUT", "--overwrite"], "overwrite", True),
    ("export", ["RUN", "OUT", "--overwrite", "false"], "overwrite", False),
    ("predict", ["RUN", "--input", "a", "--output", "b", "--progress", "false"], "progress", False),
    ("predict", ["RUN", "--input", "a", "--output", "b", "--progress"], "progress", True),
    ("report", ["EXP", "--pool"], "pool", True),
    ("report", ["EXP", "--batch_analysis", "false", "--pool", "true"], "batch_analysis", False),
    ("experiment", ["--config", "g.yaml", "--dry_run"], "dry_run", True),
    ("labelstudio", ["pull", "RUN", "--overwrite"], "pull.overwrite", True),
    ("labelstudio", ["watch", "RUN", "--overwrite", "false"], "watch.overwrite", False),
    ("fit", ["--overwrite"], "overwrite", True),
    ("fit", ["--overwrite", "true"], "overwrite", True),
    ("fit", ["--overwrite", "false"], "overwrite", False),
])
def test_yes_no_options_take_the_bare_flag_and_a_value(verb, argv, option, expected):
    from lit_al.cli import VERBS

    parser = VERBS[verb].parser()
    args = argv + (["--data.train", "x.csv"] if verb == "fit" else [])
    assert parser.parse_args(args)[option] is expected


def test_session_refusal_names_the_python_way(tmp_path, tiny_bert, unlabeled):
    from lit_al import Session
    from lit_al.errors import DataError

    data, gold = unlabeled
    config = json.loads(_config(tmp_path / "c.yaml", tiny_bert, data, tmp_path / "unused").read_text())
    session = Session(config, run_dir=str(tmp_path / "nb"))
    batch = session.query()
    session.teach(batch.ids[:1], ["sport"])
    with pytest.raises(DataError, match=r"before, now \['tech'\]; pass teach\(\.\.\., overwrite=True\) to correct it$"):
        session.teach(batch.ids[:1], ["tech"])
    assert session.teach(batch.ids[:1], ["tech"], overwrite=True).overwritten == 1


def test_nothing_new_is_said_and_query_without_answers_trains_nothing(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    round0 = run_dir / "rounds" / "round_000" / "to_label.csv"
    capsys.readouterr()
    state = (run_dir / "state.json").read_bytes()
    assert main(["query", "--resume", str(run_dir)]) == 0  # nothing answered yet
    out = capsys.readouterr().out
    assert out.startswith("no labels arrived for the round-0 batch since it was proposed: nothing to train on yet\n")
    assert f"8 of 8 items to label: fill {round0}" in out and (run_dir / "state.json").read_bytes() == state
    assert main(["label", str(run_dir), str(_fill(round0, gold))]) == 0
    assert main(["query", "--resume", str(run_dir)]) == 0
    model = run_dir / "model" / "model.safetensors"
    trained = (model.stat().st_mtime_ns, (run_dir / "metrics.csv").read_bytes(), (run_dir / "state.json").read_bytes())
    capsys.readouterr()

    assert main(["label", str(run_dir), str(round0)]) == 0  # last round's file again
    out = capsys.readouterr().out
    round1 = run_dir / "rounds" / "round_001" / "to_label.csv"
    assert "0 labeled, 0 corrected, 0 skipped, 8 already recorded" in out
    assert f"nothing new was labeled: {round0} holds no answer that is not recorded already; the current batch is " \
           f"round 1's: 6 of 6 items to label: fill {round1}" in out
    assert "next: lit_al query" not in out
    for argv in (["query", "--resume", str(run_dir)], ["query", "--config", str(run_dir / "config.yaml")]):
        assert main(argv) == 0  # twice without new labels: said at once, nothing retrained
        out = capsys.readouterr().out
        assert out.startswith("no labels arrived for the round-1 batch since it was proposed") and str(round1) in out
        assert (model.stat().st_mtime_ns, (run_dir / "metrics.csv").read_bytes(), (run_dir / "state.json").read_bytes()) == trained
    code = ("import sys; from lit_al.cli import main; rc = main(['query', '--resume', sys.argv[1]]); "
            "print(rc, sorted(m for m in ('lightning', 'torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.stdout.strip().endswith("0 []"), done.stdout + done.stderr  # at once: nothing heavy imported
    frame = pd.read_csv(round1, dtype=str, keep_default_na=False)
    frame.loc[0, "label"] = gold[frame["id"][0]]
    frame.to_csv(round1, index=False)
    assert main(["label", str(run_dir), str(round1)]) == 0
    assert "1 labeled" in capsys.readouterr().out
    assert main(["label", str(run_dir), str(round1)]) == 0  # the same answer again: nothing new
    assert "nothing new was labeled" in capsys.readouterr().out


def test_label_and_annotate_remove_stale_temporary_files(tmp_path, tiny_bert, unlabeled, monkeypatch):
    from lit_al.run_lock import run_lock

    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    round0 = run_dir / "rounds" / "round_000"
    stale = [run_dir / ".state.json.k1ll3d.tmp", round0 / ".to_label.csv.k1ll3d.tmp"]

    def leave_stale():
        for path in stale:
            path.write_text("a write cut by a kill")

    leave_stale()
    with run_lock(run_dir):  # another lit_al process works on the run: its temporary files may be writes in flight
        assert main(["label", str(run_dir), str(_fill(round0 / "to_label.csv", gold, rows=2))]) == 1
    assert all(path.exists() for path in stale)
    assert main(["label", str(run_dir), str(round0 / "to_label.csv")]) == 0
    assert not any(path.exists() for path in stale)

    import lit_al.annotate.server as server

    leave_stale()
    monkeypatch.setattr(server, "serve", lambda run_dir, **options: 0)  # the page itself is tested in test_annotate_*
    assert main(["annotate", str(run_dir)]) == 0
    assert not any(path.exists() for path in stale)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / ".notes.txt.tmp").write_text("not lit_al's")
    assert main(["annotate", str(tmp_path / "other")]) == 0
    assert (tmp_path / "other" / ".notes.txt.tmp").exists()  # a folder that is not a run is never swept


def test_label_studio_prodigy_and_argilla_answers(tmp_path, tiny_bert, unlabeled):
    data, gold = unlabeled
    run_dir = tmp_path / "run"
    assert main(["query", "--config", str(_config(tmp_path / "c.yaml", tiny_bert, data, run_dir))]) == 0
    round0 = run_dir / "rounds" / "round_000"
    tasks = json.loads((round0 / "label_studio_tasks.json").read_text())
    ids = [t["data"]["lit_al_id"] for t in tasks]
    export = []
    for k, task in enumerate(tasks[:3]):  # Label Studio's JSON export of the imported tasks
        annotation = {"completed_by": {"email": "ls@example.org"}, "was_cancelled": k == 2,
                      "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                  "value": {"choices": [gold[task["data"]["lit_al_id"]]]}}]}
        export.append({"id": 100 + k, "data": task["data"], "annotations": [annotation]})
    (tmp_path / "ls.json").write_text(json.dumps(export))
    assert main(["label", str(run_dir), str(tmp_path / "ls.json")]) == 0
    lines = [json.loads(x) for x in (round0 / "to_label.jsonl").read_text().splitlines()]
    prodigy = [dict(lines[3], accept=[gold[ids[3]]], answer="accept", _annotator_id="pd"),
               dict(lines[4], answer="ignore"), lines[5]]  # the last one unanswered
    (tmp_path / "prodigy.jsonl").write_text("\n".join(json.dumps(x) for x in prodigy))
    assert main(["label", str(run_dir), str(tmp_path / "prodigy.jsonl")]) == 0
    argilla = [{"id": ids[5], "fields": {"text": "..."}, "status": "completed",  # v2: records.to_json()
                "responses": {"label": [{"value": gold[ids[5]], "user_id": "ar"}]}}]
    (tmp_path / "argilla.jsonl").write_text("\n".join(json.dumps(x) for x in argilla))
    assert main(["label", str(run_dir), str(tmp_path / "argilla.jsonl")]) == 0
    argilla = [{"external_id": ids[6], "fields": {"text": "..."}, "status": "submitted",  # v1: FeedbackRecord
                "responses": [{"values": {"label": {"value": gold[ids[6]]}}, "status": "submitted", "user_id": "ar1"}]}]
    (tmp_path / "argilla.jsonl").write_text("\n".join(json.dumps(x) for x in argilla))
    assert main(["label", str(run_dir), str(tmp_path / "argilla.jsonl")]) == 0
    state = _state(run_dir)
    labeled = {r["id"]: (r["labels"], r["annotator"]) for r in state["records"]}
    assert labeled == {ids[0]: ([gold[ids[0]]], "ls@example.org"), ids[1]: ([gold[ids[1]]], "ls@example.org"),
                       ids[3]: ([gold[ids[3]]], "pd"), ids[5]: ([gold[ids[5]]], "ar"), ids[6]: ([gold[ids[6]]], "ar1")}
    assert {r["id"]: r["reason"] for r in state["skipped"]} == {ids[2]: "skip", ids[4]: "not sure"}


def test_seed_labels_file_and_unlabeled_pool_refusals(tmp_path, tiny_bert, unlabeled, capsys):
    data, gold = unlabeled
    seeds = tmp_path / "seeds.csv"
    first = list(gold)[:5]
    seeds.write_text("id,label\n" + "".join(f"{i},{gold[i]}\n" for i in first), encoding="utf-8")
    run_dir = tmp_path / "run"
    config = _config(tmp_path / "c.yaml", tiny_bert, data, run_dir, scenario="none", labels_file=str(seeds))
    assert main(["query", "--config", str(config)]) == 0
    state = _state(run_dir)
    assert sorted(r["id"] for r in state["records"]) == sorted(first) and {r["source"] for r in state["records"]} == {"seed"}
    assert state["pending"]["round"] == 0 and len(state["pending"]["pool_indices"]) == 6

    capsys.readouterr()
    bad = _config(tmp_path / "r.yaml", tiny_bert, data, tmp_path / "r", scenario="random", n=5)
    assert main(["query", "--config", str(bad)]) == 1
    assert "data.initial.scenario 'random' reads gold labels, and the pool has none" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["fit", "--config", str(bad), "--loop.oracle", "simulated", "--data.initial.scenario", "none"]) == 1
    assert "loop.oracle 'simulated' answers from gold labels" in capsys.readouterr().err


def test_session_query_teach_and_model(tmp_path, tiny_bert, unlabeled):
    from lit_al import Session

    data, gold = unlabeled
    config = json.loads(_config(tmp_path / "c.yaml", tiny_bert, data, tmp_path / "unused").read_text())
    config["loop"]["overlap"] = {"enabled": False}  # the synchronous session (test_overlap.py: the overlapped one)
    session = Session(config, run_dir=str(tmp_path / "nb"))
    batch = session.query()
    assert batch.round == 0 and len(batch) == 8 and batch.suggestions == [()] * 8
    summary = session.teach(batch.ids, [gold[i] for i in batch.ids], annotator="nb")
    assert summary.added == 8 and summary.pending_left == 0
    batch = session.query()
    assert batch.round == 1 and len(batch) == 6 and all(len(s) == 1 for s in batch.suggestions)
    assert session.model.num_labels == 3
    state = _state(tmp_path / "nb")
    assert {r["annotator"] for r in state["records"]} == {"nb"}


def test_session_predict_status_and_a_quiet_query(tmp_path, tiny_bert, unlabeled, capfd, caplog):
    import logging
    import warnings

    from lit_al import Session

    data, gold = unlabeled
    config = json.loads(_config(tmp_path / "c.yaml", tiny_bert, data, tmp_path / "unused").read_text())
    session = Session(config, run_dir=str(tmp_path / "nb"))
    batch = session.query()
    session.teach(batch.ids, [gold[i] for i in batch.ids])
    capfd.readouterr()
    banners = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = banners.level
    banners.setLevel(logging.INFO)  # a notebook's setting (the command line's tests may have left another)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batch = session.query()  # trains, tests, scores the pool
        assert banners.level == logging.INFO  # the notebook's own setting, restored
    finally:
        banners.setLevel(level)
    out, err = capfd.readouterr()
    said = out + err + "\n".join(str(w.message) for w in caught)
    for chatter in ("GPU available", "TPU available", "litlogger", "LengthSortedBatches", "Total length of",
                    "Loading weights", "stepping batches", "`Trainer.fit` stopped"):
        assert chatter not in said, chatter

    table = session.predict(["the ball and the goal", "bank stock price"])
    assert list(table.columns[:4]) == ["id", "text", "predicted", "confidence"] and len(table) == 2
    assert set(table["predicted"]) <= set(LABELS) and np.allclose(table[[f"prob_{n}" for n in LABELS]].sum(1), 1, atol=1e-5)
    cli = tmp_path / "new.csv"
    write_csv(cli, [{"id": "1", "text": "the ball and the goal"}, {"id": "2", "text": "bank stock price"}])
    assert main(["predict", str(tmp_path / "nb"), "--input", str(cli), "--output", str(tmp_path / "p.csv"),
                 "--progress", "false"]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["confidence"], table["confidence"], atol=1e-6)
    status = session.status()
    assert status.batch.round == 1 and status.batch.size == 6 and status.batch.answered == 0
    assert "pending: 6 item(s) proposed in round 1: 0 answered" in str(status)
    again = session.query()  # no answers since: the same batch, at once
    assert again == batch and "no labels arrived for the round-1 batch" in caplog.text
    with pytest.raises(ConfigError, match="1 empty text"):
        session.predict(["fine", "  "])


@pytest.mark.slow
def test_kill_9_during_imports_loses_and_duplicates_nothing(tmp_path, tiny_bert):
    """Import a large answers file, SIGKILL the import at random moments (>= 20 times), re-import each time."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "data"
    rows = make_rows(1500, seed=5, prefix="big")
    write_csv(folder / "pool.csv", [{"id": r["id"], "text": r["text"]} for r in rows])
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    config = json.loads(_config(tmp_path / "c.yaml", tiny_bert, folder, run_dir, scenario="none").read_text())
    config["data"].pop("test")
    config["strategy"], config["loop"]["query_size"] = "random", 1500  # the whole pool is the pending batch
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    assert main(["query", "--config", str(tmp_path / "c.yaml")]) == 0
    answers = _fill(run_dir / "rounds" / "round_000" / "to_label.csv", {r["id"]: r["label"] for r in rows})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "lit_al.cli", "label", str(run_dir), str(answers)]

    start = time.monotonic()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)  # one full import, timed
    full = time.monotonic() - start
    assert len(_state(run_dir)["records"]) == 1500
    rng = random.Random(0)
    outcomes = {"none": 0, "all": 0}
    for _ in range(20):
        state = _state(run_dir)
        state["records"] = []  # start each try from the batch unanswered
        (run_dir / "state.json").write_text(json.dumps(state))
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5 * full, 1.1 * full))  # most of a run is start-up: kill around the write
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        records = _state(run_dir)["records"]  # always parses
        assert len(records) in (0, 1500) and len({r["id"] for r in records}) == len(records)
        outcomes["all" if records else "none"] += 1
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)  # re-import
        records = _state(run_dir)["records"]
        assert len(records) == 1500 and len({r["id"] for r in records}) == 1500
    print(f"kill -9 outcomes: {outcomes}")  # shown with -s; the closing note quotes it
