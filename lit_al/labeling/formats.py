"""Files for people: the batch to label (CSV, Label Studio tasks, JSONL) and the answers coming back.

Written for every proposed batch, in its round directory:

- ``to_label.csv``: ``id, text, label, skip, suggested_label, confidence, score``. A person
  fills ``label`` (multi-label: names joined by the data's ``label_separator``, ``[]`` for
  "no label applies") or writes a reason (``skip``, ``not sure``) in ``skip``; rows left
  empty stay pending. An ``annotator`` column, if added, names who answered.
- ``label_studio_tasks.json`` + ``label_studio_config.xml``: tasks with ``data.id`` and
  ``data.text`` and the model's suggestion as a pre-annotation (``predictions``), and the
  matching labeling config (a ``Choices`` control named ``label``).
- ``to_label.jsonl``: one task per line, ``id``, ``text``, ``options`` and the suggestion
  pre-selected in ``accept`` (Prodigy's choice interface; Argilla imports the same fields).

Read back by ``read_answers``:

- CSV / TSV as above (line numbers as an editor counts them, the header being line 1);
- a Label Studio JSON export (``annotations[].result[].value.choices``; the last
  annotation of a task counts, a cancelled one is a skip; JSON-MIN exports too);
- JSONL from Prodigy (``answer``: ``accept`` takes ``accept`` or ``label``, ``ignore`` is a
  skip, ``reject`` the other class of a binary task or a skip) or Argilla
  (``responses`` of the question ``label``; ``discarded`` is a skip).
"""

from __future__ import annotations

import csv
import io
import json
from xml.sax.saxutils import quoteattr
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..data.readers import jsonl_records
from ..data.schema import LabelSchema
from ..errors import DataError
from ..atomic import atomic_write_text
from .answers import Answer

CSV_FILE = "to_label.csv"
LABEL_STUDIO_TASKS = "label_studio_tasks.json"
LABEL_STUDIO_CONFIG = "label_studio_config.xml"
JSONL_FILE = "to_label.jsonl"
#: Name of the label question in every format (Label Studio ``from_name``, Argilla question).
QUESTION = "label"
EMPTY_SET = "[]"
SKIP_VALUES = {"skip", "skipped", "not sure", "unsure", "?", "x", "yes", "true", "1"}


# ------------------------------------------------------------------ writing
def write_batch_files(
    directory: Path,
    items: Sequence[dict[str, Any]],
    schema: LabelSchema,
    round_index: int,
    separator: str = "|",
) -> list[Path]:
    """Write the batch ``items`` (keys ``id``, ``text``, ``suggestion`` (names), ``confidence``, ``score``) for people."""
    paths = [directory / CSV_FILE, directory / LABEL_STUDIO_TASKS, directory / LABEL_STUDIO_CONFIG, directory / JSONL_FILE]
    atomic_write_text(paths[0], _csv_text(items, separator))
    atomic_write_text(paths[1], json.dumps([_label_studio_task(item, round_index) for item in items],
                                           indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(paths[2], _label_studio_config(schema))
    atomic_write_text(paths[3], "".join(json.dumps(_jsonl_task(item, schema, round_index), ensure_ascii=False) + "\n"
                                        for item in items))
    return paths


def _number(value: Any) -> str:
    return "" if value is None or value != value else f"{float(value):.6g}"


def _csv_text(items: Sequence[dict[str, Any]], separator: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "text", "label", "skip", "suggested_label", "confidence", "score"])
    for item in items:
        writer.writerow([item["id"], item["text"], "", "", separator.join(item.get("suggestion") or ()),
                         _number(item.get("confidence")), _number(item.get("score"))])
    return out.getvalue()


def _label_studio_task(item: dict[str, Any], round_index: int) -> dict[str, Any]:
    task: dict[str, Any] = {"data": {"id": item["id"], "text": item["text"]}}
    if item.get("suggestion"):
        task["predictions"] = [{
            "model_version": f"lit_al round {round_index}",
            "score": None if item.get("confidence") is None else float(item["confidence"]),
            "result": [{"from_name": QUESTION, "to_name": "text", "type": "choices",
                        "value": {"choices": list(item["suggestion"])}}],
        }]
    return task


def _label_studio_config(schema: LabelSchema) -> str:
    choice = "multiple" if schema.multi_label else "single"
    options = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in schema.source_names)
    return (f'<View>\n  <Text name="text" value="$text"/>\n  <Choices name="{QUESTION}" toName="text" choice="{choice}">\n'
            f"{options}\n  </Choices>\n</View>\n")




