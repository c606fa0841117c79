"""What ``predict_step`` computes: one computer per output name a strategy may need.

``compute_outputs(module, batch, request)`` runs exactly the computers named in
``request.needs`` and returns ``{name: (B, ...) tensor}``. Computers share one
eval-mode forward pass through ``ForwardCache``. A new output is one function
decorated with ``@register_output("name")``; ``gradients=True`` / ``reference=True``
there declare that it takes gradients or needs the labeled rows as a reference
(``flagged_outputs``).

Outputs (rows per example; see also ``lit_al.outputs``):

- ``probs`` (B, C): softmax (single-label) or sigmoid (multi-label) probabilities.
- ``embeddings`` (B, d'): the penultimate representation h(x), input of the final linear layer.
- ``cls_hidden`` (B, d): the last-layer [CLS] hidden state.
- ``pretrained_embeddings`` (B, d): the sentence representation (same pooling) of the
  frozen pre-trained encoder, loaded once from the model's path.

Further outputs live in their own modules, imported by ``lit_al.prediction_outputs``:
``mc_probs`` (``lit_al.outputs_mc``; it uses ``dropout_active`` and ``seeded`` below),
``attention_intra`` (``lit_al.outputs_attention``), ``surprisal`` (``lit_al.outputs_mlm``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, TypeVar

import torch
from torch import nn

from .errors import StrategyError
from .strategies.base import PredictionRequest

if TYPE_CHECKING:
    from .model import TextClassifier

DEFAULT_REQUEST = PredictionRequest(needs=frozenset({"probs"}))


class ForwardCache:
    """One eval-mode forward pass, computed lazily and shared by the computers of a batch."""

    def __init__(self, module: "TextClassifier", batch: dict[str, torch.Tensor]) -> None:
        self.module = module
        self.batch = batch
        self._output = None
        self._representation: torch.Tensor | None = None
        self._features: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None

    @property
    def has_encoder_output(self) -> bool:
        """Whether the shared encoder pass has already run for this batch."""
        return self._output is not None

    @property
    def encoder_output(self):
        if self._output is None:
            self._output = self.module.encode(self.batch)
        return self._output

    @property
    def representation(self) -> torch.Tensor:
        if self._representation is None:
            self._representation = self.module.sentence_representation(self.encoder_output, self.batch["attention_mask"])
        return self._representation

    @property
    def features(self) -> torch.Tensor:
        if self._features is None:
            self._features = self.module.head.features(self.representation)
        return self._features

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = self.module.head.out(self.features)
        return self._logits


OutputComputer = Callable[["TextClassifier", dict, PredictionRequest, ForwardCache], torch.Tensor]
_COMPUTERS: dict[str, OutputComputer] = {}
#: Output name -> the flags its ``register_output`` declared ("gradients", "reference").
_FLAGS: dict[str, frozenset[str]] = {}
OutputFlag = Literal["gradients", "reference"]


def register_output(
    name: str, *, gradients: bool = False, reference: bool = False
) -> Callable[[OutputComputer], OutputComputer]:
    """Register the computer of output ``name``.

    ``gradients``: the computer takes gradients (autograd) inside ``predict_step``.
    Lightning predicts under ``torch.inference_mode`` by default, which forbids
    autograd, so a strategy needing such an output gets a predict Trainer built with
    ``inference_mode=False`` (``Strategy.needs_gradients``).

    ``reference``: the unlabeled rows are computed relative to the labeled rows' values
    of the same output (ALDEN's ``Z_L``): for a strategy with ``predict_labeled`` needing
    it, the labeled rows are predicted in a pass of their own first, and the unlabeled
    pass receives their rows as ``PredictionRequest.reference``
    (``Strategy.predict_labeled_first``).
    """
    flags = frozenset(flag for flag, on in (("gradients", gradients), ("reference", reference)) if on)

    def decorate(fn: OutputComputer) -> OutputComputer:
        _COMPUTERS[name] = fn
        _FLAGS[name] = flags
        return fn

    return decorate


def available_outputs() -> frozenset[str]:
    _load_builtin()
    return frozenset(_COMPUTERS)


def flagged_outputs(flag: OutputFlag) -> frozenset[str]:
    """Names of the registered outputs declared with ``flag`` (see ``register_output``), built-ins included."""
    if flag not in ("gradients", "reference"):
        raise ValueError(f"unknown output flag {flag!r}; expected 'gradients' or 'reference'")
    _load_builtin()
    return frozenset(name for name, flags in _FLAGS.items() if flag in flags)


def _load_builtin() -> None:
    import importlib

    importlib.import_module("lit_al.prediction_outputs")


def compute_outputs(module: "TextClassifier", batch: dict[str, torch.Tensor], request: PredictionRequest | None) -> dict[str, torch.Tensor]:
    """Compute every output in ``request.needs`` for one batch."""
    request = request or DEFAULT_REQUEST
    _load_builtin()
    unknown = sorted(set(request.needs) - set(_COMPUTERS))
    if unknown:
        raise StrategyError(f"no computer for output(s) {unknown}; known outputs: {sorted(_COMPUTERS)}")
    cache = ForwardCache(module, batch)
    return {name: _COMPUTERS[name](module, batch, request, cache) for name in sorted(request.needs)}


# ------------------------------------------------------------------ built-ins
@register_output("probs")
def _probs(module, batch, request, cache):
    return module.probabilities(cache.logits)


@register_output("embeddings")
def _embeddings(module, batch, request, cache):
    return cache.features


@register_output("cls_hidden")
def _cls_hidden(module, batch, request, cache):
    return cache.encoder_output.last_hidden_state[:, 0]


@register_output("pretrained_embeddings")
def _pretrained_embeddings(module, batch, request, cache):
    encoder = pretrained_encoder(module)
    output = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return module.sentence_representation(output, batch["attention_mask"])


T = TypeVar("T")


def cached_on_module(module: nn.Module, key: str, build: Callable[[], T]) -> T:
    """``build()`` once per classifier module, kept beside it for the module's lifetime.

    Stored with ``object.__setattr__`` so that a cached model is not registered as a
    submodule: it is never trained, moved by Lightning or saved in a checkpoint.
    """
    cache: dict[str, Any] | None = module.__dict__.get("_prediction_cache")
    if cache is None:
        cache = {}
        object.__setattr__(module, "_prediction_cache", cache)
    if key not in cache:
        cache[key] = build()
    return cache[key]


def classifier_tokenizer(module: "TextClassifier"):
    """The classifier's own tokenizer (special ids, word pieces, vocabulary), loaded once per module."""

    def load():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(module.model_path, trust_remote_code=module.hparams.trust_remote_code)

    return cached_on_module(module, "classifier_tokenizer", load)


def special_token_ids(module: "TextClassifier", device: torch.device) -> torch.Tensor:
    """The classifier tokenizer's special ids: [CLS], [SEP], [PAD], [MASK] and also [UNK] (built once per device)."""

    def build() -> torch.Tensor:
        ids = sorted({int(i) for i in classifier_tokenizer(module).all_special_ids})
        return torch.tensor(ids, dtype=torch.long, device=device)

    return cached_on_module(module, f"special_token_ids:{device}", build)


def pretrained_encoder(module: "TextClassifier") -> nn.Module:
    """The frozen pre-trained encoder (θ0), loaded once per module and kept in eval mode."""

    def load() -> nn.Module:
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(module.model_path, trust_remote_code=module.hparams.trust_remote_code)
        encoder.to(module.device).eval()
        encoder.requires_grad_(False)
        return encoder

    return cached_on_module(module, "pretrained_encoder", load)


@contextlib.contextmanager
def dropout_active(root: nn.Module) -> Iterator[None]:
    """Switch on dropout, and nothing else, under ``root`` for MC-dropout passes.

    Dropout modules go to train mode, and so do the modules that own them, because
    transformers' attention applies its probability dropout functionally, gated by
    the owning attention module's ``training`` flag. Every other module keeps its
    mode (BatchNorm statistics, for instance, are untouched).
    """
    changed: list[tuple[nn.Module, bool]] = []
    for parent in root.modules():
        children = list(parent.children())
        if any(isinstance(child, nn.modules.dropout._DropoutNd) for child in children):
            changed.append((parent, parent.training))
            parent.training = True
            for child in children:
                if isinstance(child, nn.modules.dropout._DropoutNd):
                    changed.append((child, child.training))
                    child.training = True
    if isinstance(root, nn.modules.dropout._DropoutNd):
        changed.append((root, root.training))
        root.training = True
    try:
        yield
    finally:
        for mod, mode in reversed(changed):
            mod.training = mode


@contextlib.contextmanager
def eval_mode(root: nn.Module) -> Iterator[None]:
    """Every module under ``root`` in eval mode (no dropout), previous modes restored afterwards."""
    modes = [(mod, mod.training) for mod in root.modules()]
    for mod, _ in modes:
        mod.training = False
    try:
        yield
    finally:
        for mod, mode in modes:
            mod.training = mode


@contextlib.contextmanager
def seeded(seed: int, first_index: int, draw: int) -> Iterator[None]:
    """Seed torch's RNG for one stochastic pass, restoring the outer RNG state afterwards.

    The seed depends on the strategy's seed, the batch (its smallest pool index)
    and the pass number, so results do not depend on the order batches run in.
    """
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed((int(seed) * 1_000_003 + first_index * 101 + draw) % (2**63 - 1))
        yield
