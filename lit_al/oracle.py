"""Who answers a query: the dataset's gold labels at once, or a person later.

The loop's ``commit`` phase asks ``SimulatedOracle.annotate`` for the labels of the
pending batch. A ``PersonOracle`` has no answers to give at that moment: a person's
answers reach the label state through ``lit_al label`` (or the Python session, or the
labeling page), and ``commit`` records the round once some have arrived.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Oracle(ABC):
    #: Recorded in the label state for every label this oracle gives.
    source: str = "oracle"
    #: Whether ``annotate`` answers at once (a simulation) or the answers arrive later (a person).
    answers_at_once: bool = True

    @abstractmethod
    def annotate(self, pool_indices: np.ndarray, ids: Sequence[str]) -> list[tuple[str, ...]]:
        """Return the class names of each queried example (empty tuple: no label, multi-label)."""


class SimulatedOracle(Oracle):
    """Answers with the gold labels of the pool (simulated annotation on labeled data)."""

    source = "oracle"

    def __init__(self, gold: Sequence[tuple[str, ...]]) -> None:
        self.gold = list(gold)

    def annotate(self, pool_indices: np.ndarray, ids: Sequence[str]) -> list[tuple[str, ...]]:
        return [self.gold[int(i)] for i in pool_indices]


class PersonOracle(Oracle):
    """A person: the batch is written to files for them, and their answers are imported later."""

    source = "person"
    answers_at_once = False

    def annotate(self, pool_indices: np.ndarray, ids: Sequence[str]) -> list[tuple[str, ...]]:
        raise RuntimeError("a person's answers arrive through lit_al label, not annotate()")
