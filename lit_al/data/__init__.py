"""Data: readers, label schema, scenarios, label state, the dataset files and the LightningDataModule.

``ActiveDataModule`` (torch, Lightning) and ``DataFiles`` (pandas) are imported on first use
(PEP 562): the label schema and state, which ``lit_al status`` needs, load with NumPy alone.
"""

from __future__ import annotations

import importlib
from typing import Any

from .scenarios import InitialSet
from .schema import LabelSchema
from .state import LabelRecord, LabelState

#: Exported name -> the module defining it (imported when the name is first read).
_LAZY = {"ActiveDataModule": "lit_al.data.module", "DataFiles": "lit_al.data.files", "Split": "lit_al.data.files"}

__all__ = ["ActiveDataModule", "DataFiles", "InitialSet", "LabelRecord", "LabelSchema", "LabelState", "Split"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_al.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
