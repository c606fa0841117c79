"""Files for people: the batch to label, written as CSV, Label Studio tasks and JSONL.

Written for every proposed batch, in its round directory:

- ``to_label.csv``: ``id, text, label, skip, suggested_label, confidence, score``. A person
  fills ``label`` (multi-label: names joined by the data's ``label_separator``, ``[]`` for
  "no label applies") or writes a reason (``skip``, ``not sure``) in ``skip``; rows left
  empty stay pending. An ``annotator`` column, if added, names who answered.
- ``label_studio_tasks.json`` + ``label_studio_config.xml``: tasks with ``data.lit_al_id``
  (the example id, under a key Label Studio's exports never overwrite) and ``data.text``, the
  model's suggestion as a pre-annotation (``predictions``), and the matching labeling config
  (a ``Choices`` control named ``label``).
- ``to_label.jsonl``: one task per line, ``id``, ``text``, ``options`` and the suggestion
  pre-selected in ``accept`` (Prodigy's choice interface; Argilla records take the same
  ``id`` and ``text``). Line separators inside texts (U+2028, U+2029, U+0085) are escaped, so
  every tool that splits lines on them still sees one record per line; no ``NaN`` is written.

The answers coming back are read by ``lit_al.labeling.reading`` (re-exported here).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import quoteattr

from ..atomic import atomic_write_text
from ..data.schema import LabelSchema
from .names import CSV_FILE, EMPTY_SET, ID_KEY, JSONL_FILE, LABEL_STUDIO_CONFIG, LABEL_STUDIO_TASKS, QUESTION
from .label_studio import annotations_answer
from .reading import AnswerFile, read_answer_file, read_answers

__all__ = ["CSV_FILE", "EMPTY_SET", "ID_KEY", "JSONL_FILE", "LABEL_STUDIO_CONFIG", "LABEL_STUDIO_TASKS", "QUESTION",
           "AnswerFile", "annotations_answer", "read_answer_file", "read_answers", "write_batch_files",
           "label_studio_task", "json_line"]

#: Characters that ``str.splitlines`` (and JavaScript, and some JSONL readers) treat as line ends
#: though JSON allows them raw inside a string.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"}


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
    atomic_write_text(paths[1], json.dumps([label_studio_task(item, round_index) for item in items],
                                           indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write_text(paths[2], _label_studio_config(schema))
    atomic_write_text(paths[3], "".join(json_line(_jsonl_task(item, schema, round_index)) + "\n" for item in items))
    return paths


def json_line(record: dict[str, Any]) -> str:
    """One JSON Lines record: readable UTF-8, with the characters other readers split lines on escaped."""
    text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    for raw, escaped in _LINE_BREAKS.items():
        text = text.replace(raw, escaped)  # they can only occur inside strings, where the escape means the same
    return text


def _finite(value: Any) -> float | None:
    """A number for JSON: NaN and infinities (no score, no confidence) are ``null``."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _number(value: Any) -> str:
    finite = _finite(value)
    return "" if finite is None else f"{finite:.6g}"


def _csv_text(items: Sequence[dict[str, Any]], separator: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "text", "label", "skip", "suggested_label", "confidence", "score"])
    for item in items:
        writer.writerow([item["id"], item["text"], "", "", separator.join(item.get("suggestion") or ()),
                         _number(item.get("confidence")), _number(item.get("score"))])
    return out.getvalue()


def label_studio_task(item: dict[str, Any], round_index: int) -> dict[str, Any]:
    """A Label Studio task for one batch item: the id under ``data.lit_al_id``, the suggestion as a prediction."""
    task: dict[str, Any] = {"data": {ID_KEY: item["id"], "text": item["text"]}}
    if item.get("suggestion"):
        task["predictions"] = [{
            "model_version": f"lit_al round {round_index}",
            "score": _finite(item.get("confidence")),
            "result": [{"from_name": QUESTION, "to_name": "text", "type": "choices",
                        "value": {"choices": list(item["suggestion"])}}],
        }]
    return task


_label_studio_task = label_studio_task  # the names before they were public (lit_al.integrations uses them)
_label_studio_annotation = annotations_answer


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
        "meta": {"id": item["id"], "round": round_index, "score": _finite(item.get("score")),
                 "confidence": _finite(item.get("confidence"))},
    }
