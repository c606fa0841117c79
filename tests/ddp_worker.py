"""Score a pool with saved weights through ``PoolScorer`` on N CPU processes, select with several strategies.

Run as ``python ddp_worker.py MODEL DATA WEIGHTS DEVICES OUT``: Lightning's DDP launcher
re-runs this script for the other ranks (gloo backend). Rank 0 writes
``{strategy: {"indices": [...], "scores": [...]}}`` to OUT as JSON. ``test_ddp.py``
compares a 2-process run with a 1-process run of the same weights.
"""

from __future__ import annotations

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
from lit_al.outputs.catalog import LABELS
from lit_al.scoring import PoolScorer
from lit_al.strategies import get_strategy

#: (report name, strategy spec) compared between process counts.
STRATEGIES = [
    ("entropy", {"name": "entropy"}),
    ("margin", {"name": "margin"}),
    ("coreset", {"name": "coreset"}),
    ("kmeans", {"name": "kmeans"}),
    ("badge", {"name": "badge"}),
    ("bald_head", {"name": "bald", "mc_scope": "head", "mc_passes": 5}),
    ("egl_full", {"name": "egl", "variant": "full"}),
    ("alden", {"name": "alden"}),
    ("cal", {"name": "cal"}),
]
SEED = 11


def main(model_dir: str, data_dir: str, weights: str, devices: int, out: str) -> None:
    torch.set_num_threads(1)
    data = ActiveDataModule(train=f"{data_dir}/train.csv", max_length=16, eval_batch_size=8)
    data.load()
    data.tokenize(load_tokenizer({"model_name_or_path": model_dir}))
    state = LabelState(data.pool.ids)
    labeled = np.arange(0, len(data.pool.ids), 5)
    state.add(labeled, [data.pool.gold[i] for i in labeled], round=0, source="seed")
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
    for name, spec in STRATEGIES:
        spec = dict(spec)
        strategy = get_strategy(spec.pop("name"), **spec)
        request = strategy.prediction_request(SEED)
        if strategy.predict_labeled_first:
            scored = scorer.score(model, data, request, unlabeled, scratch / name, reference_rows=labeled)
        else:
            rows = np.concatenate([unlabeled, labeled]) if strategy.predict_labeled else unlabeled
            scored = scorer.score(model, data, request, rows, scratch / name)
        if distributed.is_writer():
            outputs = dict(scored.outputs)
            if strategy.uses_labels:
                labels = np.full((len(data.pool.ids), data.num_classes), np.nan, dtype=np.float32)
                index, targets = data.labeled_targets()
                labels[index] = targets
                outputs[LABELS] = labels
            selection = strategy.select(outputs, labeled, unlabeled, 6, seed=SEED)
            results[name] = {"indices": selection.indices.tolist(), "scores": selection.scores.tolist()}
    if distributed.is_writer():
        Path(out).write_text(json.dumps({"world": distributed.world()[1], "results": results}))


if __name__ == "__main__":
    model_dir, data_dir, weights, devices, out = sys.argv[1:6]
    main(model_dir, data_dir, weights, int(devices), out)
