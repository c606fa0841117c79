"""``PoolScorer``: score pool rows with a model and hand back the arrays, by pool index.

The only place that knows how outputs are produced: prediction passes,
``inference_mode`` (off for outputs flagged ``gradients``), the labeled
reference pass (outputs flagged ``reference``: the labeled rows are scored
first and handed to the unlabeled pass), and, under DDP, sharding and
gathering. Each process scores every ``world``-th length-sorted batch (the
batches a single process would build, so results do not depend on the process
count), writes its rows into a disk-backed shard store, and rank 0 gathers the
shards into one pool-indexed store chunk by chunk; no process holds an n x d
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
from .outputs.catalog import PredictionRequest, flagged
from .outputs.collector import OutputCollector
from .outputs.store import PoolOutputStore, gather_shards

#: ``factory(round_dir, callbacks, overrides)``: a fresh Trainer built from the run's trainer config.
TrainerFactory = Callable[..., Any]


@dataclass
class ScoredPool:
    """What ``PoolScorer.score`` returns: pool-indexed arrays (on rank 0; empty on other ranks) and its seconds."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


class PoolScorer:
    """Runs the prediction passes that fill the outputs a request names."""

    def __init__(self, trainer_factory: TrainerFactory) -> None:
        self.trainer_factory = trainer_factory

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

    def _trainer(self, directory: Path, collector: OutputCollector, request: PredictionRequest):
        overrides: dict[str, Any] = {"logger": False, "use_distributed_sampler": False}
        if flagged("gradients") & request.needs:
            overrides["inference_mode"] = False  # Lightning predicts under inference_mode, which forbids autograd
        return self.trainer_factory(directory, [collector], overrides)

    def _run_pass(
        self, model: Any, data: ActiveDataModule, request: PredictionRequest, rows: np.ndarray, directory: Path
    ) -> PoolOutputStore | None:
        """One prediction pass over ``rows``; the gathered store on rank 0, None on the other ranks."""
        assert data.pool is not None
        n_pool = len(data.pool.ids)
        collector = OutputCollector(request)  # its store depends on the rank, known once the Trainer exists
        trainer = self._trainer(directory, collector, request)
        rank, world = trainer.global_rank, trainer.world_size
        if world == 1:
            collector.store = PoolOutputStore(n_pool, directory)
        else:
            shard_rows = rows[data.predict_batches(rows, (rank, world)).positions()]
            collector.store = PoolOutputStore(n_pool, directory / f"rank_{rank}", rows=np.sort(shard_rows))
        data.predict_rows, data.predict_shard = rows, (rank, world)
        # fewer batches than processes leave some shards empty; prediction has no collective, so such a
        # process just waits at the barrier below (Lightning refuses an empty shard unless told)
        data.allow_zero_length_dataloader_with_multiple_devices = True
        try:
            trainer.predict(model, datamodule=data, return_predictions=False)
        finally:
            data.predict_rows, data.predict_shard = np.empty(0, dtype=np.int64), (0, 1)
            data.allow_zero_length_dataloader_with_multiple_devices = False
        if world == 1:
            return collector.store
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

