"""``ActiveLoop``: the order of events of an active-learning run, and nothing else.

Round r: a fresh ``TextClassifier`` from the pretrained weights and a fresh
``Trainer`` from the trainer config; fit on the labeled set (keeping the best dev
epoch when there is a dev set); test; score the unlabeled pool with the outputs the
strategy needs (``PoolScorer.score_for``); select; the oracle answers; the state is
saved atomically; the round's metrics are logged.

The run directory holds ``config.yaml``, ``state.json`` (labels and progress,
the single source of truth), ``metrics.csv`` (one row per round) and
``rounds/round_XXX/selected.csv``. Re-running into the same directory continues
after the last completed round.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import pandas as pd

from . import distributed
from .callbacks import KeepBestEpoch, LogEpochs
from .data.module import ActiveDataModule
from .data.scenarios import draw_initial_set
from .data.state import INITIAL_ROUND, LabelState, PendingQuery
from .errors import ConfigError
from .atomic import atomic_write_text, remove_stale_temp_files
from .data.readers import resolve_path
from .labeling import apply_answers, now_utc, read_answers, write_batch_files
from .model import RUN_MODEL_DIR, TextClassifier, load_tokenizer, save_run_model
from .oracle import Oracle, PersonOracle, SimulatedOracle
from .outputs.catalog import PROBS, PredictionRequest
from .round0 import SharedRound0
from .rundir import CONFIG_FILE, STATE_FILE, check_writable, remove_run
from .scoring import PoolScorer
from .seeding import derive_seed
from .stopping import (STOPPING_DIR, StopSetHistory, StopWhen, draw_stop_set, label_balance, pool_max_uncertainty,
                       stop_set_signals)
from .strategies import Selection, Strategy, get_strategy

log = logging.getLogger(__name__)

#: ``factory(round_dir, callbacks, overrides=None)``: a fresh Trainer for one round.
#: ``overrides`` (a dict of ``pl.Trainer`` arguments that replace the configured ones) is, e.g.,
#: ``{"logger": False}`` for a predict Trainer (prediction logs nothing), with
#: ``"inference_mode": False`` when an output the strategy needs takes gradients (the catalogue flags it; ``PoolScorer`` asks).
TrainerFactory = Callable[..., pl.Trainer]


@dataclass
class OverlapConfig:
    """The overlapped loop of a person's labeling page and ``Session`` (``lit_al.overlap``).

    While a batch is being answered, a background process trains on every label so far and
    proposes the next batch, adopted when the current one is done. ``lit_al fit``, ``lit_al
    experiment`` and ``lit_al query`` never use it: simulations stay synchronous.

    Args:
        enabled: overlap labeling with training on the page and in ``Session`` (false: the
            synchronous loop, where the person waits for each round).
        retrain_every: answers of the current batch since the last background training's
            snapshot that start the next one (when none is running); ``null``: a quarter of
            ``query_size`` (at least 1).
        max_epochs: ``trainer.max_epochs`` of the models trained on a partly answered batch
            (the first model of each batch, on the committed labels only, trains in full);
            ``null``: the configured epochs.
        warm_start: start each background model from the run's last model instead of the
            pretrained weights (faster to converge, and not what the papers' loop computes).
        max_restarts: a background training that dies is restarted this many times in a row
            before the page reports it and offers the synchronous round.
    """

    enabled: bool = True
    retrain_every: int | None = None
    max_epochs: int | None = None
    warm_start: bool = False
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if self.retrain_every is not None and self.retrain_every < 1:
            raise ConfigError(f"loop.overlap.retrain_every must be >= 1 or null, got {self.retrain_every}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ConfigError(f"loop.overlap.max_epochs must be >= 1 or null, got {self.max_epochs}")
        if self.max_restarts < 0:
            raise ConfigError(f"loop.overlap.max_restarts must be >= 0, got {self.max_restarts}")


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
        oracle: who answers a query: ``simulated`` (the pool's gold labels, at once), ``person``
            (the batch is written for a person and the run stops until ``lit_al label`` brings
            the answers), or ``auto`` (simulated when the pool carries gold labels, else person).
        repropose_skipped: whether items a person skipped may be proposed again.
        stop_set_size: examples of the stop set (drawn once from the pool, seeded) whose
            predictions give the stopping signals every round; the whole pool if smaller; 0: none.
        stop_when: criteria that end the run (``StopWhen``); the signals are logged either way.
        overlap: how a person's page and ``Session`` overlap labeling with training (``OverlapConfig``).
    """

    query_size: int = 50
    rounds: int | None = 5
    max_labels: int | None = None
    monitor: str | None = "auto"
    monitor_mode: str = "max"
    cold_start_fallback: str = "random"
    keep_outputs: bool = False
    round0_model_dir: str | None = None
    oracle: str = "auto"
    repropose_skipped: bool = False
    stop_set_size: int = 2000
    stop_when: StopWhen = field(default_factory=StopWhen)
    overlap: OverlapConfig = field(default_factory=OverlapConfig)

    def __post_init__(self) -> None:
        if isinstance(self.overlap, dict):
            self.overlap = OverlapConfig(**self.overlap)
        if self.oracle not in ("auto", "simulated", "person"):
            raise ConfigError(f"loop.oracle must be auto, simulated or person, got {self.oracle!r}")
        if isinstance(self.stop_when, dict):
            self.stop_when = StopWhen(**self.stop_when)
        if self.stop_set_size < 0:
            raise ConfigError(f"loop.stop_set_size must be >= 0, got {self.stop_set_size}")
        if self.query_size <= 0:
            raise ConfigError(f"loop.query_size must be positive, got {self.query_size}")
        if self.rounds is not None and self.rounds < 0:
            raise ConfigError(f"loop.rounds must be >= 0, got {self.rounds}")
        if self.max_labels is not None and self.max_labels <= 0:
            raise ConfigError(f"loop.max_labels must be positive, got {self.max_labels}")
        if self.monitor_mode not in ("max", "min"):
            raise ConfigError(f"loop.monitor_mode must be max or min, got {self.monitor_mode!r}")

    def budget(self, round_index: int, n_labeled: int, n_candidates: int) -> int:
        """How many items round ``round_index`` may ask for: ``query_size``, capped by the candidates
        left and by ``max_labels``; none after the last of ``rounds``."""
        if self.rounds is not None and round_index >= self.rounds:
            return 0
        budget = min(self.query_size, n_candidates)
        if self.max_labels is not None:
            budget = min(budget, self.max_labels - n_labeled)
        return max(budget, 0)


@dataclass
class RoundPicks:
    """What the score and select phases hand to ``propose`` (rank 0's, broadcast to every rank)."""

    strategy: str
    timings: dict[str, float]
    selection: Selection | None = None
    suggestions: tuple[tuple[str, ...], ...] = ()
    confidence: tuple[float, ...] = ()
    #: signals known only once the pool is scored (``stop_max_uncertainty``); no selection when one fires
    signals: dict[str, float] = field(default_factory=dict)


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
        self.scorer = PoolScorer(trainer_factory)
        #: Only global rank 0 writes run files; under DDP the other ranks compute the same state in memory.
        self.writes = distributed.is_writer()

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
        subsample = self.data.pool_subsample
        if subsample is not None and subsample < self.config.query_size:
            raise ConfigError(f"data.pool_subsample ({subsample}) is below loop.query_size ({self.config.query_size}): "
                              "each round picks its batch from the sample")
        if self.strategy.multi_label != self.data.schema.multi_label:
            raise ConfigError(
                f"strategy {self.strategy.name!r} is configured with multi_label={self.strategy.multi_label} "
                f"but data.multi_label is {self.data.schema.multi_label}"
            )
        if self.oracle is None:
            self.oracle = self._default_oracle()
        state_path = self.run_dir / STATE_FILE
        is_new = fresh or not state_path.exists()
        if not is_new:
            state = LabelState.load(state_path, self.data.pool.ids)
            if not self.writes:
                state.path = None
            dropped = state.drop_after(state.completed_rounds - 1)
            if dropped:
                log.info("resuming: dropped %d simulated labels of an interrupted round", len(dropped))
            self._extend_finished(state)
            log.info("resuming %s after %d completed round(s)", self.run_dir, state.completed_rounds)
        else:
            state = self._initial_state(LabelState(self.data.pool.ids, state_path if self.writes else None))
            self._warn_budget(state)
        if self.writes:
            if fresh:
                remove_run(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(self.run_dir)
            if config_text is not None:
                atomic_write_text(self.run_dir / CONFIG_FILE, config_text)
        # other ranks tokenize without the cache: they never write, and may start before rank 0 filled it
        self.data.tokenize(tokenizer, cache_dir=self.run_dir / "cache" if self.writes else None)
        if is_new:
            state.save()
            if state.pending is not None:
                self._write_batch_files(state.pending)
        self.data.state = state
        pending_round = state.pending is not None and state.pending.round == state.completed_rounds
        self._truncate_metrics(state.completed_rounds + int(pending_round))
        return state

    def _default_oracle(self) -> Oracle:
        """``loop.oracle``: the pool's gold labels (a simulation) or a person; ``auto`` picks by the pool."""
        data = self.data
        choice = self.config.oracle
        if choice == "auto":
            choice = "simulated" if data.pool_is_labeled else "person"
        if choice == "person":
            return PersonOracle()
        if not data.pool_is_labeled:
            raise ConfigError(f"loop.oracle 'simulated' answers from gold labels, and {data.train_path} has none "
                              "(an unlabeled pool); use loop.oracle: person (lit_al query)")
        assert data.pool is not None and data.pool.gold is not None
        return SimulatedOracle(data.pool.gold)

    def _initial_state(self, state: LabelState) -> LabelState:
        """The initial labels (round -1: the scenario's, a person's seed labels file) and the batch of
        round 0 the scenario proposes to a person, if any."""
        data = self.data
        assert data.pool is not None and data.schema is not None
        rng = np.random.default_rng(derive_seed(self.seed, "initial"))
        seed = draw_initial_set(data.initial, data.pool.texts, data.pool.gold, data.schema, rng)
        for source in dict.fromkeys(seed.sources):
            chosen = [i for i, s in enumerate(seed.sources) if s == source]
            state.add(seed.indices[chosen], [seed.labels[i] for i in chosen], round=INITIAL_ROUND, source=source)
        if data.initial.labels_file:
            answers = read_answers(resolve_path(data.initial.labels_file), data.schema, data.label_separator)
            summary = apply_answers(state, data.schema, [a for a in answers if a.skip is None], seed=True)
            log.info("seed labels from %s: %d", data.initial.labels_file, summary.added)
        proposed = np.array([i for i in seed.proposed if int(i) not in state.records], dtype=np.int64)
        if proposed.size:
            state.pending = PendingQuery(0, tuple(int(i) for i in proposed), (float("nan"),) * proposed.size,
                                         data.initial.scenario)
        return state

    def _check_model_and_trainer(self) -> None:
        """Build the model once and a Trainer once: a model that does not load, or a Trainer config
        that cannot work, fails here rather than after the run directory is written."""
        self.model_class(**self.model_kwargs, **self.data.task_info())
        trainer = self.trainer_factory(self.run_dir / "rounds" / "round_000", [], {"logger": False})
        start_method = getattr(trainer.strategy, "_start_method", "popen")
        if trainer.world_size > 1 and start_method != "popen":
            # spawned processes run only trainer.fit; lit_al's other processes must run the whole loop
            raise ConfigError(
                f"trainer.strategy: {type(trainer.strategy).__name__} starts its processes with {start_method!r}, which "
                "runs only the Trainer in them; every lit_al process must run the whole loop: use strategy ddp "
                "(Lightning starts one lit_al per device) or torchrun"
            )

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
            if state.pending is not None:  # a person has the batch: the next lit_al query goes on
                break
        return self.metrics()

    @property
    def waiting_for_labels(self) -> bool:
        """Whether the run stopped because a person has not answered the pending batch yet."""
        state = self.data.state
        return state is not None and state.pending is not None

    def run_round(self, state: LabelState, round_index: int) -> dict[str, Any]:
        """One round as phases: train → score → select → propose → commit.

        A round whose batch was already proposed (a run killed after ``propose``, or a
        person still labeling) resumes at ``commit``.
        """
        pending = state.pending if state.pending is not None and state.pending.round == round_index else None
        if pending is None:
            row, model, trained = self._train(state, round_index)
            stopped = bool(row.get("stop_reason"))  # a loop.stop_when criterion fired: nothing more to query
            budget = 0 if stopped else self._budget(round_index, int(row["labeled"]), self._candidates(state).size)
            if budget == 0:
                return self._finish(state, round_index, row, trained)
            scored = self._score_and_select(model, state, round_index, budget, trained)
            row.update(scored.timings)
            if scored.signals:
                row.update(scored.signals)
                row["stop_reason"] = "+".join(self.config.stop_when.fired(row))
            if scored.selection is None:  # stopped by the scored pool's max uncertainty: nothing queried
                del model
                return self._finish(state, round_index, row, trained)
            row["query_strategy"] = scored.strategy
            del model
            pending = self._propose(state, round_index, scored, row, trained)
        else:
            row = self._logged_row(state, round_index)
        if self._commit(state, pending) and self.on_round_end is not None and self.writes:
            self.on_round_end(row)
        return row

    def propose_ahead(self, state: LabelState, round_index: int) -> tuple[dict[str, Any], RoundPicks | None]:
        """The overlapped loop's background step (``lit_al.overlap``): train and pick ahead of a person.

        Trains round ``round_index + 1``'s model on every label of ``state`` (the answers given
        so far to the pending batch of round ``round_index`` included), then picks that round's
        batch from the pool without the pending batch. It draws round ``round_index``'s seeds:
        before any answer arrives, its labels are the ones the synchronous round ``round_index``
        trains on, so the two loops train the same model on the same labels and their learning
        curves pair exactly (``scripts/bench_annotator.py``). ``state`` is not changed and
        ``run_dir`` is the background job's folder. None: nothing to propose (the budget is
        spent, or a ``loop.stop_when`` criterion fired); the synchronous round decides then.
        """
        row, model, trained = self._train(state, round_index + 1, seed_round=round_index)
        budget = self._budget(round_index + 1, len(state.records) + len(state.open_pending()), self._candidates(state).size)
        if row.get("stop_reason") or budget == 0:
            return row, None
        picks = self._score_and_select(model, state, round_index + 1, budget, trained)
        row.update(picks.timings)
        row["query_strategy"] = picks.strategy
        return row, picks

    # ------------------------------------------------------------------ phases
    def _train(self, state: LabelState, round_index: int,
               seed_round: int | None = None) -> tuple[dict[str, Any], TextClassifier, bool]:
        """A fresh model from the pretrained weights, fit on the labeled set and tested (not fit: nothing labeled).

        ``seed_round``: the round whose seeds it draws (default ``round_index``; see ``propose_ahead``).
        """
        data = self.data
        labeled = state.labeled_indices()
        seeds = round_index if seed_round is None else seed_round
        row: dict[str, Any] = {"round": round_index, "labeled": int(labeled.size), "strategy": self.strategy.name}
        pl.seed_everything(derive_seed(self.seed, seeds, "model"), workers=True, verbose=False)
        model = self.model_class(**self.model_kwargs, **data.task_info())
        data.train_seed = derive_seed(self.seed, seeds, "data_order")
        if labeled.size == 0:
            return row, model, False
        shared = self._shared_round0(labeled) if round_index == 0 else None
        restored = shared.load(model) if shared is not None else None
        if restored is not None:
            row.update(restored)
        else:
            log.info("round %d: training on %d labels", round_index, labeled.size)
            if model.starts_from_label_prior:  # the targets are read only for a head that uses them
                model.start_from_label_prior(data.labeled_targets()[1])
            row.update(self._fit_and_test(model, self._round_dir(round_index)))
            if shared is not None and self.writes:
                shared.save(model, row)
        if self.writes:
            save_run_model(self.run_dir / RUN_MODEL_DIR, model, self.model_kwargs, round_index)
        row.update(self._stopping_signals(model, state, round_index))
        return row, model, True

    def _stopping_signals(self, model: TextClassifier, state: LabelState, round_index: int) -> dict[str, Any]:
        """The round's stopping signals (``lit_al.stopping``) and ``stop_reason``: the ``loop.stop_when`` criteria that fired.

        Scores only the stop-set rows, with ``probs``; the same on every rank (rank 0's, broadcast).
        """
        data = self.data
        assert data.pool is not None and data.schema is not None
        row: dict[str, Any] = label_balance(data.labeled_targets()[1], data.schema.names)
        rows = draw_stop_set(len(data.pool.ids), self.config.stop_set_size, self.seed)
        if rows.size:
            directory = self._round_dir(round_index) / "stop_set"
            scored = self.scorer.score(model, data, PredictionRequest(frozenset({PROBS})), rows, directory)
            signals = None
            if self.writes:
                signals = stop_set_signals(
                    np.asarray(scored.outputs[PROBS][rows]), ~state.is_labeled()[rows],
                    StopSetHistory(self.run_dir / STOPPING_DIR), round_index,
                    multi_label=data.schema.multi_label, threshold=model.threshold, window=self.config.stop_when.window,
                )
                del scored
                shutil.rmtree(directory, ignore_errors=True)
            row.update(distributed.broadcast(signals))
        row["stop_reason"] = "+".join(self.config.stop_when.fired(row))
        return row

    def _candidates(self, state: LabelState) -> np.ndarray:
        """The unlabeled pool indices a strategy may pick (without a person's skips, unless asked, and without
        a pending batch's items: the overlapped loop picks the next batch while one is being answered)."""
        candidates = state.unlabeled_indices(include_skipped=self.config.repropose_skipped)
        if state.pending is not None:
            candidates = np.setdiff1d(candidates, np.asarray(state.pending.pool_indices, dtype=np.int64))
        return candidates

    def _score_and_select(self, model, state: LabelState, round_index: int, budget: int, trained: bool) -> RoundPicks:
        """Score the pool with the outputs the strategy needs, then select; the picks are rank 0's on every rank."""
        strategy = self.strategy
        if not trained and strategy.requires_trained_model:
            strategy = self._cold_start_strategy(strategy)
        seed = derive_seed(self.seed, round_index, "strategy", strategy.name)
        labeled = state.labeled_indices()
        unlabeled = self.data.rows_to_score(self._candidates(state), self.seed, round_index)  # data.pool_subsample
        directory = self._round_dir(round_index) / "outputs"
        suggest = trained and not self.oracle.answers_at_once  # a person sees the model's suggestion
        log.info("round %d: scoring %d unlabeled texts", round_index, unlabeled.size)
        # the pool's max uncertainty where its probs are computed anyway, or where the criterion is selected
        pool_signal = trained and (PROBS in strategy.needs or suggest or self.config.stop_when.max_uncertainty is not None)
        scored = self.scorer.score_for(strategy, model, self.data, labeled, unlabeled, seed, directory, probs=pool_signal)
        picks = RoundPicks(strategy.name, {"predict_seconds": scored.seconds})
        if self.writes and pool_signal:
            picks.signals = pool_max_uncertainty(scored.outputs[PROBS][unlabeled], multi_label=self.data.schema.multi_label)
        stops = self.writes and bool(self.config.stop_when.fired(picks.signals))  # max-confidence fired: select nothing
        if stops and not self.config.keep_outputs:
            shutil.rmtree(directory, ignore_errors=True)
        if self.writes and not stops:
            outputs = scored.outputs
            log.info("round %d: selecting %d with %s", round_index, budget, strategy.name)
            start = time.perf_counter()
            strategy.restore_run_record(state.strategy_records.get(strategy.name, {}))  # e.g. ProbCover's δ, fixed per run
            picks.selection = strategy.select(outputs, labeled, unlabeled, budget, seed=seed)
            picks.timings["select_seconds"] = time.perf_counter() - start
            if strategy.run_record():  # saved with the proposed batch (``_propose``: one atomic write)
                state.strategy_records[strategy.name] = strategy.run_record()
            if suggest:
                picks.suggestions, picks.confidence = self._suggestions(outputs[PROBS][picks.selection.indices])
            del outputs, scored
            if not self.config.keep_outputs:
                shutil.rmtree(directory, ignore_errors=True)
        return distributed.broadcast(picks)

    def _suggestions(self, probs: np.ndarray) -> tuple[tuple[tuple[str, ...], ...], tuple[float, ...]]:
        """The model's answer per pick and its confidence: max p (single-label), or the labels with
        p >= threshold and the least certain decision min_j max(p_j, 1 - p_j) (multi-label)."""
        schema = self.data.schema
        assert schema is not None
        names = schema.names
        if not schema.multi_label:
            return tuple((names[int(k)],) for k in probs.argmax(1)), tuple(float(p) for p in probs.max(1))
        threshold = float(self.model_kwargs.get("threshold", 0.5))
        chosen = tuple(tuple(n for n, p in zip(names, row) if p >= threshold) for row in probs)
        return chosen, tuple(float(c) for c in np.maximum(probs, 1 - probs).min(1))

    def _propose(self, state: LabelState, round_index: int, picks: RoundPicks, row: dict[str, Any],
                 trained: bool) -> PendingQuery:
        """Persist the picked batch as the pending query (the round's metrics row first: see ``prepare``)."""
        if trained:
            self._append_metrics(row)
        selection = picks.selection
        assert selection is not None
        state.pending = PendingQuery(round_index, tuple(int(i) for i in selection.indices),
                                     tuple(float(s) for s in selection.scores), picks.strategy,
                                     picks.suggestions, picks.confidence)
        if not self.oracle.answers_at_once:  # a person's batch records which model proposed it (lit_al.overlap too)
            state.proposed_by[round_index] = {"round": round_index, "labeled": int(row["labeled"]), "time": now_utc(),
                                              "overlap": False}
        state.save()
        if not self.oracle.answers_at_once:
            self._write_batch_files(state.pending)
        return state.pending

    def _write_batch_files(self, pending: PendingQuery) -> None:
        """The batch in the formats people label in (``lit_al.labeling.formats``), in the round directory."""
        data = self.data
        assert data.pool is not None and data.schema is not None
        if not self.writes:
            return
        items = [
            {"id": data.pool.ids[i], "text": data.pool.texts[i], "score": score,
             "suggestion": pending.suggestions[k] if pending.suggestions else (),
             "confidence": pending.confidence[k] if pending.confidence else None}
            for k, (i, score) in enumerate(zip(pending.pool_indices, pending.scores))
        ]
        write_batch_files(self._round_dir(pending.round), items, data.schema, pending.round, data.label_separator)

    def _commit(self, state: LabelState, pending: PendingQuery) -> bool:
        """The answers to the pending batch, recorded with the round's checkpoint in one atomic write.

        A simulated oracle answers at once. A person's answers are already in the state
        (imported by ``lit_al label``): the round is committed once at least one has
        arrived, and the items left unanswered go back to the pool. False: still waiting.
        """
        data = self.data
        assert data.pool is not None and self.oracle is not None
        picked = np.asarray(pending.pool_indices, dtype=np.int64)
        if self.oracle.answers_at_once:
            labels = self.oracle.annotate(picked, [data.pool.ids[i] for i in picked])
            state.add(picked, labels, round=pending.round, source=self.oracle.source)
        else:
            answered = [i for i in picked if state.is_answered(int(i))]
            if not answered:
                return False
            if len(answered) < picked.size:
                log.info("round %d: %d of %d proposed items answered; the others go back to the pool",
                         pending.round, len(answered), picked.size)
            labels = [state.records[int(i)].labels if int(i) in state.records else () for i in picked]
        if self.writes:
            self._write_selection(self._round_dir(pending.round), picked, np.asarray(pending.scores), labels)
        state.pending = None
        state.completed_rounds = pending.round + 1
        state.save()
        return True

    def _finish(self, state: LabelState, round_index: int, row: dict[str, Any], trained: bool) -> dict[str, Any]:
        """The last round: nothing left to query."""
        if trained:
            self._append_metrics(row)
        state.finished = True
        state.completed_rounds = round_index + 1
        state.save()
        if self.on_round_end is not None and self.writes:
            self.on_round_end(row)
        return row

    def _round_dir(self, round_index: int) -> Path:
        path = self.run_dir / "rounds" / f"round_{round_index:03d}"
        if self.writes:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def _logged_row(self, state: LabelState, round_index: int) -> dict[str, Any]:
        """The metrics row of a round resumed at ``commit`` (a round that trained nothing has none)."""
        frame = self.metrics()
        if not frame.empty and (frame["round"] == round_index).any():
            return frame[frame["round"] == round_index].iloc[-1].to_dict()
        labeled = sum(1 for record in state.records.values() if record.round < round_index)
        return {"round": round_index, "labeled": labeled, "strategy": self.strategy.name}

    def _budget(self, round_index: int, n_labeled: int, n_unlabeled: int) -> int:
        return self.config.budget(round_index, n_labeled, n_unlabeled)

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
        callbacks: list[pl.Callback] = [LogEpochs()]
        monitor = self.monitor_name() if data.dev is not None else None
        if monitor is not None:
            known = {f"val_{k[len('val_'):]}" for k in model.val_metrics.keys()} | {"val_loss"}
            if monitor not in known:
                raise ConfigError(f"loop.monitor {monitor!r} is not logged for this task; choose one of {sorted(known)}")
            callbacks.append(KeepBestEpoch(monitor, self.config.monitor_mode))
        trainer = self.trainer_factory(round_dir, callbacks, {"use_distributed_sampler": False})
        out: dict[str, Any] = {}
        start = time.perf_counter()
        trainer.fit(model, datamodule=data)
        out["fit_seconds"] = time.perf_counter() - start
        if monitor is not None:
            out["best_epoch"] = callbacks[-1].best_epoch
        if data.test is not None:
            start = time.perf_counter()
            results = trainer.test(model, datamodule=data, verbose=False)
            out["test_seconds"] = time.perf_counter() - start
            for key, value in (results[0] if results else {}).items():
                if key.startswith("test_") and key != "test_loss":
                    out[key] = float(value)
        return out

    def _cold_start_strategy(self, strategy: Strategy) -> Strategy:
        fallback = dict(strategy.cold_start_fallback or {"name": self.config.cold_start_fallback})
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
        if not self.writes:
            return
        frame = self.metrics()
        if not frame.empty:
            frame = frame[frame["round"] != row["round"]]
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True) if not frame.empty else pd.DataFrame([row])
        atomic_write_text(self.metrics_path, frame.to_csv(index=False))

    def _truncate_metrics(self, keep_rounds: int) -> None:
        """Drop metric rows of rounds >= ``keep_rounds`` (rows of a round cut before its checkpoint)."""
        frame = self.metrics()
        if self.writes and not frame.empty and (frame["round"] >= keep_rounds).any():
            atomic_write_text(self.metrics_path, frame[frame["round"] < keep_rounds].to_csv(index=False))


def format_round(row: dict[str, Any], metric_names: list[str]) -> str:
    """One line of the progress table: round, labeled count, the chosen test metrics."""
    parts = [f"round {row['round']:>3}", f"labeled {row['labeled']:>6}"]
    for name in metric_names:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{name[len('test_'):]} {value:.4f}")
    if isinstance(row.get("stop_reason"), str) and row["stop_reason"]:
        parts.append(f"stop: {row['stop_reason']}")
    return " | ".join(parts)
