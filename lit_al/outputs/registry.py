"""One computer per catalogued output, and ``compute_outputs`` for a prediction batch.

``compute_outputs(module, batch, request)`` runs exactly the computers named in
``request.needs`` and returns ``{name: (B, ...) tensor}``; the computers of a batch
share one eval-mode forward pass through ``forward.ForwardCache``. A new output is
one ``catalog.CATALOG`` entry plus one function decorated with
``@register_output("name")``; registering a name the catalogue does not know fails
at import.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch

from ..errors import StrategyError
from .catalog import CATALOG, PredictionRequest
from .forward import Classifier, ForwardCache

OutputComputer = Callable[[Classifier, dict, PredictionRequest, ForwardCache], torch.Tensor]
_COMPUTERS: dict[str, OutputComputer] = {}
#: The modules whose import registers the built-in computers.
BUILTIN_MODULES = ("basic", "mc", "attention", "gradients", "mlm")


def register_output(name: str) -> Callable[[OutputComputer], OutputComputer]:
    """Register the computer of the catalogued output ``name`` (its flags live in the catalogue)."""
    if name not in CATALOG:
        raise ValueError(f"output {name!r} is not in lit_al.outputs.catalog.CATALOG; add its OutputSpec first")

    def decorate(fn: OutputComputer) -> OutputComputer:
        _COMPUTERS[name] = fn
        return fn

    return decorate


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def available_outputs() -> frozenset[str]:
    """Names of the outputs that have a registered computer."""
    _load_builtin()
    return frozenset(_COMPUTERS)


def compute_outputs(
    module: Classifier, batch: dict[str, torch.Tensor], request: PredictionRequest
) -> dict[str, torch.Tensor]:
    """Compute every output in ``request.needs`` for one batch."""
    _load_builtin()
    unknown = sorted(set(request.needs) - set(_COMPUTERS))
    if unknown:
        raise StrategyError(f"no computer for output(s) {unknown}; known outputs: {sorted(_COMPUTERS)}")
    cache = ForwardCache(module, batch)
    return {name: _COMPUTERS[name](module, batch, request, cache) for name in sorted(request.needs)}
