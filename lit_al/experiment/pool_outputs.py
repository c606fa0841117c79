"""Re-run a saved model of an experiment over its pool (for the report's batch analysis).

The round-0 model of a seed (``loop.round0_model_dir``) and the all-data model are saved by
the runner; the report embeds the pool with the first (diversity, representativeness) and
takes the second's probabilities (Gu). Both go through the ordinary ``predict_step`` output
computers, so "embeddings" means exactly what the strategies see.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import ConfigError


def load_run_data(run_dir: Path):
    """The ``ActiveDataModule`` of a run directory (loaded and tokenized), its model class and kwargs."""
    from ..config import build_data, model_spec, saved_config
    from ..model import load_tokenizer

    cfg = saved_config(run_dir)
    data = build_data(cfg)
    data.load()
    model_class, model_kwargs = model_spec(cfg)
    data.tokenize(load_tokenizer(model_kwargs), cache_dir=run_dir / "cache")
    return data, model_class, model_kwargs


def has_saved_model(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds weights saved by a run (``SharedRound0``)."""
    from ..round0 import SharedRound0

    return (model_dir / SharedRound0.MODEL_FILE).exists()


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

        from ..outputs.catalog import PredictionRequest
        from ..round0 import SharedRound0
        from ..scoring import PoolScorer

        if not has_saved_model(model_dir):
            raise ConfigError(f"{model_dir}: no saved model ({SharedRound0.MODEL_FILE})")
        data, model_class, model_kwargs = self._load()
        model = model_class(**model_kwargs, **data.task_info())
        SharedRound0.load_weights(model, model_dir)

        def trainer(directory, callbacks, overrides):
            return pl.Trainer(**{**overrides, "logger": False}, enable_progress_bar=False, enable_model_summary=False,
                              enable_checkpointing=False, callbacks=callbacks, devices=1, default_root_dir=str(directory))

        rows = np.arange(len(data.pool.ids))
        with tempfile.TemporaryDirectory() as scratch:
            scored = PoolScorer(trainer).score(model, data, PredictionRequest(frozenset(needs)), rows, Path(scratch))
            return {name: np.array(array) for name, array in scored.outputs.items()}

    def tokens(self):
        """The pool's ``TokenizedTexts`` (truncated as in training; special tokens included, as ALPS's code)."""
        data = self._load()[0]
        return data.pool.tokens
