"""Read a person's answers from a file, whichever tool wrote it; tell what was read and what was not.

``read_answer_file`` recognises the file by its name (``.csv``/``.tsv``: a table;
``.json``/``.jsonl``/``.ndjson``: JSON records, one list or one object per line) and each
JSON record by its shape: a Label Studio task (``data``, ``annotations``), a Label Studio
JSON-MIN row (``lit_al_id``, ``annotation_id``), an Argilla record (see ``argilla``) or a
Prodigy task (``answer``). A file holds records of one tool. A record of another shape is
one ``DataError`` naming the file, line and the shapes expected; so is a file whose records
give no answer at all (it says why: ``12 records, none answered: 9 drafts, 3 pending``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..data.schema import LabelSchema
from ..errors import DataError
from . import argilla, label_studio, prodigy
from .answers import Answer
from .csv_answers import csv_answers
from .names import ID_KEY
from .records import AnswerFile, Tally, expect, json_records

EXPECTED = (f"a Label Studio task (data, annotations), a Label Studio JSON-MIN row ({ID_KEY}), an Argilla record "
            "(responses, label.responses, or annotation and status) or a Prodigy answer (answer)")
_TOOLS = {"label-studio": ("a Label Studio task", "Label Studio tasks"),
          "label-studio-min": ("a Label Studio JSON-MIN row", "Label Studio JSON-MIN rows"),
          "argilla": ("an Argilla record", "Argilla records"), "prodigy": ("a Prodigy task", "Prodigy tasks")}


def read_answers(path: str | Path, schema: LabelSchema, separator: str = "|") -> list[Answer]:
    """Every answer in ``path`` (see ``read_answer_file``)."""
    return list(read_answer_file(path, schema, separator).answers)


def read_answer_file(path: str | Path, schema: LabelSchema, separator: str = "|") -> AnswerFile:
    """The answers in ``path`` and the count of records without one; one ``DataError`` naming file and line on bad input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    suffix = path.suffix.lower()
    tally = Tally(str(path))
    if suffix in (".csv", ".tsv"):
        csv_answers(path, text, "\t" if suffix == ".tsv" else ",", schema, separator, tally)
    elif suffix in (".json", ".jsonl", ".ndjson"):
        json_answers(json_records(text, path), schema, tally)
    else:
        raise DataError(f"{path}: unknown answer format; give a .csv or .tsv table, or a .json / .jsonl export "
                        "of Label Studio, Argilla or Prodigy")
    found = tally.result()
    if found.records and not found.answers:
        raise DataError(f"{path}: {found.why_empty()}; nothing imported")
    if not found.records:
        raise DataError(f"{path}: no records; nothing imported")
    return found


def tool_of(record: Mapping[str, Any]) -> str | None:
    """Which tool's record this is (a key of ``_TOOLS``), from its shape; None if no known shape."""
    if prodigy.is_prodigy(record):
        return "prodigy"
    if "annotations" in record or isinstance(record.get("data"), dict):
        return "label-studio"
    if argilla.shape(record) is not None:
        return "argilla"
    if label_studio.is_min_row(record):
        return "label-studio-min"
    return None


def json_answers(records: list[tuple[str, Any]], schema: LabelSchema, tally: Tally) -> None:
    """Record the answers of JSON records, all of one tool, in ``tally``."""
    first: tuple[str, str] | None = None
    for where, record in records:
        expect(record, dict, where, "the record")
        tool = tool_of(record)
        if tool is None:
            keys = ", ".join(sorted(record)[:8]) or "none"
            raise DataError(f"{where}: a record of unknown shape (keys: {keys}); expected {EXPECTED}")
        if first is None:
            first = (tool, where)
        elif tool != first[0]:
            raise DataError(f"{where}: {_TOOLS[tool][0]} in a file of {_TOOLS[first[0]][1]} (the first at {first[1]})")
    tool = first[0] if first else None
    if tool == "prodigy":
        prodigy.prodigy_answers(records, schema, tally)
    elif tool == "label-studio-min":
        label_studio.min_answers(records, tally)
    else:
        for where, record in records:
            (label_studio.task_answer if tool == "label-studio" else argilla.record_answer)(record, where, tally)
