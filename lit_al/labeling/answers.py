"""A person's answers to a pending query, validated as a whole and then applied to the label state.

``apply_answers`` checks every answer before it changes anything: an unknown id, an
id that is neither in the pending batch nor labeled before, an unknown label or a
label that contradicts an earlier one (without ``overwrite``) raise one
``DataError`` naming the file and line, and the state is left as it was. Answers
equal to what the state already holds change nothing, so importing a file twice
imports nothing twice. The caller saves the state (one atomic write).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Sequence

from ..data.schema import LabelSchema
from ..data.state import INITIAL_ROUND, LabelRecord, LabelState, SkipRecord
from ..errors import DataError

PERSON = "person"


@dataclass(frozen=True)
class Answer:
    """One answer: class names (source names of the schema) or a skip mark, with who gave it and where it was read."""

    id: str
    labels: tuple[str, ...] | None
    skip: str | None = None
    annotator: str | None = None
    where: str = ""


@dataclass(frozen=True)
class ImportSummary:
    """What ``apply_answers`` changed: labels added, labels overwritten, skips recorded, answers already there."""

    added: int = 0
    overwritten: int = 0
    skipped: int = 0
    unchanged: int = 0
    pending_left: int = 0

    def line(self) -> str:
        return (f"{self.added} labeled, {self.overwritten} corrected, {self.skipped} skipped, "
                f"{self.unchanged} already recorded; {self.pending_left} of the batch still to label")


#: The longest annotator name accepted (a name, not a note).
MAX_NAME = 100
#: Unicode categories a name may not hold: control characters, lone surrogates, line and paragraph separators.
_NOT_IN_NAMES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def check_name(name: str, where: str, limit: int = MAX_NAME) -> str:
    """``name`` if it is a usable name (1 to ``limit`` printable characters, not blank); else one ``DataError`` line.

    A lone surrogate (what a terminal's undecodable bytes or a JSON ``"\\ud800"`` escape become)
    cannot be written as UTF-8, and a control character or line break would break the files
    that record the name: both are refused here, before anything is written.
    """
    if not name.strip():
        raise DataError(f"{where}: empty; give a name")
    if len(name) > limit:
        raise DataError(f"{where}: longer than {limit} characters")
    for position, char in enumerate(name, 1):
        if unicodedata.category(char) in _NOT_IN_NAMES:
            raise DataError(f"{where}: character {position} ({ascii(char)}) is not printable; "
                            "a name holds letters, digits, marks, symbols and spaces")
    return name


def now_utc() -> str:
    """The import time recorded with every answer (ISO 8601, UTC, seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _parse_labels(answer: Answer, schema: LabelSchema) -> tuple[str, ...]:
    assert answer.labels is not None
    names = tuple(answer.labels)
    if not names and not schema.multi_label:
        raise DataError(f"{answer.where}: empty label (give one of {list(schema.source_names)} or mark it skip)")
    if len(names) > 1 and not schema.multi_label:
        raise DataError(f"{answer.where}: {len(names)} labels {list(names)} in a single-label task")
    unknown = [name for name in names if name not in schema.source_names]
    if unknown:
        raise DataError(f"{answer.where}: label {unknown[0]!r} is not in the label schema {list(schema.source_names)}")
    return schema.model_names(names)


def apply_answers(
    state: LabelState,
    schema: LabelSchema,
    answers: Sequence[Answer],
    *,
    overwrite: bool = False,
    annotator: str | None = None,
    time: str | None = None,
    seed: bool = False,
    how_to_overwrite: str = "use --overwrite",
) -> ImportSummary:
    """Validate every answer against the state and the schema, then record them (see the module docstring).

    ``seed``: the answers are a person's seed labels, of the initial set (source ``seed``): any pool
    id may be answered, not only the pending batch's. ``how_to_overwrite``: how the caller
    lets an answer correct a label, as its refusal says it (an option, a keyword argument).
    """
    pending = state.pending
    pending_rows = set(pending.pool_indices) if pending is not None else set()
    # the round of the batch answered (see lit_al.data.state): a batch's labels carry the round that proposed it
    label_round = INITIAL_ROUND if seed else pending.round if pending is not None else state.completed_rounds
    source = "seed" if seed else PERSON
    index_of = {example_id: i for i, example_id in enumerate(state.ids)}
    time = time or now_utc()
    if annotator:  # a lone surrogate could not be saved, a line break would garble the files that record it
        check_name(annotator, "annotator")
    plan: dict[int, tuple[str, Answer, tuple[str, ...] | None]] = {}
    for answer in answers:
        index = index_of.get(answer.id)
        if index is None:
            raise DataError(f"{answer.where}: unknown id {answer.id!r} (not in the pool)")
        if index in plan:
            raise DataError(f"{answer.where}: id {answer.id!r} is answered twice in this file")
        earlier = state.records.get(index)
        if index not in pending_rows and earlier is None and not seed:
            raise DataError(f"{answer.where}: id {answer.id!r} is not in the pending batch"
                            + ("" if pending is not None else " (no batch is pending: run lit_al query first)"))
        if answer.skip is not None:
            if earlier is not None:
                raise DataError(f"{answer.where}: id {answer.id!r} is already labeled {list(earlier.labels)}; "
                                "a skip mark cannot replace a label")
            marked = state.skipped.get(index)  # the same mark again keeps its time: a re-import changes nothing
            plan[index] = ("same" if marked is not None and marked.reason == (answer.skip or "skip") else "skip", answer, None)
            continue
        names = _parse_labels(answer, schema)
        if earlier is None:
            plan[index] = ("add", answer, names)
        elif earlier.labels == names:
            plan[index] = ("same", answer, names)
        elif not overwrite:
            raise DataError(f"{answer.where}: id {answer.id!r} was labeled {list(earlier.labels)} before, now "
                            f"{list(names)}; {how_to_overwrite} to correct it")
        else:
            plan[index] = ("overwrite", answer, names)
    counts = {"add": 0, "overwrite": 0, "skip": 0, "same": 0}
    for index, (action, answer, names) in plan.items():
        counts[action] += 1
        who = answer.annotator or annotator
        if action == "add":
            state.skipped.pop(index, None)
            state.records[index] = LabelRecord(index, state.ids[index], label_round, source, names, who, time)
        elif action == "overwrite":
            state.records[index] = replace(state.records[index], labels=names, source=source, annotator=who, time=time)
        elif action == "skip":
            state.skipped[index] = SkipRecord(index, state.ids[index], label_round, answer.skip or "skip", who, time)
    left = len(state.open_pending())
    return ImportSummary(counts["add"], counts["overwrite"], counts["skip"], counts["same"], left)


def retract(state: LabelState, example_id: str) -> bool:
    """Undo a person's answer to a pending item (label or skip); True if there was one to undo."""
    pending = state.pending
    index = {example_id: i for i, example_id in enumerate(state.ids)}.get(example_id)
    if pending is None or index is None or index not in pending.pool_indices:
        return False
    record = state.records.get(index)
    if record is not None and record.source == PERSON and record.round == pending.round:
        del state.records[index]
        return True
    return state.skipped.pop(index, None) is not None
