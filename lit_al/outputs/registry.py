"""One computer per catalogued output, and ``compute_outputs`` for a prediction batch.

``compute_outputs(module, batch, request)`` runs exactly the computers named in
``request.needs`` and returns ``{name: (B, ...) tensor}``; the computers of a batch
share one eval-mode forward pass through ``forward.ForwardCache``. A built-in output
is one ``catalog.BUILTIN`` entry plus one function decorated with
``@register_output("name")`` (registering a name the catalogue does not know fails at
import); an output of the user's own is a ``plugin.Output`` subclass, whose
``compute`` ``computer`` hands out.
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


def computer(name: str) -> OutputComputer:
    """The computer of catalogued output ``name``: a built-in's function, or a plug-in ``Output``'s ``compute``."""
    _load_builtin()
    if name in _COMPUTERS:
        return _COMPUTERS[name]
    spec = CATALOG.get(name)
    if spec is None or spec.computer is None:
        raise StrategyError(f"no computer for output {name!r}; catalogued outputs: {sorted(CATALOG)}")
    return spec.computer().compute


def compute_outputs(
    module: Classifier, batch: dict[str, torch.Tensor], request: PredictionRequest
) -> dict[str, torch.Tensor]:
    """Compute every output in ``request.needs`` for one batch."""
    computers = {name: computer(name) for name in sorted(request.needs)}
    cache = ForwardCache(module, batch)
    return {name: compute(module, batch, request, cache) for name, compute in computers.items()}
