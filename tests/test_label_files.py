"""Every answer file the labeling tools write, imported through ``lit_al label``: (id, label) pairs → state.

The fixtures in ``tests/fixtures/label_files`` were written by the tools' own code where it
runs here (a real Label Studio server's exports, Label Studio's converter, the argilla 1.x and
2.x SDKs) and from the documentation otherwise (Prodigy); ``tests/fixtures/label_files/README.md`` says which.
Each fixture answers the same eight pool items (p01..p08) the same way, as far as its format can:
p01 labeled; p02 labeled by one annotator and skipped by another; p03 skipped by everyone; p04
two annotators disagree (the later says money); p05 a draft only; p06 and p08 nobody; p07 labeled.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lit_al.cli import main
from lit_al.data.schema import LabelSchema
from lit_al.errors import DataError
from lit_al.labeling import read_answer_file
from lit_al.labeling.formats import write_batch_files

FIXTURES = Path(__file__).parent / "fixtures" / "label_files"
SCHEMA = LabelSchema(("money", "sport", "tech"))
MULTI = LabelSchema(("money", "sport", "tech"), multi_label=True)
LABELED = {"p01": ["money"], "p02": ["sport"], "p04": ["money"], "p07": ["money"]}
DISAGREE = "1 item with disagreeing annotators, the latest answer taken: p04"

# file, labels in the state, skips in the state, lines the import prints
CASES = [
    ("label_studio.json", LABELED, {"p03": "skip"}, [DISAGREE, "not imported: 1 draft, 2 tasks nobody annotated"]),
    ("label_studio_min.json", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("label_studio.csv", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("label_studio.tsv", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("label_studio_server.json", LABELED, {"p03": "skip"}, [DISAGREE, "not imported: 1 draft, 2 tasks nobody annotated"]),
    ("label_studio_server_min.json", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("label_studio_server.csv", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("label_studio_server.tsv", LABELED, {}, [DISAGREE, "not imported: 3 tasks nobody annotated"]),
    ("argilla_v1_records.jsonl", LABELED, {"p03": "discarded"}, [DISAGREE, "not imported: 2 drafts, 1 pending"]),
    ("argilla_v1_hf.jsonl", LABELED, {}, [DISAGREE, "not imported: 2 pending, 2 drafts"]),
    ("argilla_v1_legacy.jsonl", {k: v for k, v in LABELED.items() if k != "p07"}, {"p03": "discarded"},
     ["not imported: 2 pending"]),
    ("argilla_v2_datasets.jsonl", LABELED, {"p03": "discarded"}, [DISAGREE, "not imported: 1 draft, 2 pending"]),
    # records.to_json() drops each response's status: a completed record whose answers differ is not guessed
    ("argilla_v2_records.json", {"p01": ["money"], "p07": ["money"]}, {}, ["2 completed with differing answers", "4 pending"]),
    ("argilla_v2_nested.jsonl", {"p01": ["money"], "p07": ["money"]}, {}, ["2 completed with differing answers", "4 pending"]),
    ("prodigy_choice.jsonl", LABELED, {"p03": "not sure"}, [DISAGREE]),
    ("prodigy_binary.jsonl", {"p01": ["money"], "p07": ["money"]}, {"p02": "rejected", "p03": "not sure"}, []),
]


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory, tiny_bert):
    """A run whose pending batch is the whole fixture pool (p01..p08), proposed by ``lit_al query``."""
    root = tmp_path_factory.mktemp("label_files")
    data = root / "data"
    data.mkdir()
    for name in ("pool.csv", "labels.txt"):
        shutil.copy(FIXTURES / name, data / name)
    run_dir = root / "run"
    config = {
        "seed": 0, "run_dir": str(run_dir),
        "model": {"model_name_or_path": str(tiny_bert)},
        "data": {"train": str(data / "pool.csv"), "max_length": 16, "batch_size": 8,
                 "initial": {"scenario": "keyword_query", "query": ".", "n": 8}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": "random", "loop": {"query_size": 4, "rounds": None},
    }
    (root / "c.yaml").write_text(json.dumps(config), encoding="utf-8")
    assert main(["query", "--config", str(root / "c.yaml")]) == 0
    pending = json.loads((run_dir / "state.json").read_text())["pending"]
    assert len(pending["pool_indices"]) == 8
    return run_dir


@pytest.mark.parametrize("name,labels,skips,notes", CASES, ids=[c[0] for c in CASES])
def test_each_tools_export_imports_right(tmp_path, batch_run, capsys, name, labels, skips, notes):
    run_dir = tmp_path / "run"
    shutil.copytree(batch_run, run_dir)
    capsys.readouterr()
    assert main(["label", str(run_dir), str(FIXTURES / name)]) == 0
    out = capsys.readouterr().out
    state = json.loads((run_dir / "state.json").read_text())
    assert {r["id"]: r["labels"] for r in state["records"]} == labels
    assert {r["id"]: r["reason"] for r in state["skipped"]} == skips
    assert all(r["source"] == "person" and r["annotator"] for r in state["records"])
    for note in notes:
        assert note in out
    assert f"{len(labels)} labeled, 0 corrected, {len(skips)} skipped" in out


@pytest.mark.parametrize("name", ["label_studio_multi.json", "label_studio_multi_min.json", "label_studio_multi.csv",
                                  "label_studio_multi.tsv"])
def test_label_studio_multi_label_exports(name):
    found = read_answer_file(FIXTURES / name, MULTI)
    assert [(a.id, a.labels) for a in found.answers] == [("p01", ("money", "tech")), ("p02", ("sport",))]
    assert found.unanswered == {"task nobody annotated": 1}


def test_label_studio_tasks_from_its_api_read_as_its_export():
    """``label_studio_answers``: the reader for task objects (a parsed export, or the tasks Label Studio's API returns)."""
    from lit_al.labeling import label_studio_answers
    from lit_al.labeling.formats import _label_studio_annotation

    tasks = json.loads((FIXTURES / "label_studio_server.json").read_text(encoding="utf-8"))
    found = label_studio_answers(tasks, source="Label Studio project 1")
    assert {a.id: a.labels or a.skip for a in found.answers} == {**{k: tuple(v) for k, v in LABELED.items()}, "p03": "skip"}
    assert found.unanswered == {"draft": 1, "task nobody annotated": 2} and found.disagreements == ("p04",)
    assert found.answers[0].where == "Label Studio project 1: task 1"
    assert _label_studio_annotation(tasks[1]["annotations"], "p02", "here").labels == ("sport",)  # the older name
    with pytest.raises(DataError, match="^Label Studio project 1: task 1: the task's data is null; expected an object$"):
        label_studio_answers([{"id": 1, "data": None}], source="Label Studio project 1")


def test_label_studio_before_1_0_said_completions_and_skipped():
    from lit_al.labeling import label_studio_answers

    tasks = [{"id": 1, "data": {"lit_al_id": "p01"}, "completions": [{"result": [_region({"choices": ["tech"]})]}]},
             {"id": 2, "data": {"lit_al_id": "p02"}, "completions": [{"result": [], "skipped": True}]}]
    assert [(a.id, a.labels, a.skip) for a in label_studio_answers(tasks).answers] == [
        ("p01", ("tech",), None), ("p02", None, "skip")]


def test_label_studio_full_export_of_tasks_from_older_lit_al_reads_data_id():
    from lit_al.labeling import label_studio_answers

    tasks = [{"id": 7, "data": {"id": "p01", "text": "x"}, "annotations": [{"result": [_region({"choices": ["tech"]})]}]}]
    assert [(a.id, a.labels) for a in label_studio_answers(tasks).answers] == [("p01", ("tech",))]


def test_a_json_file_of_json_lines_reads_as_jsonl(tmp_path):
    """``datasets``' ``to_json("x.json")`` writes JSON lines whatever the name."""
    copy = tmp_path / "argilla.json"
    shutil.copy(FIXTURES / "argilla_v2_datasets.jsonl", copy)
    answers = [(a.id, a.labels, a.skip) for a in read_answer_file(copy, SCHEMA).answers]
    assert answers == [("p01", ("money",), None), ("p02", ("sport",), None), ("p03", None, "discarded"),
                       ("p04", ("money",), None), ("p07", ("money",), None)]


def test_label_studio_tasks_carry_the_id_the_converter_keeps(tmp_path):
    """lit_al's tasks hold the id under data.lit_al_id; the converter's JSON-MIN/CSV put the task number in ``id``."""
    write_batch_files(tmp_path, [{"id": "p01", "text": "x", "suggestion": ("money",), "confidence": 0.7, "score": 1.0}],
                      SCHEMA, 0)
    task = json.loads((tmp_path / "label_studio_tasks.json").read_text())[0]
    assert task["data"] == {"lit_al_id": "p01", "text": "x"}
    exported = json.loads((FIXTURES / "label_studio_min.json").read_text())[0]
    assert exported["id"] == 1 and exported["lit_al_id"] == "p01"  # what the converter made of such a task


def _refused(tmp_path: Path, name: str, text: str, schema: LabelSchema = SCHEMA) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_answer_file(path, schema)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def _ls(annotations) -> str:
    return json.dumps([{"id": 1, "data": {"lit_al_id": "p01", "text": "x"}, "annotations": annotations}])


def _region(value) -> dict:
    return {"from_name": "label", "to_name": "text", "type": "choices", "value": value}


REFUSED = [
    # Label Studio: types a JSON export can be corrupted into
    ("ls.json", _ls([{"result": None}]), "line 1: annotation 1: result is null; expected a list"),
    ("ls.json", _ls([3]), "annotation 1 is the number 3; expected an object"),
    ("ls.json", _ls([{"result": ["money"]}]), "region 1 of result is the string 'money'; expected an object"),
    ("ls.json", _ls([{"result": [_region({"choices": "money"})]}]), "value.choices is the string 'money'; expected a list"),
    ("ls.json", _ls([{"result": [_region({"choices": [1]})]}]), "value.choices holds the number 1"),
    ("ls.json", _ls("money"), "annotations is the string 'money'; expected a list"),
    ("ls.json", json.dumps([{"data": {"text": "x"}, "annotations": []}]), "the task's data has no lit_al_id"),
    ("ls.json", _ls([{"result": [{"type": "labels", "value": {"labels": ["money"]}}]}]), "no Choices answer"),
    ("min.json", json.dumps([{"id": 1, "text": "x", "label": "money", "annotator": 1, "annotation_id": 5}]),
     "no lit_al_id: Label Studio's JSON-MIN and CSV exports write the task's own number into id"),
    ("min.json", json.dumps([{"lit_al_id": "p01", "label": ["money"]}]), "label is a list; expected a class name"),
    ("ls.csv", "annotation_id,id,lit_al_id,sentiment\n5,1,p01,money\n", "a Label Studio export without a 'label' column"),
    # Argilla
    ("a.jsonl", json.dumps({"external_id": "p01", "responses": {"values": {"label": {"value": "money"}}}}),
     "responses is an object; expected a list"),
    ("a.jsonl", json.dumps({"id": "p01", "responses": {"label": {"value": "money"}}}),
     "responses.label is an object; expected a list"),
    ("a.jsonl", json.dumps({"responses": [{"values": {"label": {"value": "money"}}, "status": "submitted"}]}),
     "no external_id (nor metadata.lit_al_id)"),
    ("a.jsonl", json.dumps({"external_id": "p01", "responses": [{"values": {"label": {"value": 3}},
                                                                  "status": "submitted"}]}),
     "the answer to 'label' is the number 3"),
    ("a.jsonl", json.dumps({"external_id": "p01", "responses": [{"values": {"label": {"value": "money"}},
                                                                  "status": "accepted"}]}),
     "response status is the string 'accepted'; expected one of submitted, discarded, draft"),
    ("a.jsonl", json.dumps({"id": "p01", "label.responses": "money", "label.responses.status": ["submitted"]}),
     "label.responses is the string 'money'; expected a list"),
    ("a.jsonl", json.dumps({"id": "p01", "annotation": "money", "status": "Done"}),
     "status is the string 'Done'; expected Validated, Discarded or Default"),
    # Prodigy
    ("p.jsonl", json.dumps({"id": "p01", "options": [], "accept": "money", "answer": "accept"}),
     "accept is the string 'money'; expected a list"),
    ("p.jsonl", json.dumps({"id": "p01", "label": "money", "answer": "maybe"}), "answer is the string 'maybe'"),
    ("p.jsonl", json.dumps({"text": "x", "label": "money", "answer": "accept"}), "a Prodigy task with no id"),
    # shapes lit_al does not know, and files without answers
    ("x.jsonl", json.dumps({"id": "p01", "sentiment": "money"}), "line 1: a record of unknown shape (keys: id, sentiment)"),
    ("x.json", json.dumps([["p01", "money"]]), "line 1: the record is a list; expected an object"),
    ("x.jsonl", json.dumps({"id": "p01", "answer": "accept", "label": "money"}) + "\n"
     + json.dumps({"external_id": "p02", "responses": []}), "line 2: an Argilla record in a file of Prodigy tasks"),
    ("x.json", "[1, 2", "line 1: not valid JSON"),
    ("x.json", "[]", "no records; nothing imported"),
    ("x.jsonl", "\n".join([json.dumps({"id": f"p0{i}", "status": "pending", "responses": {}}) for i in range(3)]
                          + [json.dumps({"id": "p09", "label.responses": ["money"], "label.responses.status": ["draft"]})]),
     "4 records, none answered: 3 pending, 1 draft"),
    ("drafts.jsonl", "\n".join([json.dumps({"external_id": f"p{i}", "responses": [
        {"values": {"label": {"value": "money"}}, "status": "draft"}]}) for i in range(9)]
        + [json.dumps({"external_id": f"q{i}", "responses": []}) for i in range(3)]),
     "12 records, none answered: 9 drafts, 3 pending; nothing imported"),
    ("to_label.csv", "id,text,label,skip\np01,x,,\np02,y,,\n", "2 records, none answered: 2 rows left empty"),
    ("x.txt", "p01 money", "unknown answer format"),
]


@pytest.mark.parametrize("name,text,fragment", REFUSED, ids=[f"{i}-{c[0]}" for i, c in enumerate(REFUSED)])
def test_bad_records_are_one_line_naming_file_line_and_what_was_expected(tmp_path, name, text, fragment):
    assert fragment in _refused(tmp_path, name, text)


def test_a_refused_file_changes_nothing(tmp_path, batch_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(batch_run, run_dir)
    before = (run_dir / "state.json").read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(_ls([{"result": None}]), encoding="utf-8")
    capsys.readouterr()
    assert main(["label", str(run_dir), str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "result is null" in err
    assert (run_dir / "state.json").read_bytes() == before


# ------------------------------------------------------------------ lit_al's own files (#24 2.2-2.4)
def _no_nan(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_to_label_jsonl_survives_line_separators_and_writes_no_nan(tmp_path):
    texts = ["one\u2028two", "three\u2029four", "five\u0085six", "plain"]
    items = [{"id": f"p0{k + 1}", "text": text, "suggestion": ("money",), "confidence": float("nan"),
              "score": float("nan") if k else float("inf")} for k, text in enumerate(texts)]
    write_batch_files(tmp_path, items, SCHEMA, 0)
    raw = (tmp_path / "to_label.jsonl").read_text(encoding="utf-8")
    assert len(raw.splitlines()) == 4  # what str.splitlines (and JavaScript) call lines
    lines = [json.loads(line, parse_constant=_no_nan) for line in raw.splitlines()]
    assert [line["text"] for line in lines] == texts and lines[0]["meta"]["score"] is None
    json.loads((tmp_path / "label_studio_tasks.json").read_text(encoding="utf-8"), parse_constant=_no_nan)
    # answered by a tool that writes the separators raw: still one record per line
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(dict(line, answer="accept", accept=["sport"]), ensure_ascii=False) + "\n"
                               for line in lines), encoding="utf-8")
    assert "\u2028" in answers.read_text(encoding="utf-8")
    found = read_answer_file(answers, SCHEMA)
    assert [(a.id, a.labels, a.where.rsplit(" ", 1)[1]) for a in found.answers] == [
        (f"p0{k}", ("sport",), str(k)) for k in range(1, 5)]


def test_a_text_over_128_kib_in_to_label_csv(tmp_path):
    import csv

    csv.field_size_limit(131072)  # Python's default, whatever another test set
    text = "word " * 60_000  # 300 KB
    write_batch_files(tmp_path, [{"id": "p01", "text": text, "suggestion": (), "confidence": None, "score": 0.5}],
                      SCHEMA, 0)
    path = tmp_path / "to_label.csv"
    rows = path.read_text(encoding="utf-8").replace(",,,", ",money,,", 1)
    path.write_text(rows, encoding="utf-8")
    found = read_answer_file(path, SCHEMA)
    assert [(a.id, a.labels) for a in found.answers] == [("p01", ("money",))]


def test_csv_line_numbers_are_an_editors_after_multi_line_texts(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text('id,text,label\np01,"one\ntwo\nthree",money\n\np02,x,golf\n', encoding="utf-8")
    found = read_answer_file(path, SCHEMA)
    assert [a.where.rsplit(" ", 1)[1] for a in found.answers] == ["2", "6"]
    path.write_text('id,text,label\np01,"one\ntwo",money\n,x,sport\n', encoding="utf-8")
    assert "answers.csv: line 4: empty id" in _refused(tmp_path, "answers.csv", path.read_text())
