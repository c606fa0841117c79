"""``OutputPredictor``: the LightningModule that ``trainer.predict`` runs to fill a store with outputs.

It wraps the classifier for one prediction pass and carries that pass's request, so
the classifier itself knows nothing of requests: ``predict_step`` hands the request to
``registry.compute_outputs`` explicitly, and each batch's rows go to the store by pool
index. The classifier is a submodule, so Lightning moves it to the device, sets its
precision and puts it in eval mode as it would the classifier alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from .catalog import PredictionRequest
from .registry import compute_outputs
from .store import PoolOutputStore


class OutputPredictor(pl.LightningModule):
    """Computes ``request``'s outputs of ``classifier`` for every predicted batch and writes them into ``store``.

    ``request.reference`` (the labeled rows of an output flagged ``reference``) is moved to
    the device once per pass, not once per batch.
    """

    def __init__(self, classifier: nn.Module, request: PredictionRequest, store: PoolOutputStore) -> None:
        super().__init__()
        self.classifier = classifier
        self.request = request
        self.store = store
        # fewer batches than processes leave some DDP shards empty; prediction has no collective, so such
        # a process only waits for the others afterwards (Lightning refuses an empty shard unless told)
        self.allow_zero_length_dataloader_with_multiple_devices = True

    def on_predict_start(self) -> None:
        if self.request.reference:
            reference = {name: torch.as_tensor(value, device=self.device) for name, value in self.request.reference.items()}
            self.request = replace(self.request, reference=reference)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        return compute_outputs(self.classifier, batch, self.request)

    def on_predict_batch_end(self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        index = batch["pool_index"].detach().cpu().numpy()
        for name, rows in outputs.items():
            self.store.write(name, index, rows.detach().float().cpu().numpy())

    def on_predict_end(self) -> None:
        self.store.flush()
