"""``run_status``: where a run stands, read from its files (no data, no model loaded).

Labels per class and by source, the pending batch, the rounds done, the last metrics
row, the stopping signals of the last round beside the ``loop.stop_when`` thresholds, and
whether a criterion fired. Works on a fresh run (config only), an interrupted one and a
finished one.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.state import read_state_json
from ..rundir import RUN_MODEL_DIR, RUN_MODEL_META
from ..rundir import read_run_model_meta
from ..stopping import StopWhen
from .run_files import STATE_FILE, BatchProgress, batch_progress, check_run_dir, run_config

#: (signal column, StopWhen option, how it fires) in the order they are printed.
SIGNALS = (
    ("stop_kappa_mean", "stabilizing_predictions", ">="),
    ("stop_overall_uncertainty", "overall_uncertainty", "<="),
    ("stop_max_uncertainty", "max_uncertainty", "<="),
    ("stop_expected_error", "expected_error", "<="),
)


@dataclass
class RunStatus:
    """What ``lit_al status`` prints."""

    run_dir: Path
    started: bool = False
    finished: bool = False
    completed_rounds: int = 0
    labels_per_class: dict[str, int] = field(default_factory=dict)
    labels_per_source: dict[str, int] = field(default_factory=dict)
    labeled: int = 0
    batch: BatchProgress | None = None
    model_round: int | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)
    #: signal column -> (value, threshold or None when not enabled, whether it fires)
    signals: dict[str, tuple[float, float | None, bool]] = field(default_factory=dict)
    stop_reason: str = ""

    def __str__(self) -> str:
        return format_status(self)


def run_status(run_dir: str | Path) -> RunStatus:
    run_dir = check_run_dir(run_dir)
    status = RunStatus(run_dir)
    state_path = run_dir / STATE_FILE
    if state_path.exists():
        _read_state(status, state_path)
    if (run_dir / RUN_MODEL_DIR / RUN_MODEL_META).exists():
        status.model_round = read_run_model_meta(run_dir / RUN_MODEL_DIR)["round"]
    metrics_path = run_dir / "metrics.csv"
    if metrics_path.exists():
        status.last_metrics = _last_row(metrics_path)
    stop_when = StopWhen(**dict((run_config(run_dir).get("loop") or {}).get("stop_when") or {}))
    _read_signals(status, stop_when)
    return status


def _last_row(path: Path) -> dict[str, Any]:
    """The last row of a CSV file, numbers as int or float and empty cells as NaN ({} when it has no row).

    The csv module, not pandas: ``lit_al status`` answers in well under a second.
    """
    last: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for last in csv.DictReader(handle):
            pass
    return {key: _cell(value) for key, value in last.items()}


def _cell(text: str | None) -> Any:
    if text is None or text == "":
        return math.nan
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_state(status: RunStatus, path: Path) -> None:
    state = read_state_json(path)
    status.started = True
    status.finished = bool(state.get("finished"))
    status.completed_rounds = int(state.get("completed_rounds", 0))
    records = state.get("records") or []
    status.labeled = len(records)
    status.labels_per_class = dict(sorted(Counter(name for r in records for name in r.get("labels", [])).items()))
    status.labels_per_source = dict(sorted(Counter(r.get("source", "?") for r in records).items()))
    status.batch = batch_progress(state)


def _read_signals(status: RunStatus, stop_when: StopWhen) -> None:
    row = status.last_metrics
    for column, option, _ in SIGNALS:
        if column not in row:
            continue
        threshold = _threshold(stop_when, option)
        fires = option in stop_when.fired({column: row[column]}) if threshold is not None else False
        status.signals[column] = (float(row[column]), threshold, fires)
    reason = row.get("stop_reason")
    status.stop_reason = reason if isinstance(reason, str) else ""


#: Why a signal is NaN: the stop-set signals need rounds or unlabeled stop-set rows; the pool's
#: max uncertainty needs a round that scored the pool with probabilities.
_WHY_NOT_COMPUTED = {
    "": "(needs more rounds, or no unlabeled stop-set example left)",
    "stop_max_uncertainty": "(the round scored no pool probabilities: it stopped first, or its strategy needs none)",
}


def _threshold(stop_when: StopWhen, option: str) -> float | None:
    """The threshold of an enabled criterion, None when the criterion is not enabled."""
    if option == "stabilizing_predictions":
        return stop_when.kappa if stop_when.stabilizing_predictions else None
    return getattr(stop_when, option)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_status(status: RunStatus) -> str:
    """The lines ``lit_al status`` prints."""
    lines = [f"run: {status.run_dir}"]
    if not status.started:
        return "\n".join(lines + ["state: fresh (configured, no round has run yet)"])
    lines.append(f"state: {_where(status)}; {status.completed_rounds} round(s) done"
                 + (f"; last model from round {status.model_round}" if status.model_round is not None else "; no model yet"))
    per_class = ", ".join(f"{name} {count}" for name, count in status.labels_per_class.items()) or "none"
    per_source = ", ".join(f"{name} {count}" for name, count in status.labels_per_source.items())
    lines.append(f"labeled: {status.labeled} ({per_class})" + (f"; by source: {per_source}" if per_source else ""))
    batch = status.batch
    lines.append(f"pending: {batch.size} item(s) proposed in round {batch.round}: {batch.answered} answered "
                 f"({batch.labeled} labeled, {batch.skipped} skipped), {batch.open} to label" if batch else "pending: none")
    if status.last_metrics:
        shown = {k: v for k, v in status.last_metrics.items() if not k.startswith(("stop_", "labels_")) and not _missing(v)}
        lines.append("last metrics: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    if status.signals:
        lines.append("stopping signals (last round):")
        for column, (value, threshold, fires) in status.signals.items():
            rule = dict((c, r) for c, _, r in SIGNALS)[column]
            verdict = "not enabled" if threshold is None else f"{'FIRES' if fires else 'not yet'} ({rule} {threshold:g})"
            if math.isnan(value):
                verdict += "; not computed " + _WHY_NOT_COMPUTED.get(column, _WHY_NOT_COMPUTED[""])
            lines.append(f"  {column[len('stop_'):]:<20} {_fmt(value):>8}  {verdict}")
    lines.append(_stopped(status))
    return "\n".join(lines)


def _where(status: RunStatus) -> str:
    """The run's state in a few words: finished, waiting for a person (and how far they are), or in progress."""
    batch = status.batch
    if status.finished:
        return "finished"
    if batch is None:
        return "in progress"
    if batch.answered == 0:
        return "waiting for labels"
    if batch.open:
        return f"labeling ({batch.answered} of {batch.size} answered; lit_al query --resume trains on them)"
    return "ready for the next round (every item of the batch is answered: lit_al query --resume)"


def _stopped(status: RunStatus) -> str:
    """Why the run stopped, or that it has not."""
    if status.stop_reason:
        return f"stopped by: {status.stop_reason}"
    if status.finished:
        return "stopped by: its budget (loop.rounds, loop.max_labels or the pool); no stopping criterion fired"
    return "stopping: no criterion has fired; the run goes on"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)
