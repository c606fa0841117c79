"""The persisted label state: which pool examples are labeled, when, how and by whom.

One JSON file (``state.json`` in the run directory) is the single source of
truth for labels and progress. It is rewritten atomically after every change,
so a crash at any moment leaves the last complete state on disk.
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
STATE_VERSION = 1


@dataclass(frozen=True)
class LabelRecord:
    pool_index: int
    id: str
    round: int
    source: str
    labels: tuple[str, ...]  # class names of the model (one name for single-label)


class LabelState:
    """Labels of the pool, keyed by pool index (``ids[pool_index]`` is the example id)."""

    def __init__(self, ids: Sequence[str], path: str | Path | None = None) -> None:
        self.ids = list(ids)
        self.path = Path(path) if path is not None else None
        self.records: dict[int, LabelRecord] = {}
        self.completed_rounds = 0
        #: True once the loop has run its last round.
        self.finished = False

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

    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.is_labeled())

    def add(self, pool_indices: Iterable[int], labels: Sequence[Sequence[str]], round: int, source: str) -> None:
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
            self.records[index] = LabelRecord(index, self.ids[index], int(round), source, tuple(names))

    def drop_after(self, round: int) -> list[LabelRecord]:
        """Remove records of rounds after ``round`` that came from a simulated oracle; return them.

        Used when resuming a round that was interrupted between its query and its
        checkpoint: labels a person gave are never dropped.
        """
        dropped = [r for r in self.records.values() if r.round > round and r.source != "person"]
        for record in dropped:
            del self.records[record.pool_index]
        return dropped

    # ------------------------------------------------------------- persistence
    def to_json(self) -> dict:
        return {
            "version": STATE_VERSION,
            "completed_rounds": self.completed_rounds,
            "finished": self.finished,
            "n_pool": self.n_pool,
            "records": [
                {**asdict(r), "labels": list(r.labels)} for r in sorted(self.records.values(), key=lambda r: (r.round, r.pool_index))
            ],
        }

    def save(self) -> None:
        if self.path is None:
            return
        atomic_write_json(self.path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, ids: Sequence[str]) -> "LabelState":
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read the label state: {exc}") from None
        state = cls(ids, path)
        if payload.get("n_pool") != len(ids):
            raise DataError(f"{path}: the label state is for a pool of {payload.get('n_pool')} examples, the data has {len(ids)}")
        state.completed_rounds = int(payload.get("completed_rounds", 0))
        state.finished = bool(payload.get("finished", False))
        for row in payload.get("records", []):
            index = int(row["pool_index"])
            if not 0 <= index < len(ids) or ids[index] != row["id"]:
                raise DataError(f"{path}: record for id {row['id']!r} does not match the pool (pool index {index})")
            state.records[index] = LabelRecord(index, row["id"], int(row["round"]), row["source"], tuple(row["labels"]))
        return state
