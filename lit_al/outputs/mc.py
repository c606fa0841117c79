"""Output ``mc_probs``: T Monte-Carlo-dropout passes (Gal & Ghahramani 2016; STRATEGIES.md §1.5, §1.6, §1.15).

Row per example: (T, C) probabilities ``p^t(x)``, t = 1..T (softmax, or sigmoid
for multi-label), written as (B, T, C). Options (``request.options``):

- ``mc_passes`` (T, default 10).
- ``mc_scope``: ``"full"`` (default) runs the T passes through the whole model with
  dropout on; ``"head"`` runs the encoder once in eval mode and samples only the
  classification head's dropout T times over that cached representation.
- ``mc_consistent`` (default False): how the dropout masks are drawn.

**Independent masks** (``mc_consistent=False``; MC Dropout, BALD, BEAL): the usual
training-mode dropout, every example and every position with its own mask. Dropout
modules and their owners go to train mode (``prediction.dropout_active``), so
transformers' functional attention-probability dropout is on too, and torch's RNG is
seeded per (seed, batch's smallest pool index, pass) (``prediction.seeded``).

**Consistent masks** (``mc_consistent=True``; BatchBALD, Kirsch, van Amersfoort & Gal
2019): BatchBALD's joint entropy ``H(y_1, …, y_k)`` is estimated from
``p(y_1..y_k) ≈ (1/T) Σ_t Π_i p^t(y_i | x_i)``, which treats pass t as ONE draw of the
weights ``w_t ~ q(w)`` shared by every example: pass t must be one fixed stochastic
function applied to all examples, i.e. the same dropout masks for every example (BERT's
hidden-state dropout acts per token position and feature, so a mask is a fixed
function of position and feature, not of the example). Here every ``torch.nn.Dropout`` module under the scope, on its c-th call of
pass t, multiplies its input ``x`` by::

    M[pos, f] = [u ≥ p] / (1 − p),   u ~ U(0, 1) from a generator seeded by (seed, t, module, c, ⌊pos/32⌋)

``M`` has shape (d,) for (B, d) inputs (the head) and (ℓ, d) for (B, ℓ, d) inputs (the
encoder's hidden-state dropout; row ``pos`` is token position ``pos``), broadcast over
the batch. Rows are drawn in blocks of 32 positions, each block from its own generator,
so the mask of a position does not depend on how wide its batch is padded: the same
example gets the same pass-t probabilities in any batch, at any position, on any process.
The uniforms are drawn on the input's device (a CUDA generator's stream differs from the
CPU's, so the masks, not their distribution, depend on the device type).
Other dropout flavours are refused (``Dropout1d/2d/3d``, alpha dropout), and dropout
that is not an ``nn.Dropout`` module call stays OFF: in particular transformers'
attention-probability dropout, which is functional and gated by the attention module's
training flag. For the passes every module under the scope is put in eval mode (as
Lightning's prediction already has it) and restored afterwards, so the masks above are
the only randomness, and torch's global RNG is not used.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable

import torch
from torch import nn

from ..errors import StrategyError
from ..seeding import derive_seed
from .catalog import MC_PROBS, PredictionRequest
from .forward import Classifier, ForwardCache, cached_on_module, dropout_active, eval_mode, seeded
from .registry import register_output

log = logging.getLogger(__name__)

#: Token positions per independently seeded block of a consistent mask.
MASK_BLOCK_ROWS = 32


@functools.lru_cache(maxsize=1 << 16)
def _mask_seed(seed: int, draw: int, position: int, call: int, block: int) -> int:
    """``derive_seed(seed, "mc-consistent", draw, position, call, block)``, memoised: the key is the same on every batch."""
    return derive_seed(seed, "mc-consistent", draw, position, call, block)


def _uniform(seed: int, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """U(0, 1) of ``shape`` from a fresh generator seeded with ``seed``, drawn on ``device`` when it has generators."""
    if device.type != "cpu":
        try:
            generator = torch.Generator(device=device).manual_seed(seed)
            return torch.rand(shape, generator=generator, device=device)
        except (RuntimeError, TypeError):
            pass  # a device without its own generators: draw on the CPU and copy
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator).to(device)


class ConsistentDropout:
    """Replaces the output of every ``nn.Dropout`` under a root by ``input · M`` with example-independent masks.

    Use as a context manager (restores everything on exit); call :meth:`begin_pass` before each pass.
    See the module docstring for the mask.
    """

    def __init__(self, root: nn.Module, seed: int) -> None:
        self._root = root
        self.seed = int(seed)
        self.draw = 0
        self._calls: dict[int, int] = {}
        self._dropouts: list[tuple[str, nn.Dropout]] = []
        for name, sub in root.named_modules():
            if isinstance(sub, nn.modules.dropout._DropoutNd):
                if not isinstance(sub, nn.Dropout):
                    raise StrategyError(
                        f"mc_consistent: {name or type(root).__name__} is a {type(sub).__name__}; consistent MC dropout "
                        "supports element-wise torch.nn.Dropout only"
                    )
                self._dropouts.append((name, sub))  # type: ignore[arg-type]
        self._stack: contextlib.ExitStack | None = None

    def begin_pass(self, draw: int) -> None:
        self.draw = int(draw)
        self._calls.clear()

    def mask(
        self, position: int, name: str, p: float, shape: torch.Size, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """The mask for call ``self._calls[position]`` of dropout module ``position`` in the current pass."""
        call = self._calls.get(position, 0)
        self._calls[position] = call + 1
        tail = tuple(shape[1:])
        if p >= 1.0:
            return torch.zeros(tail, dtype=dtype, device=device)
        if len(tail) == 1:
            blocks, rows = [(0, tail)], 1
        elif len(tail) == 2:
            rows = tail[0]
            count = -(-rows // MASK_BLOCK_ROWS)
            blocks = [(b, (MASK_BLOCK_ROWS, tail[1])) for b in range(count)]
        else:
            raise StrategyError(
                f"mc_consistent: dropout {name!r} got an input of shape {tuple(shape)}; consistent MC dropout "
                "supports (batch, features) and (batch, positions, features) inputs"
            )
        uniforms = [
            _uniform(_mask_seed(self.seed, self.draw, position, call, block), block_shape, device)
            for block, block_shape in blocks
        ]
        u = torch.cat(uniforms)[:rows] if len(tail) == 2 else uniforms[0]
        return (u >= p).to(dtype) / (1.0 - p)

    def __enter__(self) -> "ConsistentDropout":
        with contextlib.ExitStack() as stack:  # undoes what was done if a step fails
            # everything in eval mode: dropout's own forward is the identity (the hook applies
            # the mask) and mode-gated functional dropout, e.g. on attention probabilities, is off
            stack.enter_context(eval_mode(self._root))
            for position, (name, sub) in enumerate(self._dropouts):
                stack.callback(sub.register_forward_hook(self._hook(position, name)).remove)
            self._stack = stack.pop_all()
        return self

    def _hook(self, position: int, name: str) -> Callable[[nn.Module, tuple, Any], torch.Tensor]:
        def apply(sub: nn.Module, args: tuple, output: Any) -> torch.Tensor:
            x = args[0]
            if sub.p <= 0.0:
                return x
            return x * self.mask(position, name, float(sub.p), x.shape, x.device, x.dtype)

        return apply

    def __exit__(self, *exc: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()  # hooks removed, then every module's mode restored


def encoder_dropout_is_zero(encoder: nn.Module) -> bool:
    """Whether no dropout of ``encoder`` can act: no dropout module with p > 0, no attention-probability dropout rate."""
    config = getattr(encoder, "config", None)
    rates = [getattr(config, name, 0.0) or 0.0 for name in ("attention_probs_dropout_prob", "attention_dropout")]
    modules = [m.p for m in encoder.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    return not any(float(p) > 0 for p in rates + modules)


def warn_if_encoder_has_no_dropout(module: Classifier) -> None:
    """Warn once per model when no dropout of its encoder can act (ALBERT, ModernBERT checkpoints: all rates 0).

    ``mc_scope: full`` then varies only through the head's dropout, as ``mc_scope: head`` does;
    and when the head's rates are 0 too (ModernBERT's ``classifier_dropout``), not at all.
    """
    def check() -> bool:
        if encoder_dropout_is_zero(module.encoder):
            what = ("so do the head's: the MC passes are all the same; set model.dropout"
                    if encoder_dropout_is_zero(module) else
                    "so MC dropout (mc_scope: full) varies only through the head's dropout")
            log.warning("mc_probs: every dropout rate of %s is 0, %s (or non-zero dropout rates in the encoder's "
                        "config.json for MC dropout over the encoder)", type(module.encoder).__name__, what)
        return True

    cached_on_module(module, "warned_encoder_dropout", check)


@register_output(MC_PROBS)
def mc_probs_output(
    module: Classifier, batch: dict[str, torch.Tensor], request: PredictionRequest, cache: ForwardCache
) -> torch.Tensor:
    """(B, T, C) MC-dropout probabilities; options ``mc_passes``, ``mc_scope``, ``mc_consistent`` (module docstring)."""
    options = request.options
    passes, scope, consistent = options.mc_passes, options.mc_scope, options.mc_consistent
    if scope == "head":
        encoder_output = cache.encoder_output
        root: nn.Module = module.head_root  # the native network: its encoder is not run again, only its head

        def one_pass() -> torch.Tensor:
            return module.probabilities(module.head_logits(batch, encoder_output))
    else:
        warn_if_encoder_has_no_dropout(module)
        root = module

        def one_pass() -> torch.Tensor:
            return module.probabilities(module(batch))

    samples = []
    if consistent:
        with ConsistentDropout(root, request.seed) as masks:
            for t in range(passes):
                masks.begin_pass(t)
                samples.append(one_pass())
    else:
        first = int(batch["pool_index"].min()) if batch["pool_index"].numel() else 0
        with dropout_active(root):
            for t in range(passes):
                with seeded(request.seed, first, t):
                    samples.append(one_pass())
    return torch.stack(samples, dim=1)
