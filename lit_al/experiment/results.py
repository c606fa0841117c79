"""Reading an experiment directory into tables: one row per (cell, round), and the summaries.

- :func:`load_experiment`: the manifest (``experiment.json``) and every finished cell's
  ``metrics.csv`` as one long table; or a report folder written earlier (its ``runs.csv``,
  ``references.csv`` and ``summary.json``), when the run directories are gone.
- :func:`merge_experiments`: the seeds of one grid run in several directories (other machines,
  other sessions, an earlier report) as one experiment.
- :func:`learning_curves`: mean ± std over seeds per (scenario, strategy, labeled).
- :func:`alc_table`, :func:`labels_to_reach_table`, :func:`significance_tables`,
  :func:`runtime_table`: the report's numbers (STRATEGIES.md §2.6–§2.8). The tests run
  per group of runs: one scenario (:func:`scenario_groups`) or every scenario of several
  experiments pooled, as IBM pooled the datasets of a scenario type (:func:`pooled_groups`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import area_under_learning_curve, labels_to_reach, wilcoxon_pairwise, wilcoxon_vs_reference
from ..errors import ConfigError
from .runner import run_finished

REFERENCE_STRATEGY = "random"


@dataclass
class Experiment:
    """An experiment directory's manifest and its finished cells' metrics."""

    directory: Path
    manifest: dict[str, Any]
    runs: pd.DataFrame  # strategy cells: scenario, strategy, seed, round, labeled, test_*, *_seconds
    references: pd.DataFrame  # all-data cells: scenario, seed, labeled, test_*
    unfinished: list[str] = field(default_factory=list)
    #: (scenario, strategy label, seed) -> run directory, None for an unfinished strategy or reference cell
    cell_dirs: dict[tuple[str, str, int], Path | None] = field(default_factory=dict)

    @cached_property
    def strategies(self) -> list[str]:
        present = set(self.runs["strategy"]) if not self.runs.empty else set()
        return [s for s in self.manifest["strategies"] if s in present]

    @cached_property
    def scenarios(self) -> list[str]:
        present = set(self.runs["scenario"]) if not self.runs.empty else set()
        return [s for s in self.manifest["scenarios"] if s in present]

    def multi_label(self) -> bool:
        return "test_subset_accuracy" in self.runs.columns

    def headline_metric(self, override: str | None = None) -> str:
        metric = override or self.manifest.get("metric")
        if not metric:
            if "test_target_f1" in self.runs.columns:
                metric = "test_target_f1"
            elif self.multi_label():
                metric = "test_micro_f1"
            else:
                metric = "test_accuracy"
        if metric not in self.runs.columns:
            known = sorted(c for c in self.runs.columns if c.startswith("test_"))
            raise ConfigError(f"metric {metric!r} is not in the runs' metrics; choose one of {known}")
        return metric


#: What a report folder keeps of its experiment (written by ``write_report``, read back by ``load_experiment``).
REPORT_RUNS, REPORT_REFERENCES, REPORT_SUMMARY = "runs.csv", "references.csv", "summary.json"


def load_experiment(directory: str | Path) -> Experiment:
    """An experiment directory (``experiment.json``), or a report folder that archives one."""
    directory = Path(directory)
    manifest_path = directory / "experiment.json"
    if not manifest_path.exists():
        if (directory / REPORT_RUNS).exists() and (directory / REPORT_SUMMARY).exists():
            return load_report_archive(directory)
        raise ConfigError(f"{directory}: no experiment.json (not written by lit_al experiment) "
                          f"and no {REPORT_RUNS} + {REPORT_SUMMARY} (not a report folder)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    frames, references, unfinished = [], [], []
    cell_dirs: dict[tuple[str, str, int], Path | None] = {}
    for cell in manifest["cells"]:
        run_dir = directory / cell["run_dir"]
        key = (cell["scenario"], cell["strategy"], cell["seed"])
        cell_dirs[key] = run_dir
        if cell["kind"] == "round0":
            continue
        if not run_finished(run_dir):
            unfinished.append(cell["name"])
            cell_dirs[key] = None
            continue
        frame = pd.read_csv(run_dir / "metrics.csv")
        frame["scenario"], frame["strategy"], frame["seed"] = cell["scenario"], cell["strategy"], cell["seed"]
        frame["run_dir"] = str(run_dir)
        (references if cell["kind"] == "reference" else frames).append(frame)
    if not frames:
        raise ConfigError(f"{directory}: no finished strategy cell yet")
    runs = pd.concat(frames, ignore_index=True).sort_values(["scenario", "strategy", "seed", "round"], ignore_index=True)
    refs = pd.concat(references, ignore_index=True) if references else pd.DataFrame()
    return Experiment(directory, manifest, runs, refs, unfinished, cell_dirs)


def load_report_archive(directory: Path) -> Experiment:
    """The runs a report folder kept: curves, ALC and tests work; batch analysis has no cells to read.

    The all-data references come from ``references.csv`` (reports before it kept only
    their mean, in ``summary.json``; those archives have none). Cells the report listed
    as unfinished are not carried over: they may have been run elsewhere since.
    """
    summary = json.loads((directory / REPORT_SUMMARY).read_text(encoding="utf-8"))
    missing = [key for key in ("strategies", "scenarios", "seeds", "headline_metric") if key not in summary]
    if missing:
        raise ConfigError(f"{directory / REPORT_SUMMARY}: not an experiment report's summary (no {', '.join(missing)})")
    runs = pd.read_csv(directory / REPORT_RUNS)
    needed = {"scenario", "strategy", "seed", "round", "labeled"} - set(runs.columns)
    if needed:
        raise ConfigError(f"{directory / REPORT_RUNS}: missing column(s) {sorted(needed)}")
    runs["run_dir"] = None
    references_path = directory / REPORT_REFERENCES
    refs = pd.read_csv(references_path) if references_path.exists() else pd.DataFrame()
    manifest = {"strategies": summary["strategies"], "scenarios": summary["scenarios"], "seeds": summary["seeds"],
                "metric": summary["headline_metric"], "cells": []}
    return Experiment(directory, manifest, runs, refs)


def merge_experiments(experiments: list[Experiment]) -> Experiment:
    """Several directories of one grid as one experiment: their seeds side by side.

    A (scenario, strategy, seed) present in two of them is an error, not a silent choice.
    The first directory with run directories holds the merged analysis cache.
    """
    if len(experiments) == 1:
        return experiments[0]
    seen: dict[tuple, Path] = {}
    for experiment in experiments:
        for key in experiment.runs[["scenario", "strategy", "seed"]].drop_duplicates().itertuples(index=False):
            if tuple(key) in seen:
                scenario, strategy, seed = key
                raise ConfigError(f"merge: {scenario}/{strategy}/seed {seed} is in both {seen[tuple(key)]} and "
                                  f"{experiment.directory}; give each seed once")
            seen[tuple(key)] = experiment.directory
    runs = pd.concat([e.runs for e in experiments], ignore_index=True)
    references = [e.references for e in experiments if not e.references.empty]
    cell_dirs: dict[tuple[str, str, int], Path | None] = {}
    for experiment in experiments:
        for key, path in experiment.cell_dirs.items():
            if path is not None or key not in cell_dirs:
                cell_dirs[key] = path
    manifest = dict(
        experiments[0].manifest,
        strategies=list(dict.fromkeys(s for e in experiments for s in e.manifest["strategies"])),
        scenarios=list(dict.fromkeys(s for e in experiments for s in e.manifest["scenarios"])),
        seeds=sorted({int(s) for e in experiments for s in e.manifest["seeds"]}),
        cells=[],  # paths relative to several directories: the merged cells are ``cell_dirs``
    )
    return Experiment(
        directory=next((e.directory for e in experiments if e.manifest["cells"]), experiments[0].directory),
        manifest=manifest,
        runs=runs.sort_values(["scenario", "strategy", "seed", "round"], ignore_index=True),
        references=pd.concat(references, ignore_index=True) if references else pd.DataFrame(),
        unfinished=[name for e in experiments for name in e.unfinished if _cell_key(name) not in seen],
        cell_dirs=cell_dirs,
    )


def _cell_key(name: str) -> tuple[str, str, int]:
    """``SCENARIO/STRATEGY/seed_S`` (a cell's name) as its (scenario, strategy, seed)."""
    scenario, strategy, seed = name.split("/")
    return scenario, strategy, int(seed.removeprefix("seed_"))


# -------------------------------------------------------------- learning curves
def learning_curves(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean, std and count over seeds of each metric per (scenario, strategy, round, labeled)."""
    grouped = runs.groupby(["scenario", "strategy", "round", "labeled"], sort=True)[metrics]
    out = grouped.agg(["mean", "std", "count"])
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    return out.reset_index()


def curve_matrix(runs: pd.DataFrame, scenario: str, strategy: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(labeled sizes, seeds × rounds metric matrix) of one strategy; seeds missing a round are dropped."""
    part = runs[(runs["scenario"] == scenario) & (runs["strategy"] == strategy)]
    table = part.pivot_table(index="seed", columns="labeled", values=metric, aggfunc="first").dropna()
    return table.columns.to_numpy(dtype=float), table.to_numpy(dtype=float)


def reference_metric(experiment: Experiment, scenario: str, metric: str) -> tuple[float, int] | None:
    """Mean all-data metric of a scenario and the pool size, if its reference cell finished."""
    refs = experiment.references
    if refs.empty or metric not in refs.columns:
        return None
    part = refs[refs["scenario"] == scenario]
    if part.empty:
        return None
    return float(part[metric].mean()), int(part["labeled"].max())


# -------------------------------------------------------------- §2.6 b and §2.7
def alc_table(experiment: Experiment, metric: str) -> pd.DataFrame:
    """Area under the learning curve per seed, then mean ± std (STRATEGIES.md §2.6 b)."""
    rows = []
    for scenario in experiment.scenarios:
        for strategy in experiment.strategies:
            sizes, matrix = curve_matrix(experiment.runs, scenario, strategy, metric)
            if matrix.size == 0 or sizes.size < 2:
                continue
            areas = np.atleast_1d(area_under_learning_curve(sizes, matrix))
            rows.append({"scenario": scenario, "strategy": strategy, "metric": metric, "alc_mean": areas.mean(),
                         "alc_std": areas.std(ddof=1) if areas.size > 1 else np.nan, "seeds": areas.size,
                         "from_labels": sizes[0], "to_labels": sizes[-1]})
    return pd.DataFrame(rows)


def labels_to_reach_table(experiment: Experiment, metric: str) -> pd.DataFrame:
    """Labels needed for the mean curve to reach the all-data metric (BEAL; STRATEGIES.md §2.7)."""
    rows = []
    for scenario in experiment.scenarios:
        reference = reference_metric(experiment, scenario, metric)
        if reference is None:
            continue
        target, pool_size = reference
        for strategy in experiment.strategies:
            sizes, matrix = curve_matrix(experiment.runs, scenario, strategy, metric)
            if matrix.size == 0:
                continue
            reach = labels_to_reach(sizes, matrix.mean(axis=0), target, pool_size)
            rows.append({"scenario": scenario, "strategy": strategy, "metric": metric, "all_data": target,
                         "pool_size": pool_size, "best_mean": float(matrix.mean(axis=0).max()),
                         "reached": reach.reached, "labels_interpolated": reach.n_interpolated,
                         "labels_grid": reach.n_grid, "fraction_interpolated": reach.fraction_interpolated,
                         "fraction_grid": reach.fraction_grid})
    return pd.DataFrame(rows)


# -------------------------------------------------------------- §2.8
#: Runs grouped for the tests: a group name -> its rows (column ``scenario`` identifies the dataset).
Groups = dict[str, pd.DataFrame]


def scenario_groups(experiment: Experiment) -> Groups:
    """One group per scenario: the pairs of one dataset and initial set (this library's default grouping)."""
    return {s: experiment.runs[experiment.runs["scenario"] == s] for s in experiment.scenarios}


def pooled_groups(experiments: list[Experiment]) -> tuple[Groups, list[str], list[str]]:
    """One group pooling every scenario of every experiment (IBM: all datasets of a scenario type).

    Each scenario is renamed ``EXPERIMENT/SCENARIO`` so that its (seed, round) pairs stay
    distinct. Returns ``({"pooled": runs}, the pooled scenarios, the strategies every
    experiment has)``; strategies missing from some experiment are left out of the pool.
    """
    names = [e.directory.name for e in experiments]
    if len(set(names)) != len(names):
        raise ConfigError(f"experiments to pool must have distinct directory names, got {names}")
    common = [s for s in experiments[0].strategies if all(s in e.strategies for e in experiments[1:])]
    frames = [e.runs.assign(scenario=e.directory.name + "/" + e.runs["scenario"]) for e in experiments]
    runs = pd.concat(frames, ignore_index=True)
    return {"pooled": runs}, sorted(runs["scenario"].unique().tolist()), common


def paired_scores(runs: pd.DataFrame, strategies: list[str], metric: str) -> tuple[dict[str, np.ndarray], int]:
    """Each strategy's metric over the (scenario, seed, round ≥ 1) keys every strategy has.

    IBM pairs strategies by (dataset, seed, iteration), iteration 0 excluded because it is
    shared (STRATEGIES.md §2.8). ``runs`` is one group (one scenario, or a pool of them).
    Returns the aligned arrays and the number of (scenario, seed) runs behind them.
    """
    part = runs[(runs["round"] >= 1) & runs["strategy"].isin(strategies)]
    table = part.pivot_table(index=["scenario", "seed", "round"], columns="strategy", values=metric, aggfunc="first").dropna()
    units = table.index.droplevel("round").nunique() if not table.empty else 0
    return {s: table[s].to_numpy(dtype=float) for s in strategies if s in table.columns}, units


def significance_tables(
    groups: Groups, strategies: list[str], metric: str, reference: str = REFERENCE_STRATEGY
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wilcoxon signed-rank + Bonferroni vs ``reference`` and pairwise within each group (IBM; STRATEGIES.md §2.8), two-sided.

    Column ``scenario`` names the group; ``seeds`` counts its (scenario, seed) runs.
    """
    versus, pairwise = [], []
    for group, runs in groups.items():
        scores, seeds = paired_scores(runs, strategies, metric)
        if len(scores) < 2 or min(len(v) for v in scores.values()) < 1:
            continue
        if reference in scores:
            for name, result in wilcoxon_vs_reference(scores, reference).items():
                diff = scores[name] - scores[reference]
                versus.append({"scenario": group, "strategy": name, "reference": reference, "metric": metric,
                               "mean_difference": float(diff.mean()), "wins": int((diff > 0).sum()),
                               "losses": int((diff < 0).sum()), "pairs": result.n_pairs, "seeds": seeds,
                               "p_value": result.p_value, "p_bonferroni": result.p_adjusted,
                               "comparisons": result.n_comparisons, "significant": result.significant,
                               "note": result.note or ""})
        for (a, b), result in wilcoxon_pairwise(scores).items():
            pairwise.append({"scenario": group, "a": a, "b": b, "metric": metric,
                             "mean_difference": float((scores[a] - scores[b]).mean()), "pairs": result.n_pairs,
                             "p_value": result.p_value, "p_bonferroni": result.p_adjusted,
                             "comparisons": result.n_comparisons, "significant": result.significant})
    return pd.DataFrame(versus), pd.DataFrame(pairwise)


def component_differences(
    groups: Groups, strategies: list[str], metrics: list[str], reference: str = REFERENCE_STRATEGY
) -> pd.DataFrame:
    """Mean difference to ``reference`` over the same (scenario, seed, round ≥ 1) pairs, for each metric (e.g. P and R)."""
    rows = []
    for group, runs in groups.items():
        for metric in metrics:
            if metric not in runs.columns:
                continue
            scores, _ = paired_scores(runs, strategies, metric)
            if reference not in scores:
                continue
            for name, values in scores.items():
                if name != reference:
                    rows.append({"scenario": group, "strategy": name, "metric": metric,
                                 "mean_difference": float((values - scores[reference]).mean())})
    return pd.DataFrame(rows)


# -------------------------------------------------------------- runtime
RUNTIME_COLUMNS = {"fit_seconds": "fit", "predict_seconds": "pool inference", "select_seconds": "selection"}


def runtime_table(experiment: Experiment) -> pd.DataFrame:
    """Mean seconds per round per strategy: fit (rounds ≥ 1; round 0 is shared), pool inference, selection."""
    runs = experiment.runs
    rows = []
    for scenario in experiment.scenarios:
        for strategy in experiment.strategies:
            part = runs[(runs["scenario"] == scenario) & (runs["strategy"] == strategy)]
            row = {"scenario": scenario, "strategy": strategy}
            for column, label in RUNTIME_COLUMNS.items():
                if column not in part:
                    row[label] = np.nan
                    continue
                values = part.loc[part["round"] >= 1, column] if column == "fit_seconds" else part[column]
                row[label] = float(values.dropna().mean()) if values.notna().any() else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def runtime_by_round(experiment: Experiment) -> pd.DataFrame:
    """Mean seconds over seeds per (scenario, strategy, round) of fit, pool inference and selection."""
    columns = [c for c in RUNTIME_COLUMNS if c in experiment.runs.columns]
    table = experiment.runs.groupby(["scenario", "strategy", "round"])[columns].mean().reset_index()
    return table.rename(columns=RUNTIME_COLUMNS)
