"""Reading a run directory from outside the loop: is it a run, its saved config, its pending batch.

Light on purpose (no torch, no Lightning): ``lit_al query`` reads the batch before anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DEFAULT_DATA_CLASS, class_spec
from ..errors import ConfigError
from ..rundir import CONFIG_FILE, STATE_FILE


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path, or one clear error when it is not a lit_al run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory")
    if not (path / STATE_FILE).exists() and not (path / CONFIG_FILE).exists():
        raise ConfigError(f"{path}: not a lit_al run directory (no {STATE_FILE} or {CONFIG_FILE})")
    return path


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's saved ``config.yaml`` as a dict ({} when there is none)."""
    import yaml

    path = run_dir / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
    return loaded if isinstance(loaded, dict) else {}


def run_max_length(run_dir: Path, default: int = 128) -> int:
    """The ``data.max_length`` the run trained with (texts longer are truncated to it)."""
    _, data = class_spec(run_config(run_dir).get("data"), DEFAULT_DATA_CLASS)  # plain keys, or class_path + init_args
    return int(data.get("max_length") or default)


@dataclass(frozen=True)
class BatchProgress:
    """The pending batch of a run and how much of it a person has answered (a label or a skip mark)."""

    round: int
    size: int
    labeled: int
    skipped: int

    @property
    def answered(self) -> int:
        return self.labeled + self.skipped

    @property
    def open(self) -> int:
        return self.size - self.answered


def batch_progress(state: dict[str, Any]) -> BatchProgress | None:
    """The pending batch of a parsed ``state.json``, or None when nothing is pending."""
    pending = state.get("pending")
    if not pending:
        return None
    rows = [int(i) for i in pending.get("pool_indices") or []]
    labeled = {int(r["pool_index"]) for r in state.get("records") or []}
    skipped = {int(r["pool_index"]) for r in state.get("skipped") or []} - labeled
    return BatchProgress(int(pending.get("round", 0)), len(rows), sum(i in labeled for i in rows),
                         sum(i in skipped for i in rows))


def read_batch_progress(run_dir: Path) -> BatchProgress | None:
    """``batch_progress`` of ``run_dir``'s ``state.json``; None when it has none, or none that reads
    (the verb that loads the run reports that)."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        return batch_progress(state) if isinstance(state, dict) and not state.get("finished") else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
