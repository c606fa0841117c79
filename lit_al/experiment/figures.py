"""The report's figures (matplotlib, headless): learning curves with mean ± std bands, runtime bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def pretty(metric: str) -> str:
    return metric.removeprefix("test_").replace("_", " ")


def learning_curve_figure(
    curves: pd.DataFrame, scenario: str, metrics: list[str], strategies: list[str], path: Path,
    references: dict[str, float] | None = None,
) -> Path:
    """One panel per metric: mean over seeds vs number of labels, ±1 std band, one line per strategy.

    ``references`` maps a metric to its all-data value, drawn as a dashed line.
    """
    plt = _pyplot()
    part = curves[curves["scenario"] == scenario]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.0), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics):
        for i, strategy in enumerate(strategies):
            rows = part[part["strategy"] == strategy].sort_values("labeled")
            if rows.empty:
                continue
            x = rows["labeled"].to_numpy(dtype=float)
            mean = rows[f"{metric}_mean"].to_numpy(dtype=float)
            std = np.nan_to_num(rows[f"{metric}_std"].to_numpy(dtype=float))
            color = colors(i % 10)
            ax.plot(x, mean, marker="o", markersize=3, label=strategy, color=color)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        if references and metric in references:
            ax.axhline(references[metric], color="black", linestyle="--", linewidth=1, label="all data")
        ax.set_xlabel("labeled examples")
        ax.set_ylabel(pretty(metric))
        ax.set_title(f"{scenario}: {pretty(metric)}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def runtime_figure(runtime: pd.DataFrame, scenario: str, path: Path) -> Path:
    """Stacked bars: mean seconds per round split into fit, pool inference and selection."""
    plt = _pyplot()
    part = runtime[runtime["scenario"] == scenario]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(part), 3.8))
    bottom = np.zeros(len(part))
    for column in ("fit", "pool inference", "selection"):
        values = np.nan_to_num(part[column].to_numpy(dtype=float))
        ax.bar(part["strategy"], values, bottom=bottom, label=column)
        bottom += values
    ax.set_ylabel("seconds per round")
    ax.set_title(f"{scenario}: runtime per round")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    return _save(fig, path)


def gd_gu_figure(cumulative: pd.DataFrame, scenario: str, strategies: list[str], path: Path) -> Path:
    """ALPS Fig. 3 style: Gd (x) against Gu (y) per round, mean over seeds, one line per strategy."""
    plt = _pyplot()
    part = cumulative[cumulative["scenario"] == scenario]
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    colors = plt.get_cmap("tab10")
    for i, strategy in enumerate(strategies):
        rows = part[part["strategy"] == strategy].groupby("round")[["gd", "gu"]].mean()
        if rows.empty:
            continue
        ax.plot(rows["gd"], rows["gu"], marker="o", markersize=3, label=strategy, color=colors(i % 10))
    ax.set_xlabel("Gd (token Jaccard diversity)")
    ax.set_ylabel("Gu (entropy under the all-data model, nats)")
    ax.set_title(f"{scenario}: diversity vs uncertainty")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
