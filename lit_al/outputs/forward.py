"""The shared forward pass of a prediction batch, and helpers the output computers use.

``ForwardCache`` runs the classifier's eval-mode forward pass lazily, once per
batch, and hands its pieces (encoder output, head features h(x), logits) to every
computer of that batch. The helpers switch dropout on
for MC passes (``dropout_active``), force eval mode (``eval_mode``), seed one
stochastic pass without touching the outer RNG (``seeded``), and keep models a
computer loads (the frozen pre-trained encoder, the classifier's tokenizer)
beside the classifier module (``cached_on_module``). ``Classifier`` is what the computers
use of the classifier: the outputs floor sits below ``lit_al.model`` and knows it by this
contract only (``TextClassifier`` fulfils it).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Protocol, TypeVar

import torch
from torch import nn


class Classifier(Protocol):
    """The classifier as the output computers see it (``lit_al.model.TextClassifier`` provides it).

    ``head_kind`` is ``native`` (the encoder's own classification network) or ``lit_al``;
    ``forward_parts`` returns the pieces of one pass (``encoder_output``, ``features`` h(x),
    ``logits``); ``head_logits`` runs the head alone over an encoder output computed before.
    """

    encoder: nn.Module
    head_kind: str
    model_path: str
    multi_label: bool
    hparams: Any

    @property
    def device(self) -> torch.device: ...

    @property
    def head_root(self) -> nn.Module: ...

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def encode(self, batch: dict[str, torch.Tensor], **kwargs: Any) -> Any: ...

    def sentence_representation(self, encoder_output: Any, attention_mask: torch.Tensor) -> torch.Tensor: ...

    def forward_parts(self, batch: dict[str, torch.Tensor], encoder_output: Any = None) -> Any: ...

    def head_logits(self, batch: dict[str, torch.Tensor], encoder_output: Any) -> torch.Tensor: ...

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor: ...


class ForwardCache:
    """One eval-mode forward pass, computed lazily and shared by the computers of a batch.

    ``encoder_output`` alone runs only the encoder for lit_al's head; for the native head
    (whose encoder runs inside the network's own forward) it runs the whole pass.
    ``features`` (h(x), the input of the output layer) and ``logits`` reuse an encoder
    output computed before.
    """

    def __init__(self, module: Classifier, batch: dict[str, torch.Tensor]) -> None:
        self.module = module
        self.batch = batch
        self._output = None
        self._features: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None

    @property
    def has_encoder_output(self) -> bool:
        """Whether the shared encoder pass has already run for this batch."""
        return self._output is not None

    def _run(self) -> None:
        parts = self.module.forward_parts(self.batch, self._output)
        self._output, self._features, self._logits = parts.encoder_output, parts.features, parts.logits

    @property
    def encoder_output(self):
        if self._output is None:
            if getattr(self.module, "head_kind", None) == "native":
                self._run()
            else:
                self._output = self.module.encode(self.batch)
        return self._output

    @property
    def features(self) -> torch.Tensor:
        if self._features is None:
            self._run()
        return self._features

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._run()
        return self._logits


T = TypeVar("T")


def cached_on_module(module: object, key: str, build: Callable[[], T]) -> T:
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


def classifier_tokenizer(module: Classifier):
    """The classifier's own tokenizer (special ids, word pieces, vocabulary), loaded once per module."""

    def load():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(module.model_path, trust_remote_code=module.hparams.trust_remote_code)

    return cached_on_module(module, "classifier_tokenizer", load)


def special_token_ids(module: Classifier, device: torch.device) -> torch.Tensor:
    """The classifier tokenizer's special ids: [CLS], [SEP], [PAD], [MASK] and also [UNK] (built once per device)."""

    def build() -> torch.Tensor:
        ids = sorted({int(i) for i in classifier_tokenizer(module).all_special_ids})
        return torch.tensor(ids, dtype=torch.long, device=device)

    return cached_on_module(module, f"special_token_ids:{device}", build)


def pretrained_encoder(module: Classifier) -> nn.Module:
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
