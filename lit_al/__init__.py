"""lit_al: active learning for transformer text classifiers on PyTorch Lightning.

The main classes are exported here and imported on first use (PEP 562), so that
``import lit_al`` (and ``lit_al --help``, ``lit_al status``) loads neither torch
nor Lightning::

    from lit_al import ActiveDataModule, ActiveLoop, Session, TextClassifier
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Exported name -> the module defining it (imported when the name is first read).
_LAZY = {
    "TextClassifier": "lit_al.model",
    "ActiveDataModule": "lit_al.data.module",
    "ActiveLoop": "lit_al.loop",
    "Session": "lit_al.session",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_al' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
