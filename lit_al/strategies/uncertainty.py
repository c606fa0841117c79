"""Random and the probability-based uncertainty strategies (STRATEGIES.md §1.1–1.4)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..functional import uncertainty as U
from ..functional.ranking import top_k
from ..outputs.catalog import PROBS
from ..rows import take_rows
from .base import Strategy, top_scored
from .options import check_choice
from .registry import register_strategy


@register_strategy("random")
class RandomSampling(Strategy):
    """Uniform sampling without replacement from the unlabeled pool (§1.1).

    Implemented as IBM's "top-k of U(0,1) scores": each unlabeled index gets an
    independent uniform score from this strategy's own seeded generator.
    """

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        scores = rng.random(unlabeled.size)
        return unlabeled[top_k(scores, budget, index=unlabeled)]


class _ProbabilityScore(Strategy):
    """Top-k of a score computed from ``probs`` alone (higher = queried first unless ``largest`` is False)."""

    needs = frozenset({PROBS})
    requires_trained_model = True
    largest: bool = True

    def score(self, probs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select(self, outputs: Mapping[str, np.ndarray], labeled, unlabeled, budget, rng):
        scores = self.score(take_rows(outputs[PROBS], unlabeled))
        return top_scored(scores, unlabeled, budget, largest=self.largest)


@register_strategy("least_confidence")
class LeastConfidence(_ProbabilityScore):
    """Least confidence ``1 - max_c p_c`` (IBM, §1.2).

    Multi-label: ``(1/J) sum_j (1 - max(p_j, 1 - p_j))``; ``multi_label_reduce='max'``
    takes the most uncertain label instead of the mean.
    """

    def __init__(self, *, multi_label: bool = False, multi_label_reduce: str = "mean") -> None:
        super().__init__(multi_label=multi_label)
        self.multi_label_reduce = check_choice(
            "least_confidence", "multi_label_reduce", multi_label_reduce, ("mean", "max")
        )

    def score(self, probs):
        if self.multi_label:
            return U.multilabel_least_confidence(probs, self.multi_label_reduce)
        return U.least_confidence(probs)


@register_strategy("margin")
class Margin(_ProbabilityScore):
    """Smallest margin ``p_(1) - p_(2)`` between the two most probable classes (MII, §1.3).

    Multi-label: ``min_j |2 p_j - 1|`` (``multi_label_reduce='min'``) or the mean over j.
    Ties break by the lower pool index.
    """

    largest = False

    def __init__(self, *, multi_label: bool = False, multi_label_reduce: str = "min") -> None:
        super().__init__(multi_label=multi_label)
        self.multi_label_reduce = check_choice("margin", "multi_label_reduce", multi_label_reduce, ("min", "mean"))

    def score(self, probs):
        if self.multi_label:
            return U.multilabel_margin(probs, self.multi_label_reduce)
        return U.margin(probs)


@register_strategy("entropy")
class Entropy(_ProbabilityScore):
    """Predictive entropy ``H(p) = -sum_c p_c ln p_c`` (ALPS, §1.4).

    Multi-label: the sum of binary entropies ``sum_j H_b(p_j)``.
    """

    def score(self, probs):
        return U.multilabel_entropy(probs) if self.multi_label else U.entropy(probs)
