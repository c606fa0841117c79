"""Batch analysis of an experiment (STRATEGIES.md §2.1–§2.5), from the saved models and selections.

- D(B) and Rep(B) (IBM): once per (scenario, seed), on each strategy's first batch (round 0's
  query), with the embeddings of the shared round-0 model over the pool; U is the pool minus
  the initial set, so U includes B. Both the paper's and the IBM code's variants.
- Overlap (IBM): pairwise ``|B_a ∩ B_b| / k`` of those first batches, mean over seeds.
- Gd (ALPS): token-Jaccard between the cumulative queried set after each round and the rest of
  the pool, on the training token ids (special tokens in; no padding, which the ALPS code
  counted as one more shared token).
- Gu (ALPS): mean predictive entropy of the cumulative queried set under the all-data model;
  multi-label: the sum over labels of the binary entropies [R].

Pool embeddings and all-data probabilities are computed once and cached in
``EXPERIMENT/analysis/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import (
    batch_overlap,
    diversity,
    mean_entropy_under_reference_model,
    representativeness,
    token_jaccard_from_counts,
)
from ..data.state import INITIAL_ROUND, read_state_json
from ..rundir import STATE_FILE
from .grid import REFERENCE
from .pool_outputs import ScenarioPool, has_saved_model
from .results import Experiment


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    array = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return array


def _records(run_dir: Path) -> list[dict]:
    """The run's label records, in the current round numbering (``INITIAL_ROUND``: the initial set)."""
    return read_state_json(run_dir / STATE_FILE)["records"]


def _selected(run_dir: Path, round_index: int) -> np.ndarray | None:
    path = run_dir / "rounds" / f"round_{round_index:03d}" / "selected.csv"
    if not path.exists():
        return None
    return pd.read_csv(path)["pool_index"].to_numpy(dtype=np.int64)


def first_batch_analysis(experiment: Experiment, scenario: str, pool: ScenarioPool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """D(B), Rep(B) per (strategy, seed) and the mean pairwise overlap of the first batches."""
    rows, overlaps = [], []
    analysis_dir = experiment.directory / "analysis"
    for seed in experiment.manifest["seeds"]:
        round0 = experiment.cell_dirs.get((scenario, "round0", seed))
        if round0 is None or not has_saved_model(round0 / "model"):
            continue
        batches = {}
        for strategy in experiment.strategies:
            run_dir = experiment.cell_dirs.get((scenario, strategy, seed))
            picked = _selected(run_dir, 0) if run_dir is not None else None
            if picked is not None and picked.size:
                batches[strategy] = picked
        if not batches:
            continue
        embeddings = _cached(
            analysis_dir / f"{scenario}_seed{seed}_round0_embeddings.npy",
            lambda: pool.predict(round0 / "model", ["embeddings"])["embeddings"],
        )
        initial = {r["pool_index"] for r in _records(round0) if r["round"] == INITIAL_ROUND}
        unlabeled = np.array(sorted(set(range(embeddings.shape[0])) - initial), dtype=np.int64)
        position = np.full(embeddings.shape[0], -1, dtype=np.int64)
        position[unlabeled] = np.arange(unlabeled.size)
        u = embeddings[unlabeled].astype(np.float32)
        for strategy, picked in batches.items():
            b = position[picked]
            rows.append({
                "scenario": scenario, "strategy": strategy, "seed": seed, "batch": picked.size,
                "diversity_paper": diversity(u, u[b], mode="paper"),
                "diversity_ibm_code": diversity(u, u[b], mode="ibm_code") if picked.size > 1 else np.nan,
                "representativeness_paper": representativeness(u, b, k=10, include_self=False),
                "representativeness_ibm_code": representativeness(u, b, k=10, include_self=True),
            })
        names = list(batches)
        for i, a in enumerate(names):
            for b_name in names[i + 1:]:
                overlaps.append({"scenario": scenario, "a": a, "b": b_name, "seed": seed,
                                 "overlap": batch_overlap(batches[a], batches[b_name])})
    return pd.DataFrame(rows), pd.DataFrame(overlaps)


def cumulative_analysis(experiment: Experiment, scenario: str, pool: ScenarioPool) -> pd.DataFrame:
    """Gd and Gu of the cumulative queried set after each round, per (strategy, seed)."""
    analysis_dir = experiment.directory / "analysis"
    reference_dir = next((path for (cell_scenario, strategy, _), path in experiment.cell_dirs.items()
                          if cell_scenario == scenario and strategy == REFERENCE), None)
    probs = None
    if reference_dir is not None and has_saved_model(reference_dir / "model"):
        probs = _cached(analysis_dir / f"{scenario}_all_data_probs.npy",
                        lambda: pool.predict(reference_dir / "model", ["probs"])["probs"])
    multi_label = experiment.multi_label()
    tokens = total = None
    rows = []
    for strategy in experiment.strategies:
        for seed in experiment.manifest["seeds"]:
            run_dir = experiment.cell_dirs.get((scenario, strategy, seed))
            if run_dir is None:
                continue
            if tokens is None:
                tokens = pool.tokens()
                total = np.bincount(tokens.ids)
            queried = [r for r in _records(run_dir) if r["round"] != INITIAL_ROUND]
            in_d = np.zeros(len(tokens), dtype=bool)
            selected = np.zeros_like(total)
            for last_round in sorted({r["round"] for r in queried}):
                chosen = np.array([r["pool_index"] for r in queried if r["round"] <= last_round], dtype=np.int64)
                added = np.unique(chosen[~in_d[chosen]])  # D grows by this round's new rows
                in_d[added] = True
                if added.size:
                    ids = np.concatenate([tokens.row(i) for i in added])
                    selected += np.bincount(ids, minlength=total.size)
                row = {"scenario": scenario, "strategy": strategy, "seed": seed, "round": last_round,
                       "queried": int(chosen.size), "gd": token_jaccard_from_counts(selected, total)}
                if probs is not None:
                    p = probs[chosen]
                    row["gu"] = mean_entropy_under_reference_model(np.concatenate([p, 1 - p], axis=1) if multi_label else p)
                rows.append(row)
    return pd.DataFrame(rows)
