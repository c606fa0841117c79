"""Reading a run directory from outside the loop: is it a run, its saved config, its last model."""

from __future__ import annotations

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
