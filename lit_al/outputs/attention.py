"""Output ``attention_intra``: MII's intra-correlation of the last layer's attention (STRATEGIES.md §1.14).

The contract (``lit_al.strategies.mii.ATTENTION_INTRA_SPEC``): per example,
``lit_al.functional.attention.attention_intra(A, attention_mask, mode)`` where
``A`` (B, h, ℓ, ℓ) are the softmax attention probabilities of the LAST encoder
layer of the fine-tuned model, all heads, in eval mode. Only the (B,) result
leaves the computer; no layer's attention is kept beyond the batch, and the
other layers' attentions are never materialised.

How ``A`` is obtained without ``output_attentions=True`` (which would keep every
layer's (B, h, ℓ, ℓ) tensor and needs the eager implementation throughout):

1. Find the last instance of the encoder's attention class (transformers'
   ``_can_record_outputs["attentions"]``, e.g. ``BertSelfAttention``).
2. Hook it for one forward pass: a pre-hook records its input hidden states, a
   hook records its ``(output, weights)`` result.
3. If the encoder runs eager attention, ``weights`` are the probabilities and are
   used as they are (any architecture).
4. Otherwise (SDPA / flash attention return no weights) the probabilities are
   recomputed from the module's own query/key projections, exactly as
   transformers' eager BERT attention does::

       A = softmax(Q Kᵀ · s + M),  Q = (W_q x + b_q) per head, K = (W_k x + b_k) per head,
       s = module.scaling (= d_head^{-1/2}),  M_jk = 0 on real keys, finfo(dtype).min on padding keys

   This holds for BERT-style self-attention (BERT, RoBERTa, ELECTRA, MiniLM, …),
   the modules that expose ``query`` and ``key`` linear layers. Any other
   architecture needs ``model.attn_implementation: eager``; a clear error says so.

The hooked pass is the batch's shared encoder pass (``ForwardCache``) when it has
not run yet (the computers run in name order, and ``attention_intra`` sorts
before the other outputs MII needs); otherwise the encoder runs once more.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import StrategyError
from ..functional.attention import attention_intra
from .catalog import ATTENTION_INTRA, PredictionRequest
from .forward import Classifier, ForwardCache, cached_on_module
from .registry import register_output


def _attention_recorder(encoder: nn.Module) -> tuple[tuple[type, ...], tuple[str, ...], int]:
    """Attention module classes (or class-name suffixes) and the output index holding the weights."""
    spec: Any = getattr(type(encoder), "_can_record_outputs", None) or {}
    spec = spec.get("attentions") if isinstance(spec, dict) else None
    specs = spec if isinstance(spec, list) else [spec] if spec is not None else []
    classes: list[type] = []
    names: list[str] = []
    index = 1  # transformers' default for attention recorders
    for item in specs:
        target = getattr(item, "target_class", item)
        name = getattr(item, "class_name", None)
        index = int(getattr(item, "index", index))
        if isinstance(target, type):
            classes.append(target)
        elif isinstance(target, str):
            names.append(target)
        if isinstance(name, str):
            names.append(name)
    return tuple(classes), tuple(names), index


def last_attention_module(encoder: nn.Module) -> tuple[nn.Module, int]:
    """The last layer's self-attention module of ``encoder`` and the index of its weights output.

    Uses transformers' own record of which module class yields attentions; for
    encoders without that record, the last module whose class name ends with
    ``SelfAttention``.
    """
    classes, names, index = _attention_recorder(encoder)
    found: nn.Module | None = None
    for name, sub in encoder.named_modules():
        if classes and isinstance(sub, classes):
            found = sub
        elif names and any(name.endswith(suffix) for suffix in names):
            found = sub
        elif not classes and not names and type(sub).__name__.endswith("SelfAttention"):
            found = sub
    if found is None:
        raise StrategyError(
            f"attention_intra: cannot find the self-attention modules of {type(encoder).__name__}; "
            "this encoder is not supported by the MII strategies"
        )
    return found, index


def _recompute_probabilities(attention: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``softmax(Q Kᵀ · scaling + M)`` from a BERT-style self-attention module's projections (see module docstring)."""
    batch, length, _ = hidden.shape
    heads = int(getattr(attention, "num_attention_heads"))
    head_size = int(getattr(attention, "attention_head_size"))
    scaling = float(getattr(attention, "scaling", head_size**-0.5))
    query = attention.query(hidden).view(batch, length, heads, head_size).transpose(1, 2)
    key = attention.key(hidden).view(batch, length, heads, head_size).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    # the same additive key-padding bias transformers' eager path adds
    bias = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
    bias.masked_fill_(mask.to(scores.device) == 0, torch.finfo(scores.dtype).min)
    return torch.softmax(scores + bias[:, None, None, :], dim=-1)


def _can_recompute(attention: nn.Module) -> bool:
    return (
        isinstance(getattr(attention, "query", None), nn.Linear)
        and isinstance(getattr(attention, "key", None), nn.Linear)
        and hasattr(attention, "num_attention_heads")
        and hasattr(attention, "attention_head_size")
    )


def last_layer_attention(module: Classifier, batch: dict[str, torch.Tensor], cache: ForwardCache) -> torch.Tensor:
    """Last-layer attention probabilities (B, h, ℓ, ℓ) of ``module.encoder`` on ``batch`` (one hooked pass)."""
    # found once per classifier: its encoder is fixed at construction
    attention, index = cached_on_module(module, "last_attention_module", lambda: last_attention_module(module.encoder))
    captured: dict[str, Any] = {}

    def keep_input(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        captured["hidden"] = args[0] if args else kwargs.get("hidden_states")

    def keep_output(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        weights = output[index] if isinstance(output, (tuple, list)) and len(output) > index else None
        captured["weights"] = weights if isinstance(weights, torch.Tensor) else None

    handles = [
        attention.register_forward_pre_hook(keep_input, with_kwargs=True),
        attention.register_forward_hook(keep_output, with_kwargs=True),
    ]
    try:
        if not cache.has_encoder_output:
            _ = cache.encoder_output  # the shared pass, now hooked
        else:
            module.encode(batch)
    finally:
        for handle in handles:
            handle.remove()
    mask = batch["attention_mask"]
    weights = captured.get("weights")
    if weights is not None:
        return weights
    hidden = captured.get("hidden")
    if hidden is None or not _can_recompute(attention):
        raise StrategyError(
            f"attention_intra: {type(attention).__name__} returns no attention probabilities under "
            f"attn_implementation={getattr(module.encoder.config, '_attn_implementation', None)!r} and they "
            "cannot be recomputed for it; set model.attn_implementation: eager"
        )
    return _recompute_probabilities(attention, hidden, mask)


@register_output(ATTENTION_INTRA)
def attention_intra_output(
    module: Classifier, batch: dict[str, torch.Tensor], request: PredictionRequest, cache: ForwardCache
) -> torch.Tensor:
    """(B,) ``R_intra`` of each example (MII Eq. 10–12; see ``functional.attention.attention_intra``).

    Option ``attention_intra`` (``"column_sum"`` default [R], or ``"row_sum"``) picks the
    per-token sum; the attention is the fine-tuned model's last layer, all heads.
    """
    mode = request.options.attention_intra
    attn = last_layer_attention(module, batch, cache)
    return attention_intra(attn, batch["attention_mask"], mode)
