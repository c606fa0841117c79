"""What every answer reader shares: records with their line, strict type checks, and the tally of a file.

A tool's export is a list of records; each record gives one answer (a label or a skip), or
none, for a reason worth telling (a draft, a pending record, a task nobody annotated). The
``Tally`` collects both, so a file that holds records and no answer can say why, and so
items on which several annotators disagreed are counted and named.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import DataError
from .answers import Answer

#: Plurals of the reasons a record holds no answer (the others read the same in both numbers).
_PLURALS = {"record": "records", "item": "items", "draft": "drafts", "task nobody annotated": "tasks nobody annotated", "row left empty": "rows left empty",
            "record without an answer": "records without an answer"}
_JSON_SPACE = " \t\n\r"


def counted(number: int, noun: str) -> str:
    """``"1 draft"``, ``"9 drafts"``."""
    return f"{number} {noun if number == 1 else _PLURALS.get(noun, noun)}"


@dataclass(frozen=True)
class AnswerFile:
    """The answers read from one file (or one API response), and what was read without an answer.

    ``unanswered`` counts records that hold no label and no skip, by reason (``draft``,
    ``pending``, ...); ``disagreements`` are the ids of items whose annotators gave different
    answers (the latest submitted one was taken).
    """

    source: str
    answers: tuple[Answer, ...]
    records: int
    unanswered: Mapping[str, int] = field(default_factory=dict)
    disagreements: tuple[str, ...] = ()

    def why_empty(self) -> str:
        """Why no answer came from records that were there: ``"12 records, none answered: 9 drafts, 3 pending"``."""
        reasons = ", ".join(counted(n, reason) for reason, n in self.unanswered.items())
        return f"{counted(self.records, 'record')}, none answered" + (f": {reasons}" if reasons else "")

    def notes(self) -> list[str]:
        """Lines worth a person's attention besides the import summary."""
        lines = []
        if self.unanswered:
            lines.append("not imported: " + ", ".join(counted(n, reason) for reason, n in self.unanswered.items()))
        if self.disagreements:
            shown = ", ".join(self.disagreements[:5]) + (", ..." if len(self.disagreements) > 5 else "")
            lines.append(f"{counted(len(self.disagreements), 'item')} with disagreeing annotators, the latest "
                         f"answer taken: {shown}")
        return lines


class Tally:
    """Collects the outcome of every record of one source, in order."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.records = 0
        self.answers: list[Answer] = []
        self.unanswered: Counter[str] = Counter()
        self.disagreements: list[str] = []

    def answer(self, answer: Answer, disagreed: bool = False) -> None:
        self.records += 1
        self.answers.append(answer)
        if disagreed:
            self.disagreements.append(answer.id)

    def none(self, reason: str) -> None:
        self.records += 1
        self.unanswered[reason] += 1

    def result(self) -> AnswerFile:
        return AnswerFile(self.source, tuple(self.answers), self.records, dict(self.unanswered), tuple(self.disagreements))


# ------------------------------------------------------------------ records with their lines
def json_records(text: str, path: Path) -> list[tuple[str, Any]]:
    """Each record of a JSON list (``[...]``) or of JSON Lines, with where it starts (``"FILE: line N"``)."""
    stripped = text.lstrip(_JSON_SPACE)
    if stripped.startswith("["):
        return _json_list(text, path)
    if not stripped:
        raise DataError(f"{path}: the file is empty")
    return _json_lines(text, path)


def _json_list(text: str, path: Path) -> list[tuple[str, Any]]:
    try:
        json.loads(text)  # the whole first: a syntax error is reported with its own line
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    decoder = json.JSONDecoder()
    found: list[tuple[str, Any]] = []
    line, counted_to = 1, 0
    at = _skip_space(text, text.index("[") + 1)
    while text[at] != "]":
        line += text.count("\n", counted_to, at)
        counted_to = at
        value, at = decoder.raw_decode(text, at)
        found.append((f"{path}: line {line}", value))
        at = _skip_space(text, at)
        if text[at] == ",":
            at = _skip_space(text, at + 1)
    return found


def _skip_space(text: str, at: int) -> int:
    while text[at] in _JSON_SPACE:
        at += 1
    return at


def _json_lines(text: str, path: Path) -> list[tuple[str, Any]]:
    found = []
    for number, line in enumerate(text.split("\n"), start=1):  # JSON Lines ends lines at \n only (not U+2028)
        if not line.strip(_JSON_SPACE):
            continue
        try:
            found.append((f"{path}: line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            hint = " (a .json file must be one JSON list, or one JSON object per line)" if number == 1 else ""
            raise DataError(f"{path}: line {number}: not valid JSON ({exc.msg}){hint}") from None
    return found


# ------------------------------------------------------------------ strict types
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string"}


def kind_of(value: Any) -> str:
    """How JSON would call ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def expect(value: Any, kind: type, where: str, what: str) -> Any:
    """``value`` if it is of JSON type ``kind``; else one ``DataError`` saying what was expected."""
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DataError(f"{where}: {what} is {kind_of(value)}; expected {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value


def expect_names(value: Any, where: str, what: str) -> tuple[str, ...]:
    """A list of class names (strings); a bare string is refused, never split into letters."""
    expect(value, list, where, what)
    for item in value:
        if not isinstance(item, str):
            raise DataError(f"{where}: {what} holds {kind_of(item)}; expected class names (strings)")
    return tuple(value)


def example_id(value: Any, where: str, what: str) -> str:
    """An example id as text: a non-empty string or an integer."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise DataError(f"{where}: {what} is {kind_of(value)}; expected the example id lit_al wrote")
    return str(value).strip()


def annotator(value: Any) -> str | None:
    """Who answered, from a user object (email, username, id) or a plain name or number."""
    if isinstance(value, dict):
        value = value.get("email") or value.get("username") or value.get("id")
    return None if value in (None, "") or isinstance(value, (dict, list)) else str(value)


def latest(items: Iterable[tuple[int, Mapping[str, Any]]], *time_keys: str) -> tuple[int, Mapping[str, Any]]:
    """The last ``(position, item)`` by its first present ISO time among ``time_keys``, then by position."""
    def key(pair: tuple[int, Mapping[str, Any]]) -> tuple[str, int]:
        position, item = pair
        stamp = next((item[k] for k in time_keys if item.get(k) not in (None, "")), "")
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):  # Prodigy: seconds since 1970
            stamp = f"{float(stamp):020.6f}"
        return str(stamp), position

    return max(items, key=key)
