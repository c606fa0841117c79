"""``write_onnx``: a run's classifier as an ONNX graph (token ids in, ``logits`` out) that onnxruntime runs.

The folder is laid out as optimum's ``ORTModelForSequenceClassification`` reads one: ``model.onnx``
next to ``config.json`` (``id2label``, ``problem_type``) and the tokenizer files; the graph's inputs
are ``input_ids`` and ``attention_mask`` (plus ``token_type_ids`` where the transformers class reads
them and the tokenizer writes them), both axes dynamic (``batch_size``, ``sequence_length``), and
its output is ``logits``. Probabilities are ``softmax(logits)`` for ``single_label_classification``
and ``sigmoid(logits)`` for ``multi_label_classification``, as in lit_al and the pipeline.

The graph is traced by torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``),
not by optimum: no optimum release exports under transformers 5 (the README gives the versions),
and on torch 2.13 the ``torch.export``-based exporter took 47–70 s per tiny encoder on one CPU core
against 2–15 s, with the same logits (both within 3e-7 of torch on nine encoder families). Every
export is checked before it is kept: onnxruntime's logits on a batch of another shape than the
traced one must match the torch model's to ``TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, one_line

ONNX_FILE = "model.onnx"
OPSET = 17
TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'lit_al[onnx]'"
_AXES = {0: "batch_size", 1: "sequence_length"}
#: traced on the first two, checked on the last three (another batch size and padded length)
_SAMPLES = ("an example text for the exporter", "a second one", "one", "short", "the third example, a longer text than the others")


def require_onnx() -> None:
    """Raise one line naming the extra when onnx or onnxruntime is not installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError(f"lit_al export --format onnx needs onnx and onnxruntime: {INSTALL_HINT}") from None


class LogitsGraph(nn.Module):
    """What the ONNX file computes: a transformers ``*ForSequenceClassification`` or a lit_al model, logits out."""

    def __init__(self, module: nn.Module, transformers_class: bool) -> None:
        super().__init__()
        self.inner = module
        self.transformers_class = transformers_class

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if not self.transformers_class:  # lit_al's own head reads ids and mask only, as in training
            return self.inner({"input_ids": input_ids, "attention_mask": attention_mask})
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, **types).logits


def input_names(module: nn.Module, transformers_class: bool, tokenizer) -> list[str]:
    """``input_ids``, ``attention_mask``, and ``token_type_ids`` when the class reads them and the tokenizer writes them."""
    names = ["input_ids", "attention_mask"]
    if (transformers_class and "token_type_ids" in tokenizer.model_input_names
            and "token_type_ids" in inspect.signature(module.forward).parameters
            and getattr(module.config, "type_vocab_size", 0) > 0):
        names.append("token_type_ids")
    return names


def write_onnx(directory: Path, module: nn.Module, *, transformers_class: bool, tokenizer, where: Path) -> list[str]:
    """Trace ``module`` into ``directory/model.onnx``, check it with onnxruntime, and return the graph's input names.

    ``transformers_class``: ``module`` is a transformers ``*ForSequenceClassification`` (else a
    lit_al ``TextClassifier``). ``where`` names the run in error lines.
    """
    names = input_names(module, transformers_class, tokenizer)
    graph = LogitsGraph(module, transformers_class).eval()
    traced = _encode(tokenizer, _SAMPLES[:2], names)
    path = directory / ONNX_FILE
    with _uncompiled(module):
        _trace(graph, traced, names, path, where)
        return _check(path, graph, _encode(tokenizer, _SAMPLES[2:], names), where)


@contextlib.contextmanager
def _uncompiled(module: nn.Module) -> Iterator[None]:
    """Within the block, modules compiled by ``model.compile: true`` run eagerly (the tracer refuses dynamo's code)."""
    compiled = {m: m.__dict__["_compiled_call_impl"] for m in module.modules()
                if m.__dict__.get("_compiled_call_impl") is not None}
    for m in compiled:
        m._compiled_call_impl = None
    try:
        yield
    finally:
        for m, call in compiled.items():
            m._compiled_call_impl = call


def _trace(graph: LogitsGraph, traced: dict[str, torch.Tensor], names: list[str], path: Path, where: Path) -> None:
    module = graph.inner
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice and tracer warnings
            torch.onnx.export(graph, tuple(traced[name] for name in names), str(path), input_names=names,
                              output_names=["logits"], dynamic_axes={**{n: _AXES for n in names}, "logits": {0: "batch_size"}},
                              opset_version=OPSET, dynamo=False)
    except Exception as exc:  # an operation the exporter cannot trace: name the model, not the exporter's internals
        raise ConfigError(f"{where}: torch's ONNX exporter cannot export this {type(module).__name__}: "
                          f"{one_line(exc)[:300]}; export it natively (--format native)") from None


def _encode(tokenizer, texts, names: list[str]) -> dict[str, torch.Tensor]:
    encoded = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    return {name: encoded[name] if name in encoded else torch.zeros_like(encoded["input_ids"]) for name in names}


def _check(path: Path, graph: LogitsGraph, batch: dict[str, torch.Tensor], where: Path) -> list[str]:
    """onnxruntime's logits on ``batch`` must equal the torch model's to ``TOLERANCE``; returns the graph's input names."""
    import onnx
    import onnxruntime

    try:
        onnx.checker.check_model(str(path))
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
        got = session.run(["logits"], feed)[0]
    except Exception as exc:  # onnx and onnxruntime raise their own types: one line, the model named
        raise ConfigError(f"{where}: onnxruntime cannot run the exported graph: {one_line(exc)[:300]}; "
                          "export it natively (--format native)") from None
    with torch.no_grad():
        expected = graph(*(batch[name] for name in batch)).numpy()
    gap = float(abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not gap <= TOLERANCE:
        raise ConfigError(f"{where}: the ONNX graph's logits differ from the model's by {gap:.2g} "
                          f"(more than {TOLERANCE:g}); export it natively (--format native)")
    return list(feed)
