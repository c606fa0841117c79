"""``OutputCollector``: the Lightning callback that fills a store while ``trainer.predict`` runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from .catalog import PredictionRequest
from .store import PoolOutputStore


class OutputCollector(Callback):
    """Hands ``request`` to the model for one predict pass and writes every batch's rows into ``store``.

    ``request.reference`` (the labeled rows of an output flagged ``reference``) is
    moved to the model's device once per pass, not once per batch. ``store`` may be set
    after the Trainer exists (under DDP it depends on the process's rank).
    """

    def __init__(self, request: PredictionRequest, store: PoolOutputStore | None = None) -> None:
        super().__init__()
        self.request = request
        self.store = store

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        request = self.request
        if request.reference:
            device = getattr(pl_module, "device", None)
            reference = {name: torch.as_tensor(value, device=device) for name, value in request.reference.items()}
            request = replace(request, reference=reference)
        pl_module.prediction_request = request

    def on_predict_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        assert self.store is not None, "OutputCollector.store must be set before trainer.predict"
        index = batch["pool_index"].detach().cpu().numpy()
        for name, rows in outputs.items():
            self.store.write(name, index, rows.detach().float().cpu().numpy())

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        pl_module.prediction_request = None
        if self.store is not None:
            self.store.flush()


def rows_of(arrays: dict[str, np.ndarray], names: frozenset[str], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The values of ``names`` at pool indices ``rows`` (the reference a pass hands to the next one)."""
    return {name: np.ascontiguousarray(arrays[name][rows]) for name in sorted(names) if name in arrays}
