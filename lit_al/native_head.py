"""The encoder's own sequence-classification head (``model.head: native``) and what lit_al reads inside it.

``AutoModelForSequenceClassification`` builds, for every architecture, the head its
authors ship (BERT: pooler + dropout + linear; RoBERTa, XLM-R, MPNet: dropout + dense +
tanh + dropout + ``out_proj`` over the first token; ELECTRA: the same with gelu;
DeBERTa-v2: its context pooler; DistilBERT: ``pre_classifier`` + relu; ModernBERT: its
prediction head over the first token or the mean). lit_al does not re-implement these
heads; it finds, generically, the few places the strategies need:

- the **base model** (``network.base_model``): the encoder, whose output the head reads;
- the **output layer**: the last ``nn.Linear`` outside the base model with ``num_labels``
  outputs. Its input is the per-example embedding h(x) (BADGE, Core-Set, EGL's last
  layer), read with one forward pre-hook; its output is the logits;
- the **head modules**: every module outside the base model (head learning rate, head
  dropout, MC dropout of the head only).

``replaced_output`` makes the network run its head over an encoder output computed
before (MC dropout over the head only), by standing in for the base model's forward.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from torch import nn

from .errors import ConfigError

log = logging.getLogger(__name__)

#: Architectures whose native head reads the encoder's pooler output (``pretrained_embeddings`` then pools so too).
POOLER_HEADS = {"bert", "albert", "megatron-bert", "nezha", "ernie"}


def load_native(path: str, *, num_labels: int, multi_label: bool, label_names: list[str],
                kwargs: dict[str, Any]) -> nn.Module:
    """``AutoModelForSequenceClassification`` of ``path`` with the task's labels (head freshly initialised).

    transformers reports the head's missing weights on every load (they are new, as intended);
    that report is silenced, and only encoder weights the checkpoint lacks are logged.
    """
    from transformers import AutoModelForSequenceClassification

    task = {
        "num_labels": num_labels,
        "id2label": {i: name for i, name in enumerate(label_names)},
        "label2id": {name: i for i, name in enumerate(label_names)},
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
    }
    reporter = logging.getLogger("transformers.modeling_utils")
    level = reporter.level
    reporter.setLevel(logging.ERROR)
    try:
        network, info = AutoModelForSequenceClassification.from_pretrained(path, output_loading_info=True, **task, **kwargs)
    finally:
        reporter.setLevel(level)
    prefix = base_prefix(network) + "."
    missing = sorted(key for key in info.get("missing_keys") or () if key.startswith(prefix))
    if missing:
        log.warning("%s: the checkpoint has no weights for %s; they start at random", path,
                    ", ".join(missing[:4]) + (", …" if len(missing) > 4 else ""))
    return network


def base_prefix(network: nn.Module) -> str:
    """The attribute name of the base model inside ``network`` (``bert``, ``roberta``, ``model``, …)."""
    base = network.base_model
    for name, child in network.named_children():
        if child is base:
            return name
    raise ConfigError(f"{type(network).__name__}: cannot find its base model among its children")


def head_modules(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every module of ``network`` outside its base model, names as in ``named_modules``."""
    prefix = base_prefix(network)
    return [(name, module) for name, module in network.named_modules()
            if name and name != prefix and not name.startswith(prefix + ".")]


def output_layer_name(network: nn.Module, num_labels: int) -> str:
    """Name of the final linear layer: the last ``nn.Linear`` outside the base model with ``num_labels`` outputs."""
    found = [name for name, module in head_modules(network)
             if isinstance(module, nn.Linear) and module.out_features == num_labels]
    if not found:
        raise ConfigError(f"model.head: native: {type(network).__name__} has no linear layer with {num_labels} outputs "
                          "outside its encoder; use model.head: lit_al")
    return found[-1]


def set_head_dropout(network: nn.Module, p: float) -> int:
    """Set every dropout module of the head (outside the base model) to ``p``; returns how many there are."""
    count = 0
    for _, module in head_modules(network):
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = float(p)
            count += 1
    return count


def native_pooling(network: nn.Module) -> str:
    """How the native head reads the encoder: ``pooled`` (the pooler output), ``mean`` or ``cls`` (first token)."""
    config = network.config
    if config.model_type in POOLER_HEADS and getattr(network.base_model, "pooler", None) is not None:
        return "pooled"
    if getattr(config, "classifier_pooling", "cls") == "mean":  # ModernBERT's option
        return "mean"
    return "cls"


@contextlib.contextmanager
def replaced_output(module: nn.Module, output: Any) -> Iterator[None]:
    """Within the block, calling ``module`` returns ``output`` without computing anything."""
    compiled = module.__dict__.get("_compiled_call_impl")
    module.forward = lambda *args, **kwargs: output  # an instance attribute shadows the class's forward
    if compiled is not None:
        module._compiled_call_impl = None
    try:
        yield
    finally:
        del module.forward
        if compiled is not None:
            module._compiled_call_impl = compiled


@contextlib.contextmanager
def captured(encoder: nn.Module, layer: nn.Module) -> Iterator[dict[str, Any]]:
    """Record the encoder's output (``encoder``) and the output layer's input (``features``) of one forward pass."""
    seen: dict[str, Any] = {}

    def keep_encoder(mod: nn.Module, args: Any, output: Any) -> None:
        seen["encoder"] = output

    def keep_features(mod: nn.Module, args: tuple) -> None:
        seen["features"] = args[0]

    handles = [encoder.register_forward_hook(keep_encoder), layer.register_forward_pre_hook(keep_features)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def check_captured(seen: dict[str, Any], network: nn.Module) -> None:
    """The hooks of ``captured`` fired once each; a head that never calls its output layer is refused."""
    if "features" not in seen or "encoder" not in seen:
        raise ConfigError(f"model.head: native: {type(network).__name__}'s forward did not run its encoder and output "
                          "layer as lit_al expects; use model.head: lit_al")
