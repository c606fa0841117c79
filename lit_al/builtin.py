"""``builtin:NAME``: a file shipped inside the package, named the same way wherever a path is read.

Data paths (``data.train: builtin:trec/train.csv``) name files under ``lit_al/datasets``;
config files (``lit_al fit --config builtin:demo.yaml``, ``Session("builtin:demo.yaml")``)
name files under ``lit_al/configs``. Standard library only: every floor may use it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

PREFIX = "builtin:"
#: The installed package's folder: the shipped files lie under it.
PACKAGE_ROOT = Path(__file__).resolve().parent
DATASETS = "datasets"
CONFIGS = "configs"


def is_builtin(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def resolve(path: str | Path, folder: str) -> Path:
    """``builtin:NAME`` as ``lit_al/FOLDER/NAME``; any other path as given (``~`` expanded)."""
    text = str(path)
    if is_builtin(text):
        return PACKAGE_ROOT / folder / text[len(PREFIX):]
    return Path(text).expanduser()


def config_path(path: str | Path) -> Path:
    """A config file's path: a shipped one (``builtin:demo.yaml``) must exist, and the error lists those that do."""
    resolved = resolve(path, CONFIGS)
    if is_builtin(path) and not resolved.is_file():
        shipped = sorted(p.name for p in (PACKAGE_ROOT / CONFIGS).glob("*.yaml"))
        raise ConfigError(f"{path}: no such shipped config; shipped: {', '.join(shipped)}")
    return resolved
