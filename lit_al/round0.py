"""``SharedRound0``: the round-0 model shared by every run of one seed in an experiment (IBM's protocol)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .atomic import atomic_write_bytes, atomic_write_json
from .model import TextClassifier

log = logging.getLogger(__name__)


class SharedRound0:
    """A round-0 model saved once and loaded by every run that starts from it.

    ``model.pt`` holds the weights (the best dev epoch), ``round0.json`` the key it was trained
    under (config fingerprint, seed, initial labeled ids) and its fit/test metrics; the JSON is
    written last, so a crash while saving leaves no half-written model that looks complete.
    """

    METRIC_PREFIXES = ("fit_", "test_", "best_epoch")
    MODEL_FILE = "model.pt"

    def __init__(self, directory: Path, key: dict[str, Any]) -> None:
        self.directory = directory
        self.key_digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        self.model_path = directory / self.MODEL_FILE
        self.meta_path = directory / "round0.json"

    @classmethod
    def load_weights(cls, model: TextClassifier, directory: Path) -> None:
        """Load the weights saved in ``directory`` into ``model`` (no key check: see ``load``)."""
        import torch

        model.load_state_dict(torch.load(directory / cls.MODEL_FILE, map_location="cpu", weights_only=True))

    def load(self, model: TextClassifier) -> dict[str, Any] | None:
        """Load the saved weights into ``model`` and return the saved metrics; None if there is no model yet."""
        if not self.meta_path.exists() or not self.model_path.exists():
            return None
        meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != self.key_digest:
            raise ConfigError(
                f"loop.round0_model_dir {self.directory}: its model was trained from another initial set or "
                "configuration; point this run at another directory or delete that one"
            )
        self.load_weights(model, self.directory)
        log.info("round 0: loaded the shared model from %s", self.directory)
        return dict(meta["metrics"])

    def save(self, model: TextClassifier, row: dict[str, Any]) -> None:
        import torch

        weights = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        atomic_write_bytes(self.model_path, weights.getvalue())
        metrics = {k: v for k, v in row.items() if k.startswith(self.METRIC_PREFIXES)}
        atomic_write_json(self.meta_path, {"key": self.key_digest, "metrics": metrics})
