"""A module imported on first use, so that heavy libraries load only where a function needs them.

``import lit_al.strategies`` must stay NumPy-only (a program with arrays from its own model
needs no torch and no FAISS to select); the functions that compute with torch or FAISS
import them when they first run.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``: the first attribute read imports it, later reads go straight to it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("_module")  # not ``self._module``: no recursion on a half-built copy
        if module is None:
            module = self._module = importlib.import_module(self.__dict__["_name"])
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"
