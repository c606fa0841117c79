"""The persisted label state: which pool examples are labeled, when, how and by whom.

One JSON file (``state.json`` in the run directory) is the single source of
truth for labels and progress. It is rewritten atomically after every change,
so a crash at any moment leaves the last complete state on disk.

Round numbers (one numbering for the whole run): round r's model, trained on every
label so far, proposes batch r (``rounds/round_r/``); the answers to batch r are
labels of round r; the initial set's labels, given before any model, are round -1.
So round r's model trains on the labels of rounds < r. Version 1 files (lit_al
before this numbering) recorded an answer to batch r as round r + 1 and the initial
set as round 0; ``read_state_json`` converts them on read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError
from ..atomic import atomic_write_json

#: Where a label came from.
SOURCES = ("seed", "weak_negative", "oracle", "person")
#: The round of the initial set's labels (seed, weak negatives, a seed labels file): before round 0.
INITIAL_ROUND = -1
#: 2: labels and skip marks carry the round of the batch they answer (1: that round + 1).
STATE_VERSION = 2


def _floats_out(values: Sequence[float]) -> list[float | None]:
    return [None if v is None or np.isnan(v) else float(v) for v in values]


def _floats_in(values: Sequence[float | None]) -> tuple[float, ...]:
    return tuple(float("nan") if v is None else float(v) for v in values)


@dataclass(frozen=True)
class PendingQuery:
    """A proposed batch waiting for its labels.

    ``round``: the round whose model proposed it (its answers are labels of that round, too);
    ``pool_indices``: the picks, best first, with the strategy's ``scores``;
    ``suggestions``: the model's predicted class names per pick (empty before any
    training) and their ``confidence``.
    """

    round: int
    pool_indices: tuple[int, ...]
    scores: tuple[float, ...]
    strategy: str
    suggestions: tuple[tuple[str, ...], ...] = ()
    confidence: tuple[float, ...] = ()

    def to_json(self) -> dict:
        return {"round": self.round, "pool_indices": list(self.pool_indices), "scores": _floats_out(self.scores),
                "strategy": self.strategy, "suggestions": [list(s) for s in self.suggestions],
                "confidence": _floats_out(self.confidence)}

    @classmethod
    def from_json(cls, payload: dict) -> "PendingQuery":
        return cls(int(payload["round"]), tuple(int(i) for i in payload["pool_indices"]), _floats_in(payload["scores"]),
                   str(payload["strategy"]), tuple(tuple(s) for s in payload.get("suggestions", ())),
                   _floats_in(payload.get("confidence", ())))


@dataclass(frozen=True)
class LabelRecord:
    """One labeled example: its class names (one for single-label), when, from where and from whom.

    ``round``: the round of the batch it answered (``INITIAL_ROUND`` for the initial set). ``time`` is an ISO-8601 UTC timestamp of when a person's answer was imported.
    """

    pool_index: int
    id: str
    round: int
    source: str
    labels: tuple[str, ...]
    annotator: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class SkipRecord:
    """An item a person marked skip / not sure: recorded, and not proposed again unless asked."""

    pool_index: int
    id: str
    round: int
    reason: str
    annotator: str | None = None
    time: str | None = None


class LabelState:
    """Labels of the pool, keyed by pool index (``ids[pool_index]`` is the example id)."""

    def __init__(self, ids: Sequence[str], path: str | Path | None = None) -> None:
        self.ids = list(ids)
        self.path = Path(path) if path is not None else None
        self.records: dict[int, LabelRecord] = {}
        self.completed_rounds = 0
        #: True once the loop has run its last round.
        self.finished = False
        #: The proposed batch of round ``completed_rounds`` waiting for its labels (``propose`` → ``commit``).
        self.pending: PendingQuery | None = None
        #: Items a person skipped (pool index -> record); excluded from later queries by default.
        self.skipped: dict[int, SkipRecord] = {}
        #: Which model proposed the batch of each round (round -> ``{"round", "labeled", "time", ...}``):
        #: that model's round (the batch's), how many labels it saw, when it was trained; written for a person's batches.
        self.proposed_by: dict[int, dict] = {}
        #: What strategies fixed once for the run, by strategy name (``Strategy.run_record``, e.g. ProbCover's δ).
        self.strategy_records: dict[str, dict] = {}

    @property
    def n_pool(self) -> int:
        return len(self.ids)

    def is_labeled(self) -> np.ndarray:
        mask = np.zeros(self.n_pool, dtype=bool)
        if self.records:
            mask[np.fromiter(self.records.keys(), dtype=np.int64)] = True
        return mask

    def labeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.is_labeled())

    def unlabeled_indices(self, include_skipped: bool = True) -> np.ndarray:
        """Pool indices without a label (``include_skipped=False``: also without a skip mark)."""
        mask = ~self.is_labeled()
        if not include_skipped and self.skipped:
            mask[np.fromiter(self.skipped.keys(), dtype=np.int64)] = False
        return np.flatnonzero(mask)

    def is_answered(self, pool_index: int) -> bool:
        """Whether a person (or an oracle) answered this example: a label, or a skip mark."""
        return pool_index in self.records or pool_index in self.skipped

    def open_pending(self) -> list[int]:
        """The pending batch's pool indices still without an answer, in proposal order."""
        if self.pending is None:
            return []
        return [i for i in self.pending.pool_indices if not self.is_answered(i)]

    def add(self, pool_indices: Iterable[int], labels: Sequence[Sequence[str]], round: int, source: str,
            annotator: str | None = None, time: str | None = None) -> None:
        """Record labels (class names) for unlabeled pool indices; does not save."""
        if source not in SOURCES:
            raise ValueError(f"unknown label source {source!r}")
        pool_indices = [int(i) for i in pool_indices]
        if len(pool_indices) != len(labels):
            raise ValueError("one label entry per pool index is required")
        for index, names in zip(pool_indices, labels):
            if not 0 <= index < self.n_pool:
                raise DataError(f"pool index {index} is outside the pool (size {self.n_pool})")
            if index in self.records:
                raise DataError(f"example {self.ids[index]!r} (pool index {index}) is already labeled")
            self.records[index] = LabelRecord(index, self.ids[index], int(round), source, tuple(names), annotator, time)

    def drop_after(self, round: int) -> list[LabelRecord]:
        """Remove records of rounds after ``round`` that did not come from a person; return them.

        Used when resuming a round that was interrupted between its query and its
        checkpoint (``drop_after(completed_rounds - 1)``): labels a person gave are never dropped.
        """
        dropped = [r for r in self.records.values() if r.round > round and r.source != "person"]
        for record in dropped:
            del self.records[record.pool_index]
        return dropped

    # ------------------------------------------------------------- persistence
    def to_json(self) -> dict:
        extra = {"proposed_by": {str(r): self.proposed_by[r] for r in sorted(self.proposed_by)}} if self.proposed_by else {}
        return {
            "version": STATE_VERSION,
            "completed_rounds": self.completed_rounds,
            "finished": self.finished,
            "n_pool": self.n_pool,
            "pending": self.pending.to_json() if self.pending is not None else None,
            "skipped": [asdict(r) for r in sorted(self.skipped.values(), key=lambda r: (r.round, r.pool_index))],
            **({"strategy_records": self.strategy_records} if self.strategy_records else {}),
            "records": [
                _record_json(r) for r in sorted(self.records.values(), key=lambda r: (r.round, r.pool_index))
            ],
            **extra,
        }

    def save(self) -> None:
        if self.path is None:
            return
        atomic_write_json(self.path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, ids: Sequence[str]) -> "LabelState":
        path = Path(path)
        payload = read_state_json(path)
        state = cls(ids, path)
        if payload.get("n_pool") != len(ids):
            raise DataError(f"{path}: the label state is for a pool of {payload.get('n_pool')} examples, the data has {len(ids)}")
        state.completed_rounds = int(payload.get("completed_rounds", 0))
        state.finished = bool(payload.get("finished", False))
        if payload.get("pending"):
            state.pending = PendingQuery.from_json(payload["pending"])
        state.strategy_records = {str(k): dict(v) for k, v in (payload.get("strategy_records") or {}).items()}
        for row in payload.get("records", []):
            index = int(row["pool_index"])
            if not 0 <= index < len(ids) or ids[index] != row["id"]:
                raise DataError(f"{path}: record for id {row['id']!r} does not match the pool (pool index {index})")
            state.records[index] = LabelRecord(index, row["id"], int(row["round"]), row["source"], tuple(row["labels"]),
                                               row.get("annotator"), row.get("time"))
        for row in payload.get("skipped", []):
            index = int(row["pool_index"])
            if not 0 <= index < len(ids) or ids[index] != row["id"]:
                raise DataError(f"{path}: skip mark for id {row['id']!r} does not match the pool (pool index {index})")
            state.skipped[index] = SkipRecord(**{**row, "pool_index": index})
        state.proposed_by = {int(r): dict(info) for r, info in (payload.get("proposed_by") or {}).items()}
        return state


