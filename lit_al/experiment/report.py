"""``lit_al report EXPERIMENT_DIR``: Markdown + PNG figures + CSV/JSON of an experiment.

Sections: learning curves (mean ± std over seeds; precision and recall for one-vs-rest
tasks; micro and macro F1 for multi-label), ALC (STRATEGIES.md §2.6 b), labels to reach
the all-data metric (§2.7), Wilcoxon signed-rank + Bonferroni vs Random and pairwise (§2.8),
batch analysis (§2.1–§2.5) and runtime per round split into fit / pool inference / selection.
Only finished cells are used; unfinished ones are listed.

``lit_al report EXP_A EXP_B ... --pool true`` (:func:`write_pooled_report`) writes the significance
tests alone, over the pairs of every scenario of every experiment pooled (IBM's grouping when
they are all of one scenario type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_write_json, atomic_write_text
from ..errors import ConfigError
from .figures import gd_gu_figure, learning_curve_figure, pretty, runtime_figure
from .results import (
    REFERENCE_STRATEGY,
    REPORT_REFERENCES,
    REPORT_RUNS,
    REPORT_SUMMARY,
    alc_table,
    component_differences,
    labels_to_reach_table,
    learning_curves,
    load_experiment,
    merge_experiments,
    reference_metric,
    pooled_groups,
    runtime_by_round,
    runtime_table,
    scenario_groups,
    significance_tables,
)


def markdown_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A GitHub Markdown table; ``formats`` maps a column to a format spec (e.g. ``.3f``)."""
    formats = formats or {}

    def cell(column: str, value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            if math.isnan(value):
                return "—"
            return format(value, formats.get(column, ".4g"))
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _p(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2g}"


def _curve_metrics(experiment, headline: str) -> tuple[list[str], list[list[str]]]:
    """The metrics with learning curves, and how they are grouped into figures."""
    metrics = [headline]
    columns = experiment.runs.columns
    if experiment.multi_label():
        metrics += [m for m in ("test_micro_f1", "test_macro_f1") if m in columns and m != headline]
    if "test_target_precision" in columns:
        metrics += [m for m in ("test_target_precision", "test_target_recall") if m != headline]
    groups = [[headline] + ([m for m in metrics if m in ("test_micro_f1", "test_macro_f1") and m != headline])]
    if "test_target_precision" in metrics:
        groups.append(["test_target_precision", "test_target_recall"])
    return metrics, groups


def write_report(
    experiment_dirs: str | Path | list[str | Path], out_dir: str | Path | None = None, metric: str | None = None,
    batch_analysis: bool = True,
) -> Path:
    """The report of one experiment, or of several directories of one grid merged as more seeds.

    A directory is one written by ``lit_al experiment`` or a report folder written by this
    function (``runs.csv`` and ``references.csv`` keep what the tables need); the batch
    analysis reads run directories and covers the seeds that still have them.
    """
    dirs = [experiment_dirs] if isinstance(experiment_dirs, (str, Path)) else list(experiment_dirs)
    experiment = merge_experiments([load_experiment(d) for d in dirs])
    out = Path(out_dir) if out_dir else experiment.directory / "report"
    tables = _ReportTables.compute(experiment, experiment.headline_metric(metric))
    name = " + ".join(Path(d).name for d in dirs) if len(dirs) > 1 else experiment.directory.name
    lines = _report_header(experiment, tables, name, dirs)
    figure_paths: dict[str, list[str]] = {}
    batch_results: dict[str, list[dict[str, Any]]] = {}
    for scenario in experiment.scenarios:
        lines += _scenario_section(experiment, tables, scenario, out / "figures", figure_paths,
                                   batch_results if batch_analysis else None)
    summary = {
        "experiment": name,
        "merged_from": [str(d) for d in dirs] if len(dirs) > 1 else None,
        "headline_metric": tables.headline,
        "strategies": experiment.strategies,
        "scenarios": experiment.scenarios,
        "seeds": _seeds(experiment),
        "unfinished_cells": experiment.unfinished,
        "alc": tables.alc.to_dict("records"),
        "labels_to_reach": tables.reach.to_dict("records"),
        "significance_grouping": "scenario: the (seed, round >= 1) pairs of each scenario alone",
        "wilcoxon_vs_random": tables.versus.to_dict("records"),
        "wilcoxon_pairwise": tables.pairwise.to_dict("records"),
        "differences_vs_random": tables.components.to_dict("records"),
        "runtime_seconds_per_round": tables.runtime.to_dict("records"),
        "batch_analysis": batch_results,
        "figures": figure_paths,
    }
    return _write_report_files(out, experiment, tables, summary, lines)


@dataclass(frozen=True)
class _ReportTables:
    """Every table of a report, computed once from the finished cells (``results`` does the statistics)."""

    headline: str
    curve_metrics: list[str]
    groups: list[list[str]]
    curves: pd.DataFrame
    alc: pd.DataFrame
    reach: pd.DataFrame
    versus: pd.DataFrame
    pairwise: pd.DataFrame
    components: pd.DataFrame
    runtime: pd.DataFrame
    per_round: pd.DataFrame

    @classmethod
    def compute(cls, experiment, headline: str) -> _ReportTables:
        curve_metrics, groups = _curve_metrics(experiment, headline)
        summary_metrics = [headline] + (
            ["test_macro_f1"] if experiment.multi_label() and headline != "test_macro_f1" else []
        )
        by_scenario = scenario_groups(experiment)
        versus, pairwise = significance_tables(by_scenario, experiment.strategies, headline)
        return cls(
            headline=headline,
            curve_metrics=curve_metrics,
            groups=groups,
            curves=learning_curves(experiment.runs, curve_metrics),
            alc=pd.concat([alc_table(experiment, m) for m in summary_metrics], ignore_index=True),
            reach=pd.concat([labels_to_reach_table(experiment, m) for m in summary_metrics], ignore_index=True),
            versus=versus,
            pairwise=pairwise,
            components=component_differences(by_scenario, experiment.strategies, curve_metrics),
            runtime=runtime_table(experiment),
            per_round=runtime_by_round(experiment),
        )


def _seeds(experiment) -> list:
    return sorted(experiment.runs["seed"].unique().tolist())


def _report_header(experiment, tables: _ReportTables, name: str, dirs: list[str | Path]) -> list[str]:
    """The title and the facts of the report: what was merged, strategies, seeds, cells used and left out."""
    lines: list[str] = [f"# Experiment report: {name}", ""]
    if len(dirs) > 1:
        lines.append("- Merged from: " + ", ".join(f"`{d}`" for d in dirs) + " (the seeds of each, side by side).")
    cells = experiment.runs.groupby(["scenario", "strategy", "seed"]).ngroups
    lines += [
        f"- Strategies: {', '.join(experiment.strategies)}; scenarios: {', '.join(experiment.scenarios)}; "
        f"seeds with finished cells: {_seeds(experiment)}.",
        f"- Headline metric: **{pretty(tables.headline)}** (test set). Cells used: {cells} finished.",
    ]
    if experiment.unfinished:
        grouped: dict[str, list[str]] = {}
        for cell in experiment.unfinished:  # SCENARIO/STRATEGY/seed_S
            scenario, strategy, seed = cell.split("/")
            grouped.setdefault(f"{scenario} {seed.replace('_', ' ')}", []).append(strategy)
        lines.append(f"- Unfinished cells, left out ({len(experiment.unfinished)}): "
                     + "; ".join(f"{key}: {', '.join(names)}" for key, names in grouped.items()) + ".")
    lines.append("")
    return lines


def _scenario_section(
    experiment, tables: _ReportTables, scenario: str, figures: Path, figure_paths: dict[str, list[str]],
    batch_results: dict[str, list[dict[str, Any]]] | None,
) -> list[str]:
    """One scenario's part of the report, in order; figures are written and listed in ``figure_paths``.

    ``batch_results``: where the batch analysis records its numbers (None: no batch analysis).
    """
    strategies = experiment.strategies
    lines = _curves_section(experiment, tables, scenario, figures, figure_paths)
    lines += _alc_section(tables.alc, scenario)
    lines += _reach_section(tables.reach, scenario)
    lines += _significance_section(tables.versus, tables.pairwise, tables.components, scenario, strategies,
                                   tables.headline, tables.curve_metrics,
                                   f"scenario `{scenario}` alone (its seeds × rounds; "
                                   "`lit_al report EXP_A EXP_B ... --pool true` pools scenarios and experiments)")
    if batch_results is not None:
        lines += _batch_section(experiment, scenario, strategies, figures, figure_paths, batch_results)
    lines += _runtime_section(tables, scenario, strategies, figures, figure_paths)
    return lines


def _curves_section(
    experiment, tables: _ReportTables, scenario: str, figures: Path, figure_paths: dict[str, list[str]]
) -> list[str]:
    """The learning-curve figures and tables of a scenario, with its all-data reference."""
    references = {m: reference_metric(experiment, scenario, m) for m in tables.curve_metrics}
    references = {m: v[0] for m, v in references.items() if v is not None}
    lines = [f"## {scenario}", "", "### Learning curves (mean ± std over seeds)", ""]
    for number, group in enumerate(tables.groups):
        name = f"{scenario}_curves_{number}.png"
        learning_curve_figure(tables.curves, scenario, group, experiment.strategies, figures / name, references)
        figure_paths.setdefault(scenario, []).append(f"figures/{name}")
        lines += [f"![{', '.join(pretty(m) for m in group)}](figures/{name})", ""]
    if references:
        lines += ["All-data reference (trained on the whole pool): "
                  + ", ".join(f"{pretty(m)} {v:.4f}" for m, v in references.items()), ""]
    for m in tables.curve_metrics:
        lines += [f"{pretty(m)}:", "", markdown_table(_curve_table(tables.curves, scenario, experiment.strategies, m)), ""]
    return lines


def _alc_section(alc: pd.DataFrame, scenario: str) -> list[str]:
    """The area under the learning curve of each strategy and metric (§2.6 b)."""
    lines = ["### Area under the learning curve (§2.6 b; trapezoid, normalised; mean ± std over seeds)", ""]
    part = alc[alc["scenario"] == scenario] if not alc.empty else alc
    if not part.empty:
        table = part.assign(ALC=[f"{a:.4f} ± {s:.4f}" if not math.isnan(s) else f"{a:.4f}"
                                 for a, s in zip(part["alc_mean"], part["alc_std"])])
        lines += [markdown_table(table[["strategy", "metric", "ALC", "seeds"]].assign(metric=table["metric"].map(pretty))), ""]
    return lines


def _reach_section(reach: pd.DataFrame, scenario: str) -> list[str]:
    """The labels each strategy needed to reach the all-data metric (§2.7)."""
    part = reach[reach["scenario"] == scenario] if not reach.empty else reach
    lines = ["### Labels needed to reach the all-data metric (§2.7; mean curve over seeds)", ""]
    if part.empty:
        return lines + ["No all-data reference cell finished for this scenario.", ""]
    table = pd.DataFrame({
        "strategy": part["strategy"], "metric": part["metric"].map(pretty), "all data": part["all_data"],
        "best mean": part["best_mean"], "reached": part["reached"],
        "labels (interpolated)": part["labels_interpolated"], "labels (grid)": part["labels_grid"],
        "% of pool (interp.)": 100 * part["fraction_interpolated"],
    })
    return lines + [markdown_table(table, {"all data": ".4f", "best mean": ".4f", "labels (interpolated)": ".0f",
                                           "labels (grid)": ".0f", "% of pool (interp.)": ".1f"}),
                    "", "A curve that never reaches the target counts as 100% of the pool (§2.7).", ""]


def _runtime_section(
    tables: _ReportTables, scenario: str, strategies: list[str], figures: Path, figure_paths: dict[str, list[str]]
) -> list[str]:
    """Seconds per round of a scenario: the mean table, its figure, and round by round."""
    part = tables.runtime[tables.runtime["scenario"] == scenario]
    name = f"{scenario}_runtime.png"
    runtime_figure(tables.runtime, scenario, figures / name)
    figure_paths.setdefault(scenario, []).append(f"figures/{name}")
    return ["### Runtime per round (seconds; mean over rounds and seeds)", "",
            markdown_table(part.drop(columns="scenario"), {"fit": ".1f", "pool inference": ".1f", "selection": ".2f"}),
            "", "Fit excludes round 0 (one shared model per seed).", "", f"![runtime](figures/{name})", "",
            "Per round (fit of the round's model / pool inference / selection for the next batch; seconds):", "",
            markdown_table(_runtime_rounds_table(tables.per_round, scenario, strategies)), ""]


def _write_report_files(
    out: Path, experiment, tables: _ReportTables, summary: dict[str, Any], lines: list[str]
) -> Path:
    """Write the CSV tables, ``summary.json`` and ``report.md`` (each atomically); return the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "curves.csv", tables.curves.to_csv(index=False))
    atomic_write_text(out / "runtime.csv", tables.per_round.to_csv(index=False))
    atomic_write_text(out / REPORT_RUNS, experiment.runs.drop(columns=["run_dir"]).to_csv(index=False))
    if not experiment.references.empty:
        references = experiment.references.drop(columns=["run_dir"], errors="ignore")
        atomic_write_text(out / REPORT_REFERENCES, references.to_csv(index=False))
    atomic_write_json(out / REPORT_SUMMARY, _jsonable(summary))
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _significance_section(
    versus: pd.DataFrame, pairwise: pd.DataFrame, components: pd.DataFrame, group: str, strategies: list[str],
    headline: str, curve_metrics: list[str], grouping: str,
) -> list[str]:
    """The Wilcoxon tables of one group of runs; ``grouping`` says in words which runs were paired."""
    lines = [f"### Significance (§2.8): Wilcoxon signed-rank, two-sided, Bonferroni-corrected; {pretty(headline)}", "",
             f"Grouping: {grouping}.", ""]
    part = versus[versus["scenario"] == group] if not versus.empty else versus
    if part.empty:
        lines += [f"Needs the `{REFERENCE_STRATEGY}` strategy and at least one seed finished for every strategy.", ""]
    else:
        comp = components[components["scenario"] == group] if not components.empty else components
        table = pd.DataFrame({
            "strategy": part["strategy"],
            f"Δ {pretty(headline)} vs {REFERENCE_STRATEGY}": part["mean_difference"],
        })
        for m in curve_metrics:
            if m == headline or comp.empty:
                continue
            values = comp[comp["metric"] == m].set_index("strategy")["mean_difference"]
            table[f"Δ {pretty(m)}"] = part["strategy"].map(values).to_numpy()
        table["wins/losses"] = [f"{w}/{l}" for w, l in zip(part["wins"], part["losses"])]
        table["pairs"] = part["pairs"].to_numpy()
        table["p"] = [_p(v) for v in part["p_value"]]
        table["p (Bonferroni)"] = [_p(v) for v in part["p_bonferroni"]]
        table["significant"] = ["yes" if s else "no" for s in part["significant"]]
        lines += [markdown_table(table, {c: "+.4f" for c in table.columns if c.startswith("Δ")}), "",
                  f"Pairs: (scenario, seed, round ≥ 1) over {int(part['seeds'].iloc[0])} (scenario, seed) run(s); "
                  f"round 0 is shared. m = {int(part['comparisons'].iloc[0])} comparisons.", ""]
    part = pairwise[pairwise["scenario"] == group] if not pairwise.empty else pairwise
    if not part.empty:
        lines += ["Pairwise, Bonferroni-corrected p-values (row vs column; mean difference row − column in brackets):", "",
                  markdown_table(_pairwise_matrix(part, strategies)), ""]
    return lines


def write_pooled_report(experiment_dirs: list[str | Path], out_dir: str | Path, metric: str | None = None) -> Path:
    """``lit_al report EXP_A EXP_B ... --pool true``: the significance tests over every scenario of every experiment at once.

    IBM (Ein-Dor et al. 2020; STRATEGIES.md §2.8) pools the (dataset, seed, iteration ≥ 1)
    pairs of all the datasets of a scenario type before one Wilcoxon test per comparison,
    Bonferroni-corrected; give the experiments (or the grid's scenarios) of one scenario
    type. Writes ``report.md`` and ``summary.json`` (tests vs Random and pairwise, mean
    differences of the curve metrics) under ``out_dir``.
    """
    experiments = [load_experiment(d) for d in experiment_dirs]
    headlines = {e.headline_metric(metric) for e in experiments}
    if len(headlines) > 1:
        raise ConfigError(f"the experiments' headline metrics differ ({sorted(headlines)}); choose one with --metric")
    headline = headlines.pop()
    pool, scenarios, strategies = pooled_groups(experiments)
    curve_metrics = [headline] + [m for m in _curve_metrics(experiments[0], headline)[0][1:]
                                  if all(m in e.runs.columns for e in experiments)]
    versus, pairwise = significance_tables(pool, strategies, headline)
    components = component_differences(pool, strategies, curve_metrics)
    left_out = sorted({s for e in experiments for s in e.strategies} - set(strategies))
    grouping = "pooled over " + ", ".join(f"`{s}`" for s in scenarios) + ": their (scenario, seed, round ≥ 1) pairs in one test"
    lines = [f"# Pooled significance: {', '.join(e.directory.name for e in experiments)}", "",
             f"- Strategies in every experiment: {', '.join(strategies)}"
             + (f"; left out (missing somewhere): {', '.join(left_out)}" if left_out else "") + ".",
             f"- Headline metric: **{pretty(headline)}** (test set).", ""]
    lines += _significance_section(versus, pairwise, components, "pooled", strategies, headline, curve_metrics, grouping)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "summary.json", _jsonable({
        "experiments": [str(e.directory) for e in experiments],
        "headline_metric": headline,
        "strategies": strategies,
        "significance_grouping": grouping,
        "pooled_scenarios": scenarios,
        "wilcoxon_vs_random": versus.to_dict("records"),
        "wilcoxon_pairwise": pairwise.to_dict("records"),
        "differences_vs_random": components.to_dict("records"),
    }))
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _batch_section(
    experiment, scenario: str, strategies: list[str], figures: Path, figure_paths: dict, store: dict[str, list]
) -> list[str]:
    """The batch-analysis tables of one scenario; their rows are appended to ``store`` for summary.json."""
    from .batch_analysis import cumulative_analysis, first_batch_analysis
    from .pool_outputs import ScenarioPool

    lines = ["### Batch analysis (§2.1–§2.5)", ""]
    runs = experiment.runs
    run_dirs = runs.loc[runs["scenario"] == scenario, "run_dir"].dropna()
    if run_dirs.empty:
        return lines + ["No run directory of this scenario is at hand (read from a report folder): no batch analysis.", ""]
    pool = ScenarioPool(Path(run_dirs.iloc[0]))
    first, overlap = first_batch_analysis(experiment, scenario, pool)
    if first.empty:
        lines += ["D(B), Rep(B) and overlap need the shared round-0 model (not available in a cold-start scenario).", ""]
    else:
        means = first.groupby("strategy")[["diversity_paper", "diversity_ibm_code", "representativeness_paper",
                                           "representativeness_ibm_code"]].mean().reindex([s for s in strategies if s in set(first["strategy"])])
        table = means.reset_index().rename(columns={
            "diversity_paper": "D(B) paper (NN1)", "diversity_ibm_code": "D(B) IBM code (NN2)",
            "representativeness_paper": "Rep(B) paper (K=10)", "representativeness_ibm_code": "Rep(B) IBM code (K+1, self)"})
        lines += [f"First batch (round 0's query, same model and U for every strategy), mean over "
                  f"{first['seed'].nunique()} seed(s); embeddings of the round-0 model:", "",
                  markdown_table(table, {c: ".4f" for c in table.columns if c != "strategy"}), ""]
        store.setdefault("first_batch", []).extend(first.to_dict("records"))
    if not overlap.empty:
        cells = {}
        for (a, b), value in overlap.groupby(["a", "b"])["overlap"].mean().items():
            cells[a, b] = cells[b, a] = f"{100 * value:.0f}%"
        lines += ["Overlap of the first batches, |B_a ∩ B_b| / k, mean over seeds (§2.5):", "",
                  markdown_table(_symmetric_matrix(cells, strategies)), ""]
        store.setdefault("overlap", []).extend(overlap.to_dict("records"))
    cumulative = cumulative_analysis(experiment, scenario, pool)
    if not cumulative.empty:
        last = cumulative.sort_values("round").groupby(["strategy", "seed"]).tail(1)
        columns = ["gd"] + (["gu"] if "gu" in cumulative else [])
        table = last.groupby("strategy")[columns].mean().reindex([s for s in strategies if s in set(last["strategy"])]).reset_index()
        lines += ["Gd (token Jaccard of the cumulative queried set vs the rest of the pool) and Gu (its mean entropy "
                  "under the all-data model, nats) after the last round, mean over seeds (§2.3, §2.4):", "",
                  markdown_table(table, {"gd": ".4f", "gu": ".4f"}), ""]
        if "gu" in cumulative:
            name = f"{scenario}_gd_gu.png"
            gd_gu_figure(cumulative, scenario, strategies, figures / name)
            figure_paths.setdefault(scenario, []).append(f"figures/{name}")
            lines += [f"![Gd vs Gu](figures/{name})", ""]
        store.setdefault("cumulative", []).extend(cumulative.to_dict("records"))
    return lines


def _wide_table(part: pd.DataFrame, strategies: list[str], column: str, header, cell) -> pd.DataFrame:
    """One row per strategy and one column per value of ``column`` (titled ``header(value)``);
    ``cell(row)`` formats the strategy's row at that value, "—" where it has none."""
    rows = []
    for strategy in strategies:
        by_value = part[part["strategy"] == strategy].set_index(column)
        row = {"strategy": strategy}
        for value in sorted(part[column].unique()):
            row[header(value)] = cell(by_value.loc[value]) if value in by_value.index else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def _curve_table(curves: pd.DataFrame, scenario: str, strategies: list[str], metric: str) -> pd.DataFrame:
    def cell(row: pd.Series) -> str:
        mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
        return f"{mean:.3f}" + ("" if math.isnan(std) else f" ± {std:.3f}")

    return _wide_table(curves[curves["scenario"] == scenario], strategies, "labeled", str, cell)


def _runtime_rounds_table(per_round: pd.DataFrame, scenario: str, strategies: list[str]) -> pd.DataFrame:
    def cell(row: pd.Series) -> str:
        values = [row.get(c, np.nan) for c in ("fit", "pool inference", "selection")]
        return " / ".join("—" if pd.isna(v) else f"{v:.1f}" for v in values)

    return _wide_table(per_round[per_round["scenario"] == scenario], strategies, "round", lambda r: f"round {r}", cell)


def _symmetric_matrix(cells: dict[tuple[str, str], str], strategies: list[str]) -> pd.DataFrame:
    """A strategy × strategy table of ``cells[(row, column)]`` ("" elsewhere), over the strategies in a pair."""
    present = [s for s in strategies if any(s in pair for pair in cells)]
    matrix = pd.DataFrame("", index=present, columns=present)
    for (a, b), text in cells.items():
        matrix.loc[a, b] = text
    return matrix.reset_index().rename(columns={"index": ""})


def _pairwise_matrix(part: pd.DataFrame, strategies: list[str]) -> pd.DataFrame:
    cells = {}
    for row in part.itertuples(index=False):
        cells[row.a, row.b] = f"{_p(row.p_bonferroni)} ({row.mean_difference:+.3f})"
        cells[row.b, row.a] = f"{_p(row.p_bonferroni)} ({-row.mean_difference:+.3f})"
    return _symmetric_matrix(cells, strategies)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
