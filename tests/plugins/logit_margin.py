"""A per-example output and the strategy that selects by it, defined outside lit_al (the README's example).

``logit_margin``: ``z_(1) - z_(r)``, the largest logit minus the r-th largest
(``rival`` r = 2: the runner-up, as margin sampling takes it, but on logits). The
strategy picks the smallest margins first.
"""

from __future__ import annotations

from dataclasses import dataclass

from lit_al.functional.ranking import top_k
from lit_al.outputs import Output
from lit_al.strategies import Selection, Strategy


@dataclass(frozen=True)
class MarginOptions:
    """``rival``: which largest logit the top one is compared with (2 = the runner-up)."""

    rival: int = 2

    def __post_init__(self) -> None:
        if self.rival < 2:
            raise ValueError(f"rival must be at least 2, got {self.rival}")


class LogitMargin(Output):
    """(B,) the largest logit minus the ``rival``-th largest."""

    name = "logit_margin"
    row_shape = "()"
    options = MarginOptions

    def compute(self, module, batch, request, cache):
        rival = request.options.of(self.name).rival
        top = cache.logits.float().topk(rival, dim=-1).values
        return top[:, 0] - top[:, -1]


class SmallestLogitMargin(Strategy):
    """The ``budget`` unlabeled examples with the smallest logit margin, smallest first."""

    needs = frozenset({LogitMargin.name})
    requires_trained_model = True
    supports_multi_label = False

    def __init__(self, *, multi_label: bool = False, rival: int = 2) -> None:
        super().__init__(multi_label=multi_label)
        self.rival = rival

    def prediction_options(self):
        return {LogitMargin.name: {"rival": self.rival}}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        margin = outputs[LogitMargin.name][unlabeled]
        best = top_k(margin, budget, largest=False, index=unlabeled)
        return Selection(unlabeled[best], margin[best])
