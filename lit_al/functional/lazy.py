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


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> tuple[Any, Any]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__`` for ``exports`` (name -> the module defining it).

    A name is imported from its module when first read and then kept in ``namespace`` (the
    package's globals), so later reads do not come back here.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module), name)
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