def read_state_json(path: str | Path) -> dict:
    """``state.json`` as a dict in the current version's round numbering (older versions converted)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the label state: {exc}") from None
    if not isinstance(payload, dict):
        raise DataError(f"{path}: cannot read the label state: expected a JSON object, found {type(payload).__name__}")
    version = payload.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= STATE_VERSION:
        raise DataError(f"{path}: label state version {version!r} is not one this lit_al reads "
                        f"(1 to {STATE_VERSION}); a newer lit_al wrote it?")
    if version == 1:
        payload = _from_version_1(payload)
    return payload


def _from_version_1(payload: dict) -> dict:
    """Version 1 numbered a label by the first round whose model trained on it: an answer to batch r
    was round r + 1, the initial set round 0; and an overlapped batch r's ``proposed_by`` named the
    round whose seeds trained its model (r - 1). Now: the batch's round, the initial set -1, r."""
    def shifted(rows):
        return [{**row, "round": row["round"] - 1} if isinstance(row, dict) and isinstance(row.get("round"), int) else row
                for row in rows or []]

    proposed_by = {key: ({**info, "round": int(key)} if isinstance(info, dict) else info)
                   for key, info in (payload.get("proposed_by") or {}).items()}
    return {**payload, "version": STATE_VERSION, "records": shifted(payload.get("records")),
            "skipped": shifted(payload.get("skipped")), **({"proposed_by": proposed_by} if proposed_by else {})}


def _record_json(record: LabelRecord) -> dict:
    """A record as JSON; the person fields only when set, so simulated runs' state files stay as they were."""
    payload = {**asdict(record), "labels": list(record.labels)}
    for key in ("annotator", "time"):
        if payload[key] is None:
            del payload[key]
    return payload