def _jsonl_task(item: dict[str, Any], schema: LabelSchema, round_index: int) -> dict[str, Any]:
    return {
        "id": item["id"],
        "text": item["text"],
        "options": [{"id": name, "text": name} for name in schema.source_names],
        "accept": list(item.get("suggestion") or ()),
        "meta": {"id": item["id"], "round": round_index, "score": item.get("score"), "confidence": item.get("confidence")},
    }


# ------------------------------------------------------------------ reading
def read_answers(path: str | Path, schema: LabelSchema, separator: str = "|") -> list[Answer]:
    """Every answer in ``path`` (unanswered rows are left out); one ``DataError`` naming file and line on bad input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return list(_csv_answers(path, text, "\t" if suffix == ".tsv" else ",", schema, separator))
    if suffix == ".json":
        return list(_label_studio_answers(path, text, schema))
    if suffix in (".jsonl", ".ndjson"):
        return list(_jsonl_answers(path, text, schema))
    raise DataError(f"{path}: unknown answer format; give a .csv, .tsv, Label Studio .json or .jsonl file")


def _split(raw: str, schema: LabelSchema, separator: str) -> tuple[str, ...]:
    raw = raw.strip()
    if schema.multi_label:
        return () if raw == EMPTY_SET else tuple(part.strip() for part in raw.split(separator) if part.strip())
    return (raw,)


def _csv_answers(path: Path, text: str, delimiter: str, schema: LabelSchema, separator: str) -> Iterator[Answer]:
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(rows, [])]
    label_column = "label" if "label" in header else "labels" if "labels" in header else None
    if "id" not in header or label_column is None:
        raise DataError(f"{path}: line 1: needs the columns id and label; found {header}")
    column = {name: header.index(name) for name in header}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = dict(zip(header, row + [""] * (len(header) - len(row))))
        if len(row) > len(header):
            raise DataError(f"{path}: line {line}: {len(row)} fields for {len(header)} columns")
        where = f"{path}: line {line}"
        example_id = cells["id"].strip()
        if not example_id:
            raise DataError(f"{where}: empty id")
        label = cells[label_column].strip()
        skip = cells.get("skip", "").strip() if "skip" in column else ""
        annotator = cells.get("annotator", "").strip() or None
        if skip and label:
            raise DataError(f"{where}: both a label and a skip mark for id {example_id!r}")
        if skip:
            if skip.lower() not in SKIP_VALUES:
                raise DataError(f"{where}: skip mark {skip!r}; write one of {sorted(SKIP_VALUES)} or leave it empty")
            yield Answer(example_id, None, skip.lower(), annotator, where)
        elif label:
            yield Answer(example_id, _split(label, schema, separator), None, annotator, where)


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _label_studio_answers(path: Path, text: str, schema: LabelSchema) -> Iterator[Answer]:
    tasks = _load_json(path, text)
    if not isinstance(tasks, list):
        raise DataError(f"{path}: a Label Studio export is a JSON list of tasks")
    for number, task in enumerate(tasks, start=1):
        where = f"{path}: task {number}"
        if not isinstance(task, dict):
            raise DataError(f"{where}: not a JSON object")
        data = task.get("data") if isinstance(task.get("data"), dict) else task
        example_id = data.get("id")
        if example_id is None or str(example_id).strip() == "":
            raise DataError(f"{where}: no data.id (tasks must come from lit_al's label_studio_tasks.json)")
        example_id = str(example_id)
        if "annotations" in task:
            answer = _label_studio_annotation(task["annotations"], example_id, where)
        else:  # JSON-MIN: the control's value sits on the task itself
            answer = _label_studio_min(task, example_id, where)
        if answer is not None:
            yield answer


def _label_studio_annotation(annotations: Any, example_id: str, where: str) -> Answer | None:
    if not isinstance(annotations, list) or not annotations:
        return None
    last = annotations[-1]
    annotator = _annotator(last.get("completed_by"))
    if last.get("was_cancelled"):
        return Answer(example_id, None, "skip", annotator, where)
    choices = [value for region in last.get("result", []) if region.get("type") == "choices"
               for value in (region.get("value") or {}).get("choices", [])]
    return Answer(example_id, tuple(str(c) for c in choices), None, annotator, where)


def _label_studio_min(task: dict[str, Any], example_id: str, where: str) -> Answer | None:
    value = task.get(QUESTION)
    if value is None:
        return None
    choices = value.get("choices", []) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return Answer(example_id, tuple(str(c) for c in choices), None, _annotator(task.get("annotator")), where)


def _annotator(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("email") or value.get("username") or value.get("id")
    return None if value in (None, "") else str(value)


def _jsonl_answers(path: Path, text: str, schema: LabelSchema) -> Iterator[Answer]:
    for line, record in jsonl_records(text.splitlines(), path):
        where = f"{path}: line {line}"
        meta = record.get("meta") or record.get("metadata") or {}
        example_id = record.get("id", meta.get("id") if isinstance(meta, dict) else None)
        if example_id is None or str(example_id).strip() == "":
            raise DataError(f"{where}: no id (nor meta.id)")
        example_id = str(example_id)
        if "answer" in record:
            yield _prodigy(record, example_id, schema, where)
        elif record.get("responses"):
            answer = _argilla(record, example_id, where)
            if answer is not None:
                yield answer


def _prodigy(record: dict[str, Any], example_id: str, schema: LabelSchema, where: str) -> Answer:
    verdict = record["answer"]
    annotator = _annotator(record.get("_annotator_id") or record.get("_session_id"))
    if verdict == "ignore":
        return Answer(example_id, None, "not sure", annotator, where)
    if verdict == "accept":
        labels = record.get("accept") if "options" in record else [record.get("label")]
        return Answer(example_id, tuple(str(x) for x in labels or () if x is not None), None, annotator, where)
    if verdict == "reject":
        label = record.get("label")
        others = [name for name in schema.source_names if name != label]
        if "options" not in record and label is not None and not schema.multi_label and len(others) == 1:
            return Answer(example_id, (others[0],), None, annotator, where)
        return Answer(example_id, None, "rejected", annotator, where)
    raise DataError(f"{where}: answer {verdict!r}; expected accept, reject or ignore")


def _argilla(record: dict[str, Any], example_id: str, where: str) -> Answer | None:
    responses = record["responses"]
    if isinstance(responses, dict):  # one list of answers per question
        answers = responses.get(QUESTION) or []
        if record.get("status") == "discarded":
            return Answer(example_id, None, "discarded", None, where)
        if not answers:
            return None
        last = answers[-1]
        value, annotator = last.get("value"), _annotator(last.get("user_id"))
    else:  # a list of submitted responses, each with the values of every question
        submitted = [r for r in responses if isinstance(r, dict)]
        if not submitted:
            return None
        last = submitted[-1]
        annotator = _annotator(last.get("user_id"))
        if last.get("status") == "discarded":
            return Answer(example_id, None, "discarded", annotator, where)
        value = ((last.get("values") or {}).get(QUESTION) or {}).get("value")
    if value is None:
        return None
    labels = value if isinstance(value, list) else [value]
    return Answer(example_id, tuple(str(x) for x in labels), None, annotator, where)
