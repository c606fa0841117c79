"""Small Lightning callbacks used by the loop."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl
import torch

log = logging.getLogger(__name__)


class KeepBestEpoch(pl.Callback):
    """Keep the weights of the best validation epoch in memory and restore them when fit ends.

    The IBM study keeps the checkpoint with the best dev metric across epochs;
    holding one CPU copy of the state dict avoids writing a checkpoint per round.
    """

    def __init__(self, monitor: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError("mode must be 'max' or 'min'")
        self.monitor = monitor
        self.mode = mode
        self.best_score = -math.inf if mode == "max" else math.inf
        self.best_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            available = sorted(k for k in trainer.callback_metrics if k.startswith("val_"))
            raise KeyError(f"loop.monitor {self.monitor!r} was not logged; validation logs {available}")
        score = float(value)
        better = score > self.best_score if self.mode == "max" else score < self.best_score
        if better or self.best_epoch is None:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._best_state is not None:
            pl_module.load_state_dict(self._best_state)
            log.info("restored epoch %s (%s = %.4f)", self.best_epoch, self.monitor, self.best_score)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}


class LogEpochs(pl.Callback):
    """One log line per training epoch: the labeling page shows a running round's progress from it."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            log.info("epoch %d of %d trained", trainer.current_epoch + 1, trainer.max_epochs)
