"""Who answers a query: the dataset's gold labels now, a person later.

The loop only calls ``annotate``; a human oracle (a file a person fills in, or a
page) implements the same method and returns ``source = "person"``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Oracle(ABC):
    #: Recorded in the label state for every label this oracle gives.
    source: str = "oracle"

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
