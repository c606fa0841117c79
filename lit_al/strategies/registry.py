"""Name -> Strategy class registry, and ``get_strategy``."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, TypeVar

from ..errors import StrategyError
from .base import Strategy

_REGISTRY: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator: register a ``Strategy`` subclass under ``name``."""

    def decorate(cls: S) -> S:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"strategy name {name!r} is already registered to {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered_strategies() -> dict[str, type[Strategy]]:
    """A copy of the registry, name -> class, in registration order."""
    _load_builtin()
    return dict(_REGISTRY)


def _load_builtin() -> None:
    importlib.import_module("lit_al.strategies.builtin")


def strategy_class(name: str) -> type[Strategy]:
    """Resolve a registered name, or a dotted ``module.Class`` path, to a Strategy subclass."""
    _load_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise StrategyError(f"strategy class {name!r} cannot be imported: {exc}") from None
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise StrategyError(f"{name!r} is not a subclass of lit_al.strategies.Strategy")
        return cls
    known = ", ".join(sorted(_REGISTRY))
    raise StrategyError(f"unknown strategy {name!r}; registered strategies: {known}")


def get_strategy(name: str, **options: Any) -> Strategy:
    """Build a configured strategy by registered name (or dotted class path).

    Unknown options are an error that names them and lists the accepted ones. A class
    that was never registered is named by its dotted path (metrics, seeds, run records).
    """
    cls = strategy_class(name)
    accepted = _accepted_options(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise StrategyError(
            f"strategy {name!r} has no option(s) {unknown}; accepted: {sorted(accepted)}"
        )
    strategy = cls(**options)
    if not strategy.name:
        strategy.name = name  # type: ignore[misc]  # the instance's name; the class stays unregistered
    return strategy


def _accepted_options(cls: type[Strategy]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        names |= {p for p, spec in params.items() if p != "self" and spec.kind not in (spec.VAR_POSITIONAL, spec.VAR_KEYWORD)}
        if not any(spec.kind == spec.VAR_KEYWORD for spec in params.values()):
            break
    return names
