"""``ActiveLoop``: the order of events of an active-learning run, and nothing else.

Round r: a fresh ``TextClassifier`` from the pretrained weights and a fresh
``Trainer`` from the trainer config; fit on the labeled set (keeping the best dev
epoch when there is a dev set); test; score the unlabeled pool with
``trainer.predict`` with the strategy attached as a callback; select; the oracle
answers; the state is saved atomically; the round's metrics are logged.

The run directory holds ``config.yaml``, ``state.json`` (labels and progress,
the single source of truth), ``metrics.csv`` (one row per round) and
``rounds/round_XXX/selected.csv``. Re-running into the same directory continues
after the last completed round.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import pandas as pd

from .callbacks import KeepBestEpoch
from .data.module import ActiveDataModule
from .data.scenarios import draw_initial_set
from .data.state import LabelState
from .errors import ConfigError
from .hub import resolve_model_path
from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_stale_temp_files
from .model import DEFAULT_MODEL, TextClassifier
from .oracle import Oracle, SimulatedOracle
from .rundir import CONFIG_FILE, STATE_FILE, check_writable, remove_run
from .seeding import derive_seed
from .strategies import Strategy, get_strategy

log = logging.getLogger(__name__)

#: ``factory(round_dir, callbacks, overrides=None)``: a fresh Trainer for one round.
#: ``overrides`` (a dict of ``pl.Trainer`` arguments that replace the configured ones) is, e.g.,
#: ``{"logger": False}`` for a predict Trainer (prediction logs nothing), with
#: ``"inference_mode": False`` when the strategy's outputs take gradients (``Strategy.needs_gradients``).
TrainerFactory = Callable[..., pl.Trainer]


@dataclass
class LoopConfig:
    """Budget and protocol of the loop.

    Args:
        query_size: labels asked for per round.
        rounds: query rounds after round 0 (round 0 trains on the initial set); ``null`` = no limit.
        max_labels: stop once this many examples are labeled (the last round takes what is left).
        monitor: dev metric whose best epoch is kept (``auto``: target F1 for one-vs-rest or binary
            with a positive label, micro-F1 for multi-label, else macro-F1; ``null``: keep the last epoch).
        monitor_mode: max | min.
        cold_start_fallback: strategy used in a cold-start first round when the configured one
            needs a fine-tuned model (unless the strategy names its own fallback).
        keep_outputs: keep each round's prediction arrays (``rounds/round_XXX/outputs``).
        round0_model_dir: a directory holding the round-0 model shared by several runs (the
            strategies of one seed in an experiment start from the same model, as in the IBM
            study): loaded from there when it was trained from the same initial set under the
            same configuration, otherwise trained as usual and saved there. A model trained
            under a different configuration is refused.
    """

    query_size: int = 50
    rounds: int | None = 5
    max_labels: int | None = None
    monitor: str | None = "auto"
    monitor_mode: str = "max"
    cold_start_fallback: str = "random"
    keep_outputs: bool = False
    round0_model_dir: str | None = None

    def __post_init__(self) -> None:
        if self.query_size <= 0:
            raise ConfigError(f"loop.query_size must be positive, got {self.query_size}")
        if self.rounds is not None and self.rounds < 0:
            raise ConfigError(f"loop.rounds must be >= 0, got {self.rounds}")
        if self.max_labels is not None and self.max_labels <= 0:
            raise ConfigError(f"loop.max_labels must be positive, got {self.max_labels}")
        if self.monitor_mode not in ("max", "min"):
            raise ConfigError(f"loop.monitor_mode must be max or min, got {self.monitor_mode!r}")


class ActiveLoop:
    """Runs the rounds of one active-learning experiment into ``run_dir``."""

    def __init__(
        self,
        *,
        model_kwargs: dict[str, Any],
        data: ActiveDataModule,
        strategy: Strategy,
        trainer_factory: TrainerFactory,
        run_dir: str | Path,
        seed: int = 0,
        loop: LoopConfig | None = None,
        oracle: Oracle | None = None,
        on_round_end: Callable[[dict[str, Any]], None] | None = None,
        round0_key: str = "",
        model_class: type[TextClassifier] = TextClassifier,
    ) -> None:
        self.model_kwargs = dict(model_kwargs)
        self.model_class = model_class
        self.data = data
        self.strategy = strategy
        self.trainer_factory = trainer_factory
        self.run_dir = Path(run_dir)
        self.seed = int(seed)
        self.config = loop or LoopConfig()
        self.oracle = oracle
        self.on_round_end = on_round_end
        self.round0_key = round0_key
        self.metrics_path = self.run_dir / "metrics.csv"

    # ------------------------------------------------------------------ set-up
    def prepare(self, *, fresh: bool = False, config_text: str | None = None) -> LabelState:
        """Load the data, the tokenizer and the label state (or draw the initial set), then tokenize.

        Everything that bad input can break (files, columns, labels, the model and its weights,
        the initial-set scenario, the number of processes) is checked before anything is written
        to ``run_dir``, so a run that cannot start leaves nothing behind. ``fresh`` starts over:
        an existing run in ``run_dir`` is ignored, and deleted only once the new one has been
        validated. ``config_text`` is written to ``config.yaml`` before the state, so a state
        never exists without the config it was drawn under.
        """
        check_writable(self.run_dir)
        self.data.load()
        tokenizer = load_tokenizer(self.model_kwargs)
        assert self.data.pool is not None and self.data.schema is not None
        self._check_model_and_trainer()
        if self.strategy.multi_label != self.data.schema.multi_label:
            raise ConfigError(
                f"strategy {self.strategy.name!r} is configured with multi_label={self.strategy.multi_label} "
                f"but data.multi_label is {self.data.schema.multi_label}"
            )
        if self.oracle is None:
            self.oracle = SimulatedOracle(self.data.pool.gold)
        state_path = self.run_dir / STATE_FILE
        is_new = fresh or not state_path.exists()
        if not is_new:
            state = LabelState.load(state_path, self.data.pool.ids)
            dropped = state.drop_after(state.completed_rounds)
            if dropped:
                log.info("resuming: dropped %d simulated labels of an interrupted round", len(dropped))
            self._extend_finished(state)
            log.info("resuming %s after %d completed round(s)", self.run_dir, state.completed_rounds)
        else:
            state = LabelState(self.data.pool.ids, state_path)
            rng = np.random.default_rng(derive_seed(self.seed, "initial"))
            seed = draw_initial_set(self.data.initial, self.data.pool.texts, self.data.pool.gold, self.data.schema, rng)
            for source in dict.fromkeys(seed.sources):
                chosen = [i for i, s in enumerate(seed.sources) if s == source]
                state.add(seed.indices[chosen], [seed.labels[i] for i in chosen], round=0, source=source)
            self._warn_budget(state)
        if fresh:
            remove_run(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.run_dir)
        if config_text is not None:
            atomic_write_text(self.run_dir / CONFIG_FILE, config_text)
        self.data.tokenize(tokenizer, cache_dir=self.run_dir / "cache")
        if is_new:
            state.save()
        self.data.state = state
        self._truncate_metrics(state.completed_rounds)
        return state

    def _check_model_and_trainer(self) -> None:
        """Build the model once and a Trainer once: a model that does not load, or a Trainer of
        several processes, fails here rather than after the run directory is written."""
        self.model_class(**self.model_kwargs, **self.data.task_info())
        _refuse_several_processes(self.trainer_factory(self.run_dir / "rounds" / "round_000", [], {"logger": False}))

    def _warn_budget(self, state: LabelState) -> None:
        """Say so when a run will do less than its config asks."""
        initial, n_pool = self.data.initial, state.n_pool
        if initial.scenario in ("random", "positives", "keyword_query") and initial.n > n_pool:
            log.warning("data.initial.n is %d but the pool has %d examples; the initial set has %d",
                        initial.n, n_pool, len(state.records))
        max_labels = self.config.max_labels
        if max_labels is not None and max_labels <= len(state.records):
            log.warning("loop.max_labels is %d but the initial set already has %d labels; no round will query",
                        max_labels, len(state.records))

    def _extend_finished(self, state: LabelState) -> None:
        """Reopen a finished run whose budget (``loop.rounds``, ``loop.max_labels``) now allows more.

        The last round of a finished run trained without querying; it runs again (same seeds,
        same model) and queries this time.
        """
        if not state.finished or state.completed_rounds == 0:
            return
        last = state.completed_rounds - 1
        labeled, unlabeled = len(state.records), state.n_pool - len(state.records)
        if self._budget(last, labeled, unlabeled) > 0:
            state.finished = False
            state.completed_rounds = last
            log.info("extending the finished run: round %d runs again and queries", last)

    def monitor_name(self) -> str | None:
        monitor = self.config.monitor
        if monitor != "auto":
            return monitor
        schema = self.data.schema
        assert schema is not None
        if schema.positive_index is not None and not schema.multi_label:
            return "val_target_f1"
        return "val_micro_f1" if schema.multi_label else "val_macro_f1"

    # -------------------------------------------------------------------- run
    def run(self) -> pd.DataFrame:
        """Run every remaining round (``prepare`` first, unless the caller already did)."""
        state = self.data.state if self.data.state is not None else self.prepare()
        while not state.finished:
            self.run_round(state, state.completed_rounds)
        return self.metrics()

    def run_round(self, state: LabelState, round_index: int) -> dict[str, Any]:
        data = self.data
        assert data.pool is not None
        labeled = state.labeled_indices()
        row: dict[str, Any] = {"round": round_index, "labeled": int(labeled.size), "strategy": self.strategy.name}
        round_dir = self.run_dir / "rounds" / f"round_{round_index:03d}"
        round_dir.mkdir(parents=True, exist_ok=True)

        pl.seed_everything(derive_seed(self.seed, round_index, "model"), workers=True, verbose=False)
        model = self.model_class(**self.model_kwargs, **data.task_info())
        data.train_seed = derive_seed(self.seed, round_index, "data_order")
        trained = labeled.size > 0
        if trained:
            shared = self._shared_round0(labeled) if round_index == 0 else None
            restored = shared.load(model) if shared is not None else None
            if restored is not None:
                row.update(restored)
            else:
                row.update(self._fit_and_test(model, round_dir))
                if shared is not None:
                    shared.save(model, row)

        unlabeled = state.unlabeled_indices()
        budget = self._budget(round_index, labeled.size, unlabeled.size)
        if budget > 0:
            picked, scores, timings, used = self._query(model, state, round_dir, round_index, budget, trained)
            row.update(timings)
            row["query_strategy"] = used.name
            labels = self.oracle.annotate(picked, [data.pool.ids[i] for i in picked])
            self._write_selection(round_dir, picked, scores, labels)
            state.add(picked, labels, round=round_index + 1, source=self.oracle.source)
        else:
            state.finished = True
        if trained:
            self._append_metrics(row)
        state.completed_rounds = round_index + 1
        state.save()  # the round's checkpoint: labels and progress in one atomic write
        if self.on_round_end is not None:
            self.on_round_end(row)
        return row

    def _budget(self, round_index: int, n_labeled: int, n_unlabeled: int) -> int:
        config = self.config
        if config.rounds is not None and round_index >= config.rounds:
            return 0
        budget = min(config.query_size, n_unlabeled)
        if config.max_labels is not None:
            budget = min(budget, config.max_labels - n_labeled)
        return max(budget, 0)

    def _shared_round0(self, labeled: np.ndarray) -> SharedRound0 | None:
        if not self.config.round0_model_dir:
            return None
        assert self.data.pool is not None
        key = {
            "config": self.round0_key or repr(sorted(self.model_kwargs.items())),
            "seed": self.seed,
            "labeled_ids": sorted(self.data.pool.ids[i] for i in labeled),
        }
        return SharedRound0(Path(self.config.round0_model_dir), key)

    # ------------------------------------------------------------ fit / test
    def _fit_and_test(self, model: TextClassifier, round_dir: Path) -> dict[str, Any]:
        data = self.data
        callbacks: list[pl.Callback] = []
        monitor = self.monitor_name() if data.dev is not None else None
        if monitor is not None:
            known = {f"val_{k[len('val_'):]}" for k in model.val_metrics.keys()} | {"val_loss"}
            if monitor not in known:
                raise ConfigError(f"loop.monitor {monitor!r} is not logged for this task; choose one of {sorted(known)}")
            callbacks.append(KeepBestEpoch(monitor, self.config.monitor_mode))
        trainer = self.trainer_factory(round_dir, callbacks)
        _refuse_several_processes(trainer)
        out: dict[str, Any] = {}
        start = time.perf_counter()
        trainer.fit(model, datamodule=data)
        out["fit_seconds"] = time.perf_counter() - start
        if callbacks:
            out["best_epoch"] = callbacks[0].best_epoch
        if data.test is not None:
            start = time.perf_counter()
            results = trainer.test(model, datamodule=data, verbose=False)
            out["test_seconds"] = time.perf_counter() - start
            for key, value in (results[0] if results else {}).items():
                if key.startswith("test_") and key != "test_loss":
                    out[key] = float(value)
        return out

    # ------------------------------------------------------------------ query
    def _query(self, model, state, round_dir, round_index, budget, trained):
        data = self.data
        strategy = self.strategy
        if not trained and strategy.requires_trained_model:
            strategy = self._cold_start_strategy(strategy)
        strategy.seed = derive_seed(self.seed, round_index, "strategy", strategy.name)
        labeled, unlabeled = state.labeled_indices(), state.unlabeled_indices()
        timings: dict[str, float] = {"predict_seconds": 0.0}
        outputs: dict[str, np.ndarray] = {}
        output_dir = round_dir / "outputs"
        if strategy.needs:
            # A strategy whose unlabeled outputs are relative to the labeled ones (ALDEN's Z_L)
            # predicts the labeled rows in a pass of their own first; no batch mixes the two.
            if strategy.predict_labeled_first and labeled.size:
                passes = [labeled, unlabeled]
            else:
                passes = [np.concatenate([unlabeled, labeled]) if strategy.predict_labeled else unlabeled]
            strategy.begin_query(len(data.pool.ids), output_dir)
            overrides: dict[str, Any] = {"logger": False}  # prediction logs nothing: no logger version of its own
            if strategy.needs_gradients:
                # Lightning predicts under torch.inference_mode by default, which forbids autograd.
                overrides["inference_mode"] = False
            trainer = self.trainer_factory(round_dir, [strategy], overrides)
            start = time.perf_counter()
            try:
                for position, rows in enumerate(passes):
                    if position:
                        strategy.attach_prediction_reference(labeled)
                    data.predict_rows = rows
                    trainer.predict(model, datamodule=data, return_predictions=False)
            finally:
                strategy.attach_prediction_reference(None)
            timings["predict_seconds"] = time.perf_counter() - start
            outputs = strategy.collected_outputs()
        if strategy.uses_labels:
            labels = np.full((len(data.pool.ids), data.num_classes), np.nan, dtype=np.float32)
            index, targets = data.labeled_targets()
            labels[index] = targets
            outputs["labels"] = labels
        start = time.perf_counter()
        picked = strategy.select(outputs, labeled, unlabeled, budget)
        timings["select_seconds"] = time.perf_counter() - start
        scores = getattr(strategy, "last_scores", None)
        scores = np.asarray(scores, dtype=float) if scores is not None and len(scores) == len(picked) else np.full(len(picked), np.nan)
        del outputs
        strategy.end_query()
        if not self.config.keep_outputs and output_dir.exists():
            shutil.rmtree(output_dir, ignore_errors=True)
        return picked, scores, timings, strategy

    def _cold_start_strategy(self, strategy: Strategy) -> Strategy:
        fallback = dict(getattr(strategy, "cold_start_fallback", None) or {"name": self.config.cold_start_fallback})
        name = fallback.pop("name")
        replacement = get_strategy(name, multi_label=strategy.multi_label, **fallback)
        log.warning("cold start: %s needs a fine-tuned model; round 0 queries with %s", strategy.name, replacement.name)
        return replacement

    # ---------------------------------------------------------------- outputs
    def _write_selection(self, round_dir: Path, picked: np.ndarray, scores: np.ndarray, labels) -> None:
        assert self.data.pool is not None
        frame = pd.DataFrame({
            "rank": np.arange(len(picked)),
            "pool_index": picked,
            "id": [self.data.pool.ids[i] for i in picked],
            "score": scores,
            "label": ["|".join(names) for names in labels],
        })
        atomic_write_text(round_dir / "selected.csv", frame.to_csv(index=False))

    def metrics(self) -> pd.DataFrame:
        if not self.metrics_path.exists():
            return pd.DataFrame()
        return pd.read_csv(self.metrics_path)

    def _append_metrics(self, row: dict[str, Any]) -> None:
        frame = self.metrics()
        if not frame.empty:
            frame = frame[frame["round"] != row["round"]]
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True) if not frame.empty else pd.DataFrame([row])
        atomic_write_text(self.metrics_path, frame.to_csv(index=False))

    def _truncate_metrics(self, completed_rounds: int) -> None:
        frame = self.metrics()
        if not frame.empty and (frame["round"] >= completed_rounds).any():
            atomic_write_text(self.metrics_path, frame[frame["round"] < completed_rounds].to_csv(index=False))


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


def _refuse_several_processes(trainer: pl.Trainer) -> None:
    if trainer.world_size > 1:
        # Every DDP rank would re-run the whole loop and write the same state file.
        raise ConfigError(
            f"trainer: {trainer.world_size} processes (devices x num_nodes) are not supported by ActiveLoop yet; "
            "set trainer.devices: 1"
        )


def load_tokenizer(model_kwargs: dict[str, Any]):
    """The fast tokenizer of the configured model (``hub.resolve_model_path``: the local copy when offline)."""
    from transformers import AutoTokenizer

    name = model_kwargs.get("model_name_or_path", DEFAULT_MODEL)
    return AutoTokenizer.from_pretrained(resolve_model_path(name), use_fast=True)


def format_round(row: dict[str, Any], metric_names: list[str]) -> str:
    """One line of the progress table: round, labeled count, the chosen test metrics."""
    parts = [f"round {row['round']:>3}", f"labeled {row['labeled']:>6}"]
    for name in metric_names:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{name[len('test_'):]} {value:.4f}")
    return " | ".join(parts)
