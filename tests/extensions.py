"""Subclasses used by the extension tests, named in configs by ``class_path`` (tests/ is on sys.path)."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from lit_al.data import ActiveDataModule
from lit_al.model import ClassificationHead, TextClassifier
from lit_al.strategies import Strategy, register_strategy, top_scored


class NormedHead(ClassificationHead):
    """Layer-normalised sentence representation, then dropout and a linear layer."""

    def __init__(self, in_dim: int, num_labels: int, dropout: float) -> None:
        super().__init__(in_dim, num_labels, dropout)
        self.norm = nn.LayerNorm(in_dim)

    def features(self, representation: torch.Tensor) -> torch.Tensor:
        return self.norm(representation)


class NormedHeadClassifier(TextClassifier):
    """A TextClassifier with ``NormedHead``; counts its instances so a test can see it was used."""

    instances = 0

    def __init__(self, head_dropout: float = 0.2, **kwargs) -> None:
        kwargs["head"] = "lit_al"  # lit_al's own head, replaced below (the native head has no `head`)
        super().__init__(**kwargs)
        self.head = NormedHead(self.encoder.config.hidden_size, self.hparams.num_labels, head_dropout)
        NormedHeadClassifier.instances += 1


class TripleBarData(ActiveDataModule):
    """Reads ``ID ||| LABEL ||| TEXT`` lines (no header), a format the stock readers do not know."""

    def read_split(self, path: str) -> pd.DataFrame:
        with open(path, encoding="utf-8") as handle:
            rows = [(n, line.rstrip("\n").split(" ||| ")) for n, line in enumerate(handle, start=1) if line.strip()]
        frame = pd.DataFrame([parts for _, parts in rows], columns=["id", "label", "text"], dtype=object)
        frame.index = [n for n, _ in rows]
        return frame

    def position_unit(self, path: str) -> str:
        return "line"


@register_strategy("max_prob_gap")
class MaxProbGap(Strategy):
    """Score = p_(1) - p_(C), smaller first (the README's "Adding a strategy" example)."""

    needs = frozenset({"probs"})
    requires_trained_model = True

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        probs = outputs["probs"][unlabeled]
        gap = probs.max(1) - probs.min(1)
        return top_scored(gap, unlabeled, budget, largest=False)
