"""``run_status``: where a run stands, read from its files (no data, no model loaded).

Labels per class and by source, the pending batch, the rounds done, the last metrics
row, the stopping signals of the last round beside the ``loop.stop_when`` thresholds, and
whether a criterion fired. Works on a fresh run (config only), an interrupted one and a
finished one.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..rundir import RUN_MODEL_DIR, RUN_MODEL_META
from ..stopping import StopWhen
from .run_files import STATE_FILE, check_run_dir, run_config

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
    pending: int = 0
    pending_round: int | None = None
    model_round: int | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)
    #: signal column -> (value, threshold or None when not selected, whether it fires)
    signals: dict[str, tuple[float, float | None, bool]] = field(default_factory=dict)
    stop_reason: str = ""


def run_status(run_dir: str | Path) -> RunStatus:
    run_dir = check_run_dir(run_dir)
    status = RunStatus(run_dir)
    state_path = run_dir / STATE_FILE
    if state_path.exists():
        _read_state(status, state_path)
    meta_path = run_dir / RUN_MODEL_DIR / RUN_MODEL_META
    if meta_path.exists():
        status.model_round = int(json.loads(meta_path.read_text(encoding="utf-8")).get("round", -1))
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
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the label state: {exc}") from None
    status.started = True
    status.finished = bool(state.get("finished"))
    status.completed_rounds = int(state.get("completed_rounds", 0))
    records = state.get("records") or []
    status.labeled = len(records)
    status.labels_per_class = dict(sorted(Counter(name for r in records for name in r.get("labels", [])).items()))
    status.labels_per_source = dict(sorted(Counter(r.get("source", "?") for r in records).items()))
    pending = state.get("pending")
    if pending:
        status.pending = len(pending.get("pool_indices") or [])
        status.pending_round = pending.get("round")


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
    """The threshold of a selected criterion, None when the criterion is not selected."""
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
    where = "finished" if status.finished else ("waiting for labels" if status.pending else "in progress")
    lines.append(f"state: {where}; {status.completed_rounds} round(s) done"
                 + (f"; last model from round {status.model_round}" if status.model_round is not None else "; no model yet"))
    per_class = ", ".join(f"{name} {count}" for name, count in status.labels_per_class.items()) or "none"
    per_source = ", ".join(f"{name} {count}" for name, count in status.labels_per_source.items())
    lines.append(f"labeled: {status.labeled} ({per_class})" + (f"; by source: {per_source}" if per_source else ""))
    lines.append(f"pending: {status.pending} item(s) proposed in round {status.pending_round}" if status.pending
                 else "pending: none")
    if status.last_metrics:
        shown = {k: v for k, v in status.last_metrics.items() if not k.startswith(("stop_", "labels_")) and not _missing(v)}
        lines.append("last metrics: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    if status.signals:
        lines.append("stopping signals (last round):")
        for column, (value, threshold, fires) in status.signals.items():
            rule = dict((c, r) for c, _, r in SIGNALS)[column]
            verdict = "not selected" if threshold is None else f"{'FIRES' if fires else 'not yet'} ({rule} {threshold:g})"
            if math.isnan(value):
                verdict += "; not computed " + _WHY_NOT_COMPUTED.get(column, _WHY_NOT_COMPUTED[""])
            lines.append(f"  {column[len('stop_'):]:<20} {_fmt(value):>8}  {verdict}")
    lines.append(f"stopped by: {status.stop_reason}" if status.stop_reason else "stopped by: no criterion fired")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)
