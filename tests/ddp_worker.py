"""Score a pool with saved weights through ``PoolScorer`` on N CPU processes, select with several
strategies, then fit one epoch (validating on the dev set) and test.

Run as ``python ddp_worker.py MODEL DATA WEIGHTS DEVICES OUT``: Lightning's DDP launcher
re-runs this script for the other ranks (gloo backend). The data module keeps its default
batch sizes for the fit and test, so a small dev or test set is one evaluation batch, fewer
than the processes (pool scoring: see ``STRATEGIES``).
Rank 0 writes to OUT as JSON ``{"world", "results": {strategy: {"indices", "scores"}},
"val": {...}, "test": {eval_batch_size: {...}}}`` (the metrics every rank logged after the
fit's last validation, and ``trainer.test`` at the default and at a small eval batch size),
and the weights after the fit to ``OUT.pt``. ``test_ddp.py`` compares the picks with a
1-process run of the same weights, and the metrics with one process evaluating the weights
the fit ended with.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from lit_al import distributed
from lit_al.data.module import ActiveDataModule
from lit_al.data.state import LabelState
from lit_al.model import TextClassifier, load_tokenizer
from lit_al.scoring import PoolScorer
from lit_al.strategies import get_strategy

#: Pool-scoring batch size of most strategies: the 64 unlabeled rows make 8 batches, dealt to the
#: processes and gathered back; at the default (128) they are one batch, scored by one process.
SHARDED = 8
#: (report name, strategy spec, eval batch size) compared between process counts; ALDEN (a labeled
#: reference pass, then the pool, with gradients) also at the default size, where processes sit idle;
#: a plug-in strategy whose outputs take gradients, a labeled reference and a sample axis
#: (``plugins/flagged_outputs.py``).
STRATEGIES = [
    ("entropy", {"name": "entropy"}, SHARDED),
    ("margin", {"name": "margin"}, SHARDED),
    ("coreset", {"name": "coreset"}, SHARDED),
    ("kmeans", {"name": "kmeans"}, SHARDED),
    ("badge", {"name": "badge"}, SHARDED),
    ("bald_head", {"name": "bald", "mc_scope": "head", "mc_passes": 5}, SHARDED),
    ("egl_full", {"name": "egl", "variant": "full"}, SHARDED),
    ("alden", {"name": "alden"}, SHARDED),
    ("cal", {"name": "cal"}, SHARDED),
    ("alden_one_batch", {"name": "alden"}, 128),
    ("plugin_flagged", {"class": "plugins.flagged_outputs.LargestFlaggedScore", "samples": 3}, SHARDED),
]
SEED = 11
#: Eval batch sizes ``trainer.test`` runs at after the fit: the default (one batch for a small
#: test set) and a small one (more batches than processes, dealt unevenly).
TEST_BATCH_SIZES = (128, 8)


def data_module(data_dir: str, **options) -> ActiveDataModule:
    """The worker's data: pool, dev and test files, default batch sizes unless ``options`` say otherwise."""
    return ActiveDataModule(train=f"{data_dir}/train.csv", dev=f"{data_dir}/dev.csv", test=f"{data_dir}/test.csv",
                            max_length=16, **options)


def metrics(logged: dict) -> dict[str, float]:
    """The val_/test_ entries of logged metrics, as floats."""
    return {k: float(v) for k, v in logged.items() if k.startswith(("val_", "test_"))}


def _strategy(spec: dict):
    """A built-in strategy by ``name``, or a plug-in's by ``class`` (a ``module.Class`` path, as a config's class_path)."""
    if "class" not in spec:
        return get_strategy(spec.pop("name"), **spec)
    module, _, name = spec.pop("class").rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec)


def main(model_dir: str, data_dir: str, weights: str, devices: int, out: str) -> None:
    torch.set_num_threads(1)
    data = data_module(data_dir)
    data.load()
    data.tokenize(load_tokenizer({"model_name_or_path": model_dir}))
    state = LabelState(data.pool.ids)
    labeled = np.arange(0, len(data.pool.ids), 5)
    state.add(labeled, [data.pool.gold[i] for i in labeled], round=-1, source="seed")  # the initial set
    data.state = state
    unlabeled = state.unlabeled_indices()
    model = TextClassifier(model_name_or_path=model_dir, **data.task_info())
    model.load_state_dict(torch.load(weights, weights_only=True))

    def trainer(directory, callbacks, overrides):
        return pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                          logger=False, enable_progress_bar=False, enable_model_summary=False,
                          enable_checkpointing=False, callbacks=callbacks, default_root_dir=str(directory),
                          **{k: v for k, v in overrides.items() if k != "logger"})

    scorer = PoolScorer(trainer)
    results = {}
    scratch = Path(out).parent / f"scratch_{devices}"
    for name, spec, eval_batch_size in STRATEGIES:
        data.eval_batch_size = eval_batch_size
        spec = dict(spec)
        strategy = _strategy(spec)
        scored = scorer.score_for(strategy, model, data, labeled, unlabeled, SEED, scratch / name)
        if distributed.is_writer():
            selection = strategy.select(scored.outputs, labeled, unlabeled, 6, seed=SEED)
            results[name] = {"indices": selection.indices.tolist(), "scores": selection.scores.tolist()}
    data.eval_batch_size = TEST_BATCH_SIZES[0]
    fitted = trainer(scratch / "fit", [], {"max_epochs": 1, "use_distributed_sampler": False})
    fitted.fit(model, datamodule=data)
    val = metrics(fitted.callback_metrics)
    tests = {}
    for size in TEST_BATCH_SIZES:
        data.eval_batch_size = size
        tests[size] = metrics(fitted.test(model, datamodule=data, verbose=False)[0])
    if distributed.is_writer():
        torch.save(model.state_dict(), f"{out}.pt")
        Path(out).write_text(json.dumps({"world": distributed.world()[1], "results": results, "val": val,
                                         "test": tests}))
    distributed.end_group()


if __name__ == "__main__":
    model_dir, data_dir, weights, devices, out = sys.argv[1:6]
    main(model_dir, data_dir, weights, int(devices), out)
