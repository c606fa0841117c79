"""``PoolScorer``: the score phase of a round; pool rows scored with a model, arrays by pool index.

The only place that knows how outputs are produced: which rows a strategy's
outputs cover (``score_for``: the unlabeled rows, with the labeled ones where the
strategy predicts them too), the labeled reference pass (outputs flagged
``reference``: the labeled rows are scored first and handed to the unlabeled
pass), the probabilities a person's suggestions and the stopping signals read,
the ``labels`` output (the labeled rows' 0/1 labels, not predicted),
``inference_mode`` (off for outputs flagged ``gradients``), and, under DDP,
sharding and gathering. Each process scores every ``world``-th length-sorted batch
(the batches a single process would build, so results do not depend on the
process count), writes its rows into a disk-backed shard store, and rank 0 gathers
the shards into one pool-indexed store chunk by chunk; no process holds an n x d
array in memory. Multi-node runs need ``run_dir`` on a filesystem every node
sees.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import distributed
from .data.module import ActiveDataModule
from .outputs.catalog import LABELS, PROBS, PredictionRequest, flagged
from .outputs.predictor import OutputPredictor
from .outputs.store import PoolOutputStore, gather_shards
from .strategies import Strategy

#: ``factory(round_dir, callbacks, overrides)``: a fresh Trainer built from the run's trainer config.
TrainerFactory = Callable[..., Any]


@dataclass
class ScoredPool:
    """What ``PoolScorer.score`` and ``score_for`` return: pool-indexed arrays (on rank 0; empty on other ranks)
    and the seconds the prediction passes took."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


class PoolScorer:
    """Runs the prediction passes that fill the outputs a strategy (``score_for``) or a request (``score``) names."""

    def __init__(self, trainer_factory: TrainerFactory) -> None:
        self.trainer_factory = trainer_factory

    def score_for(
        self,
        strategy: Strategy,
        model: Any,
        data: ActiveDataModule,
        labeled: np.ndarray,
        unlabeled: np.ndarray,
        seed: int,
        directory: Path,
        probs: bool = False,
    ) -> ScoredPool:
        """Every array ``strategy.select`` reads, for a pool whose ``labeled`` and ``unlabeled`` rows are given.

        The outputs the strategy ``needs`` (seeded with ``seed``) over the unlabeled rows, and over the
        labeled rows where the strategy predicts them too (``predict_labeled``) or needs them first as
        a reference (``predict_labeled_first``); ``probs`` adds ``probs`` (a person's suggestions, the
        pool's max uncertainty); ``labels`` (the labeled rows' 0/1 labels, NaN elsewhere) where the
        strategy ``uses_labels``. ``directory`` holds the disk-backed arrays, as in ``score``.
        """
        request = strategy.prediction_request(seed)
        if probs:
            request = replace(request, needs=request.needs | {PROBS})
        if not request.needs:
            scored = ScoredPool()
        elif strategy.predict_labeled_first:
            scored = self.score(model, data, request, unlabeled, directory, reference_rows=labeled)
        else:
            rows = np.concatenate([unlabeled, labeled]) if strategy.predict_labeled else unlabeled
            scored = self.score(model, data, request, rows, directory)
        if strategy.uses_labels and distributed.is_writer():
            scored.outputs[LABELS] = label_rows(data)
        return scored

    def score(
        self,
        model: Any,
        data: ActiveDataModule,
        request: PredictionRequest,
        rows: np.ndarray,
        directory: Path,
        reference_rows: np.ndarray | None = None,
    ) -> ScoredPool:
        """Score pool ``rows`` (and first ``reference_rows``, when an output needs the labeled reference).

        ``directory`` holds the disk-backed arrays (``NAME.npy``; under DDP also the shards
        ``rank_K/`` until they are gathered, and the labeled pass in ``reference/``); the caller
        removes it when done.
        """
        assert data.pool is not None
        start = time.perf_counter()
        reference_names = flagged("reference") & request.needs
        reference: dict[str, np.ndarray] = {}
        if reference_rows is not None and reference_rows.size and reference_names:
            reference_rows = np.sort(np.asarray(reference_rows, dtype=np.int64))
            reference = self._reference(model, data, request, reference_rows, directory / "reference", reference_names)
            request = replace(request, reference=reference)
        store = self._run_pass(model, data, request, np.asarray(rows, dtype=np.int64), directory)
        if store is None:
            return ScoredPool({}, time.perf_counter() - start)
        for name, values in reference.items():  # the labeled rows' own values belong to the pool's arrays too
            store.write(name, reference_rows, values)
        store.flush()
        return ScoredPool(store.arrays(), time.perf_counter() - start)

    def _trainer(self, directory: Path, request: PredictionRequest):
        overrides: dict[str, Any] = {"logger": False, "use_distributed_sampler": False}
        if flagged("gradients") & request.needs:
            overrides["inference_mode"] = False  # Lightning predicts under inference_mode, which forbids autograd
        return self.trainer_factory(directory, [], overrides)

    def _run_pass(
        self, model: Any, data: ActiveDataModule, request: PredictionRequest, rows: np.ndarray, directory: Path
    ) -> PoolOutputStore | None:
        """One prediction pass over ``rows``; the gathered store on rank 0, None on the other ranks."""
        assert data.pool is not None
        n_pool = len(data.pool.ids)
        trainer = self._trainer(directory, request)
        rank, world = trainer.global_rank, trainer.world_size
        loader = data.predict_loader(rows, (rank, world))
        if world == 1:
            store = PoolOutputStore(n_pool, directory)
        else:
            shard_rows = np.sort(rows[loader.batch_sampler.positions()])
            store = PoolOutputStore(n_pool, directory / f"rank_{rank}", rows=shard_rows)
        trainer.predict(OutputPredictor(model, request, store), dataloaders=loader, return_predictions=False)
        if world == 1:
            return store
        distributed.barrier()  # every shard is on disk
        if not distributed.is_writer():
            return None
        shards = [directory / f"rank_{r}" for r in range(world)]
        gathered = gather_shards(shards, n_pool, directory)
        for shard in shards:
            shutil.rmtree(shard, ignore_errors=True)
        return gathered

    def _reference(
        self,
        model: Any,
        data: ActiveDataModule,
        request: PredictionRequest,
        rows: np.ndarray,
        directory: Path,
        names: frozenset[str],
    ) -> dict[str, np.ndarray]:
        """The values of the ``reference`` outputs at ``rows`` (ascending pool indices), on every rank."""
        labeled_request = replace(request, needs=frozenset(names), reference={})
        store = self._run_pass(model, data, labeled_request, rows, directory)
        reference = None
        if store is not None:
            arrays = store.arrays()
            reference = {name: np.ascontiguousarray(arrays[name][rows]) for name in sorted(names) if name in arrays}
        return distributed.broadcast(reference)



def label_rows(data: ActiveDataModule) -> np.ndarray:
    """(n, C) 0/1 label rows of the labeled examples, NaN elsewhere (the ``labels`` output)."""
    assert data.pool is not None
    labels = np.full((len(data.pool.ids), data.num_classes), np.nan, dtype=np.float32)
    index, targets = data.labeled_targets()
    labels[index] = targets
    return labels
