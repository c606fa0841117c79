"""What a run directory is, and the checks made on it before anything is written there.

A folder is a lit_al run when it holds lit_al's ``state.json`` or ``config.yaml``. Only such a
folder is ever deleted (``--overwrite true``), and only the files lit_al writes are removed:
anything else found there stays.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from .atomic import remove_stale_temp_files
from .errors import ConfigError
from .run_lock import run_lock

STATE_FILE = "state.json"
CONFIG_FILE = "config.yaml"
#: Folder of a run directory holding the last round's model (``model.save_run_model``), and its facts file.
RUN_MODEL_DIR = "model"
RUN_MODEL_META = "lit_al_model.json"
#: What a run writes into its directory (files, then folders).
RUN_FILES = (CONFIG_FILE, STATE_FILE, "metrics.csv", "labelstudio.json")
#: ``stopping`` is ``stopping.STOPPING_DIR`` (stop-set predictions), ``overlap`` is ``overlap.jobs.OVERLAP_DIR``
#: (background trainings): named here as strings so that this module imports neither torch nor the loop.
RUN_FOLDERS = ("rounds", "cache", "lightning_logs", RUN_MODEL_DIR, "stopping", "overlap")


def check_writable(run_dir: Path) -> None:
    """Refuse a ``run_dir`` that is a file, or that cannot be created or written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir {run_dir} is a file, not a folder")
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"run_dir {run_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"run_dir {run_dir}: permission denied (cannot write in {existing})")


def _looks_like_state(path: Path) -> bool:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and {"n_pool", "records", "completed_rounds"} <= payload.keys()


def _looks_like_config(path: Path) -> bool:
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and {"data", "loop"} <= payload.keys()


def is_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a lit_al run (its state or its config)."""
    return _looks_like_state(run_dir / STATE_FILE) or _looks_like_config(run_dir / CONFIG_FILE)


def is_empty(run_dir: Path) -> bool:
    return not run_dir.exists() or not any(run_dir.iterdir())


def check_overwritable(run_dir: Path) -> None:
    """Refuse ``--overwrite`` of a folder that is neither empty nor a lit_al run."""
    if not is_empty(run_dir) and not is_run(run_dir):
        raise ConfigError(
            f"--overwrite true: {run_dir} is not a lit_al run (no lit_al state.json or config.yaml); "
            "refusing to delete it, choose another --run_dir"
        )


def remove_run(run_dir: Path) -> None:
    """Delete what lit_al wrote in ``run_dir`` (a lit_al run); the folder goes too if nothing else is left."""
    if is_empty(run_dir):
        return
    check_overwritable(run_dir)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)
    remove_stale_temp_files(run_dir)
    if is_empty(run_dir):
        run_dir.rmdir()


def remove_stale_writes(run_dir: Path) -> list[Path]:
    """Delete the temporary files that killed atomic writes left in ``run_dir`` (``.state.json.*.tmp``, ...).

    Done under the run lock, by every verb that writes a run (fit and query at their start,
    label and annotate too); nothing is removed while another lit_al process holds the lock,
    since its temporary files may be writes in flight.
    """
    if not is_run(run_dir):  # never sweep a folder lit_al did not write
        return []
    try:
        with run_lock(run_dir, writes=True, wait=False):
            return remove_stale_temp_files(run_dir)
    except ConfigError:  # busy: that process cleans up when it starts its next round
        return []


#: The keys of ``RUN_MODEL_META`` and of its ``task``, with their JSON types (``bool`` is no ``int`` here).
_META_KEYS = {"round": int, "model": dict, "task": dict, "sha256": str}
_TASK_KEYS = {"num_labels": int, "multi_label": bool, "label_names": list}


def read_run_model_meta(directory: Path) -> dict:
    """The JSON ``model.save_run_model`` wrote in ``directory``, checked: one ``ConfigError`` naming the file
    when it is not one (truncated, empty, not an object, a key missing or of another type). Torch-free:
    ``lit_al status`` reads it too."""
    path = directory / RUN_MODEL_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: damaged, cannot be read ({exc}); the next round that trains writes it again") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: damaged: expected a JSON object, found {type(meta).__name__}")
    for where, fields, values in (("", _META_KEYS, meta), ("task.", _TASK_KEYS, meta.get("task"))):
        for key, kind in fields.items():
            value = values.get(key) if isinstance(values, dict) else None
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                found = f"{type(value).__name__} {value!r}" if isinstance(values, dict) and key in values else "missing"
                raise ConfigError(f"{path}: damaged: {where}{key} should be a {kind.__name__}, found {found}")
    if meta["round"] < 0:
        raise ConfigError(f"{path}: damaged: round should be >= 0, found {meta['round']}")
    return meta
