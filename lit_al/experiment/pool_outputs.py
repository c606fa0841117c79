"""Re-run a saved model of an experiment over its pool (for the report's batch analysis).

The round-0 model of a seed (``loop.round0_model_dir``) and the all-data model are saved by
the runner; the report embeds the pool with the first (diversity, representativeness) and
takes the second's probabilities (Gu). Both go through the ordinary ``predict_step`` output
computers, so "embeddings" means exactly what the strategies see.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)


def load_run_data(run_dir: Path):
    """The ``ActiveDataModule`` of a run directory (loaded and tokenized) and its model kwargs."""
    from transformers import AutoTokenizer

    from ..cli import _as_dict, _fit_parser
    from ..data.module import ActiveDataModule
    from ..hub import resolve_model_path

    config_path = run_dir / "config.yaml"
    if not config_path.exists():
        raise ConfigError(f"{run_dir}: no config.yaml (not a lit_al run directory)")
    cfg = _fit_parser().parse_path(str(config_path))
    data = ActiveDataModule(**_as_dict(cfg.data))
    data.load()
    model_kwargs = _as_dict(cfg.model)
    name = model_kwargs.get("model_name_or_path", "sentence-transformers/all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name), use_fast=True)
    data.tokenize(tokenizer, cache_dir=run_dir / "cache")
    return data, model_kwargs


class ScenarioPool:
    """The pool of one scenario, loaded (and tokenized) once on first use from one of its runs.

    Every cell of a scenario shares the pool and the model config, so the round-0 models of all
    seeds and the all-data model are run over the same loaded data.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            self._loaded = load_run_data(self.run_dir)
        return self._loaded

    def predict(self, model_dir: Path, needs: Iterable[str]) -> dict[str, np.ndarray]:
        """``needs`` outputs (e.g. ``embeddings``, ``probs``) of the model saved in ``model_dir`` for every pool row."""
        import lightning.pytorch as pl
        import torch

        from ..model import TextClassifier
        from ..strategies.base import Strategy

        weights = model_dir / "model.pt"
        if not weights.exists():
            raise ConfigError(f"{model_dir}: no saved model (model.pt)")
        data, model_kwargs = self._load()
        model = TextClassifier(**model_kwargs, **data.task_info())
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))

        class _Collector(Strategy):
            name = "collector"

            def _select(self, outputs, labeled, unlabeled, budget, rng):  # pragma: no cover - never selects
                raise NotImplementedError

        collector = _Collector()
        collector.needs = frozenset(needs)
        data.predict_rows = np.arange(len(data.pool.ids))
        with tempfile.TemporaryDirectory() as scratch:
            collector.begin_query(len(data.pool.ids), scratch)
            trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                                 enable_checkpointing=False, callbacks=[collector], devices=1)
            trainer.predict(model, datamodule=data, return_predictions=False)
            outputs = {name: np.array(array) for name, array in collector.collected_outputs().items()}
            collector.end_query()
        return outputs

    def token_ids(self) -> list[np.ndarray]:
        """Every pool row's token ids (truncated as in training; special tokens included, as ALPS's code)."""
        data, _ = self._load()
        tokens = data.pool.tokens
        return [tokens.row(i) for i in range(len(tokens))]
