"""Prodigy's answers: the JSON lines ``prodigy db-out`` writes, for choice and binary tasks.

- ``textcat.manual`` / the choice interface (the task has ``options``): ``answer: accept``
  takes the ids in ``accept`` (a list; empty is "no label applies" for multi-label);
- binary (``textcat.teach``, a ``label`` and no ``options``): ``accept`` is that label,
  ``reject`` the other class of a two-class single-label task, else a skip;
- ``answer: ignore`` is a skip (``not sure``).

The id is the task's ``id`` (kept by Prodigy from ``to_label.jsonl``), else ``meta.id``.
With several annotators (sessions) an item has several lines: the latest ``_timestamp``
among accept/reject answers wins and disagreements are counted; an item only ignored is a
skip. A line of ``to_label.jsonl`` without an ``answer`` is counted as not answered.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..data.schema import LabelSchema
from ..errors import DataError
from .answers import Answer
from .names import ID_KEY
from .records import Tally, annotator, example_id, expect, expect_names, kind_of, latest

ANSWERS = ("accept", "reject", "ignore")


def is_prodigy(record: Mapping[str, Any]) -> bool:
    """A Prodigy task, answered (``answer``) or not (``options`` and ``accept``, as in ``to_label.jsonl``)."""
    return "answer" in record or ("options" in record and "accept" in record)


def prodigy_answers(records: Sequence[tuple[str, Mapping[str, Any]]], schema: LabelSchema, tally: Tally) -> None:
    """Record the answers of Prodigy lines in ``tally``, one answer per example id."""
    groups: dict[str, list[tuple[int, Mapping[str, Any], Answer]]] = {}
    for position, (where, record) in enumerate(records):
        item = _id(record, where)
        if "answer" not in record:
            groups.setdefault(item, [])
            continue
        groups.setdefault(item, []).append((position, record, _answer(record, item, schema, where)))
    for item, group in groups.items():
        if not group:
            tally.none("record without an answer")
            continue
        decided = [(p, r) for p, r, a in group if a.skip is None] or [(p, r) for p, r, _ in group]
        position, _ = latest(decided, "_timestamp")
        chosen = next(a for p, _, a in group if p == position)
        labels = {tuple(sorted(a.labels)) for _, _, a in group if a.labels is not None}
        tally.answer(chosen, len(labels) > 1)


def _id(record: Mapping[str, Any], where: str) -> str:
    meta = record.get("meta")
    for value, what in ((record.get("id"), "id"), (record.get(ID_KEY), ID_KEY)):
        if value not in (None, ""):
            return example_id(value, where, what)
    if isinstance(meta, dict) and meta.get("id") not in (None, ""):
        return example_id(meta["id"], where, "meta.id")
    raise DataError(f"{where}: a Prodigy task with no id (nor meta.id); annotate the tasks of to_label.jsonl")


def _answer(record: Mapping[str, Any], item: str, schema: LabelSchema, where: str) -> Answer:
    verdict = record["answer"]
    who = annotator(record.get("_annotator_id") or record.get("_session_id"))
    if verdict == "ignore":
        return Answer(item, None, "not sure", who, where)
    if verdict not in ANSWERS:
        raise DataError(f"{where}: answer is {kind_of(verdict)}; expected accept, reject or ignore")
    choice = "options" in record
    label = None if choice else expect(record.get("label"), str, where, "label (a binary task)")
    if verdict == "accept":
        return Answer(item, expect_names(record.get("accept"), where, "accept") if choice else (label,), None, who, where)
    others = [name for name in schema.source_names if name != label]
    if not choice and not schema.multi_label and len(others) == 1:
        return Answer(item, (others[0],), None, who, where)
    return Answer(item, None, "rejected", who, where)
