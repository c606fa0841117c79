"""Answers in a table: lit_al's own ``to_label.csv`` (or any ``id,label`` CSV/TSV) and Label Studio's CSV/TSV export.

lit_al's table: ``id`` and ``label`` (or ``labels``) columns, optional ``skip`` (a reason:
``skip``, ``not sure``, ...) and ``annotator``. A row with neither label nor skip stays
pending. Multi-label: names joined by the data's ``label_separator``, ``[]`` for none.

Label Studio's CSV/TSV export is recognised by its ``annotation_id`` or ``lit_al_id``
column and read like its JSON-MIN export (``label_studio.min_answers``): one row per
annotation, the id from ``lit_al_id`` (``id`` there is Label Studio's task number).

Line numbers are the lines an editor shows (a text spanning three lines takes three), the
header being line 1. Fields of any size are read (Python's ``csv`` stops at 128 KiB by default).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from ..data.schema import LabelSchema
from ..errors import DataError
from .answers import Answer
from .label_studio import min_answers
from .names import EMPTY_SET, ID_KEY, QUESTION
from .records import Tally

SKIP_VALUES = {"skip", "skipped", "not sure", "unsure", "?", "x", "yes", "true", "1"}
#: Larger than any text; the limit is process-wide in Python's csv module and only ever raised here.
_FIELD_LIMIT = 2**31 - 1


def rows_with_lines(text: str, delimiter: str, path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(first line of the row, cells)`` for every row of a CSV/TSV text; a malformed row is one ``DataError``."""
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}: line {line}: cannot be read as {'TSV' if delimiter == chr(9) else 'CSV'} ({exc})") from None
        yield line, row
        line = reader.line_num + 1


def csv_answers(path: Path, text: str, delimiter: str, schema: LabelSchema, separator: str, tally: Tally) -> None:
    """Record every row's answer (or why it has none) in ``tally``."""
    rows = rows_with_lines(text, delimiter, path)
    _, header = next(rows, (1, []))
    header = [h.strip() for h in header]
    if "annotation_id" in header or ID_KEY in header:
        return _label_studio_rows(path, header, rows, tally)
    label_column = "label" if "label" in header else "labels" if "labels" in header else None
    if "id" not in header or label_column is None:
        raise DataError(f"{path}: line 1: needs the columns id and label; found {header}")
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: line {line}"
        if len(row) > len(header):
            raise DataError(f"{where}: {len(row)} fields for {len(header)} columns")
        answer = _row_answer(dict(zip(header, row + [""] * (len(header) - len(row)))), label_column, schema,
                             separator, where)
        if answer is None:
            tally.none("row left empty")
        else:
            tally.answer(answer)


def _row_answer(cells: dict[str, str], label_column: str, schema: LabelSchema, separator: str,
                where: str) -> Answer | None:
    example_id = cells["id"].strip()
    if not example_id:
        raise DataError(f"{where}: empty id")
    label = cells[label_column].strip()
    skip = cells.get("skip", "").strip()
    annotator = cells.get("annotator", "").strip() or None
    if skip and label:
        raise DataError(f"{where}: both a label and a skip mark for id {example_id!r}")
    if skip:
        if skip.lower() not in SKIP_VALUES:
            raise DataError(f"{where}: skip mark {skip!r}; write one of {sorted(SKIP_VALUES)} or leave it empty")
        return Answer(example_id, None, skip.lower(), annotator, where)
    if label:
        return Answer(example_id, _split(label, schema, separator), None, annotator, where)
    return None


def _split(raw: str, schema: LabelSchema, separator: str) -> tuple[str, ...]:
    if schema.multi_label:
        return () if raw == EMPTY_SET else tuple(part.strip() for part in raw.split(separator) if part.strip())
    return (raw,)


def _label_studio_rows(path: Path, header: list[str], rows: Iterator[tuple[int, list[str]]], tally: Tally) -> None:
    if QUESTION not in header:
        raise DataError(f"{path}: line 1: a Label Studio export without a {QUESTION!r} column (found {header}); "
                        f"label with lit_al's label_studio_config.xml, whose Choices control is named {QUESTION!r}")
    records: list[tuple[str, dict[str, Any]]] = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}: line {line}"
        if len(row) != len(header):
            raise DataError(f"{where}: {len(row)} fields for {len(header)} columns")
        record: dict[str, Any] = dict(zip(header, row))
        value = record.get(QUESTION, "").strip()
        if value.startswith("{"):  # several choices: the converter writes {"choices": [...]}
            try:
                record[QUESTION] = json.loads(value)
            except json.JSONDecodeError:
                raise DataError(f"{where}: the {QUESTION} cell {value[:40]!r} is not valid JSON") from None
        records.append((where, record))
    min_answers(records, tally)
