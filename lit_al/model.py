"""``TextClassifier``: a Hugging Face encoder with a softmax or sigmoid head.

Two heads: ``native`` (default), the encoder's own ``AutoModelForSequenceClassification``
(``native_head``), so that the model a run keeps is a standard Hugging Face model; and
``lit_al``, lit_al's own head (``cls``/``pooled``/``mean`` pooling, an optional hidden
layer) for the papers' configurations that need it. The pool outputs strategies score with
are computed over it by ``lit_al.outputs.predictor.OutputPredictor`` (the module
``trainer.predict`` runs), not by the classifier itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics import classification as C

from .errors import ConfigError
from .hub import resolve_model_path
from .atomic import atomic_write_bytes, atomic_write_json
from . import native_head as native
from .rundir import RUN_MODEL_DIR, RUN_MODEL_META  # noqa: F401  (the run's model folder: named there, torch-free)

log = logging.getLogger(__name__)

#: The encoder used when the config names none (offline: the pip-installed copy, see ``hub``).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

Pooling = Literal["cls", "pooled", "mean"]
Head = Literal["native", "lit_al"]
#: Options that shape lit_al's own head only (``head: lit_al``); setting one selects that head when ``head`` is unset.
LIT_AL_HEAD_OPTIONS = ("pooling", "hidden_size", "hidden_activation")


@dataclass
class ForwardParts:
    """One forward pass, in pieces: the encoder's output, the input of the output layer (h(x)) and the logits."""

    encoder_output: Any
    features: torch.Tensor
    logits: torch.Tensor


class ClassificationHead(nn.Module):
    """Dropout + linear over the sentence representation, with an optional hidden layer.

    ``features(r)`` is the penultimate representation h(x) (the input of ``out``):
    ``r`` itself, or ``act(W_h · dropout(r) + b_h)`` with a hidden layer (BEAL's
    "sentence feature -> hidden layer -> J sigmoid outputs").
    """

    def __init__(self, in_dim: int, num_labels: int, dropout: float, hidden_size: int | None = None,
                 hidden_activation: str = "relu") -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.hidden: nn.Sequential | None = None
        if hidden_size:
            activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
            if hidden_activation not in activations:
                raise ConfigError(f"model.hidden_activation must be one of {sorted(activations)}, got {hidden_activation!r}")
            self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_size), activations[hidden_activation]())
        self.out = nn.Linear(hidden_size or in_dim, num_labels)

    def features(self, representation: torch.Tensor) -> torch.Tensor:
        if self.hidden is None:
            return representation
        return self.hidden(self.dropout(representation))

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.features(representation)))


class TextClassifier(pl.LightningModule):
    """A transformer encoder fine-tuned for single-label (softmax) or multi-label (sigmoid) classification.

    Args:
        model_name_or_path: a hub name (``sentence-transformers/all-MiniLM-L6-v2``) or a local folder.
        head: ``native``: the encoder's own ``AutoModelForSequenceClassification`` head (BERT's
            pooler + linear, RoBERTa's dense + tanh + out_proj, DeBERTa's context pooler, …),
            exported as that standard class. ``lit_al``: lit_al's head, shaped by ``pooling``,
            ``hidden_size`` and ``hidden_activation``. ``null`` (default): ``lit_al`` when one of
            those three is set, else ``native``.
        pooling: (``head: lit_al``) sentence representation fed to the head: ``cls`` (last-layer
            [CLS] state, the papers' text; the default), ``pooled`` (the encoder's pooler output)
            or ``mean`` (mask-aware mean of the last layer).
        dropout: head dropout. ``lit_al`` head: by default the encoder's ``hidden_dropout_prob``
            (0.1 when the config has none); ``native``: sets every dropout module of the native
            head, by default the architecture's own.
        hidden_size: (``head: lit_al``) width of an optional hidden layer in the head (BEAL); ``null`` for none.
        hidden_activation: (``head: lit_al``) relu (default) | tanh | gelu for that layer.
        lr: AdamW learning rate.
        head_lr: learning rate of the head (every module outside the encoder); ``null``: ``lr``. A
            freshly initialised head far from its optimum learns little at an encoder's
            fine-tuning rate within a few hundred steps (docs/multilabel.md).
        output_bias: ``default`` (PyTorch's initialisation of the output layer) or
            ``prior``: the output biases start at the labeled set's label prior, log-odds
            ``log(p_j / (1 - p_j))`` for sigmoid outputs, ``log p_j`` for softmax, with
            ``p_j = (n_j + 0.5) / (n + 1)`` (:func:`prior_output_bias`), so that training
            starts from the prior instead of spending its first steps reaching it. ``auto``:
            ``prior`` for multi-label (sigmoid) heads, ``default`` for softmax heads. Measured on
            Reuters: micro-F1 0.0 → 0.76 at 500 labels (docs/multilabel.md).
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        adam_eps: AdamW epsilon.
        warmup_ratio: fraction of the training steps with a linear warmup.
        lr_schedule: ``linear`` decay to 0 over the training steps, or ``constant``.
        threshold: sigmoid threshold of multi-label predictions.
        trust_remote_code: passed to ``from_pretrained`` (only when you trust the model's code).
        attn_implementation: passed to ``from_pretrained`` (``eager`` is needed for attention outputs).
        compile: compile the encoder with ``torch.compile`` (``nn.Module.compile``, dynamic
            shapes: the batches are padded to their longest row). Pays on GPUs for long runs;
            the first batches of every new shape are slow while it compiles. Off by default;
            the weights, their names and what is saved are the same either way.
        num_labels, multi_label, label_names, positive_index: set from the data, not the config.
    """

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_MODEL,
        head: Head | None = None,
        pooling: Pooling | None = None,
        dropout: float | None = None,
        hidden_size: int | None = None,
        hidden_activation: str | None = None,
        lr: float = 5e-5,
        head_lr: float | None = None,
        output_bias: Literal["auto", "default", "prior"] = "auto",
        weight_decay: float = 0.0,
        adam_eps: float = 1e-8,
        warmup_ratio: float = 0.0,
        lr_schedule: Literal["linear", "constant"] = "linear",
        threshold: float = 0.5,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        compile: bool = False,
        num_labels: int = 2,
        multi_label: bool = False,
        label_names: list[str] | None = None,
        positive_index: int | None = None,
    ) -> None:
        super().__init__()
        head = resolve_head(head, pooling=pooling, hidden_size=hidden_size, hidden_activation=hidden_activation)
        if not 0 <= warmup_ratio < 1:
            raise ConfigError("model.warmup_ratio must be in [0, 1)")
        if lr <= 0 or (head_lr is not None and head_lr <= 0):
            raise ConfigError("model.lr and model.head_lr must be positive")
        if output_bias not in ("auto", "default", "prior"):
            raise ConfigError(f"model.output_bias must be auto, default or prior, got {output_bias!r}")
        if dropout is not None and not 0 <= dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout!r}")
        self.save_hyperparameters()
        self.head_kind = head
        self.model_path = resolve_model_path(model_name_or_path)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        names = list(label_names) if label_names else [str(i) for i in range(num_labels)]
        from safetensors import SafetensorError

        try:
            if head == "native":
                self._build_native(kwargs, num_labels, multi_label, names, dropout)
            else:
                self._build_lit_al(kwargs, num_labels, pooling or "cls", dropout, hidden_size, hidden_activation or "relu")
        except (OSError, ValueError, SafetensorError) as exc:  # SafetensorError: a truncated or corrupt weights file
            raise ConfigError(f"model.model_name_or_path {model_name_or_path!r}: cannot load the encoder: {exc}".splitlines()[0]) from None
        if compile:
            self.encoder.compile(dynamic=True)  # in place: state_dict keys stay those of the plain encoder
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_names = names
        self.positive_index = positive_index
        self.threshold = threshold
        self.val_metrics = self._metrics("val_")
        self.test_metrics = self._metrics("test_")
        #: dev and test loss: the mean over rows, summed over the DDP processes like the other metrics
        self.eval_losses = nn.ModuleDict({"val_": MeanMetric(), "test_": MeanMetric()})

    def _build_native(self, kwargs: dict[str, Any], num_labels: int, multi_label: bool, names: list[str],
                      dropout: float | None) -> None:
        """The encoder's own ``AutoModelForSequenceClassification`` as ``network``; ``encoder`` names its base model."""
        self.network = native.load_native(self.model_path, num_labels=num_labels, multi_label=multi_label,
                                          label_names=names, kwargs=kwargs)
        self.network.train()  # from_pretrained returns eval mode; Lightning keeps module modes as found
        # the encoder is the network's own base model: a second name for it, not a second registered submodule
        object.__setattr__(self, "encoder", self.network.base_model)
        self._output_layer_name = native.output_layer_name(self.network, num_labels)
        base = native.base_prefix(self.network)
        self._head_prefixes = tuple(f"network.{name}" for name, _ in self.network.named_children() if name != base)
        if dropout is not None:
            native.set_head_dropout(self.network, dropout)
        self.pooling = native.native_pooling(self.network)

    def _build_lit_al(self, kwargs: dict[str, Any], num_labels: int, pooling: str, dropout: float | None,
                      hidden_size: int | None, hidden_activation: str) -> None:
        """``AutoModel`` as ``encoder`` and lit_al's ``ClassificationHead`` as ``head``."""
        from transformers import AutoModel

        if pooling not in ("cls", "pooled", "mean"):
            raise ConfigError(f"model.pooling must be cls, pooled or mean, got {pooling!r}")
        self.encoder = AutoModel.from_pretrained(self.model_path, **kwargs)
        self.encoder.train()  # from_pretrained returns eval mode; Lightning keeps module modes as found
        pooler = getattr(self.encoder, "pooler", None)
        if pooling == "pooled" and not isinstance(pooler, nn.Module):
            raise ConfigError(f"model.pooling 'pooled': {type(self.encoder).__name__} has no pooler; use cls or mean "
                              "(or model.head: native, the encoder's own classification head)")
        if pooling != "pooled" and isinstance(pooler, nn.Module):
            # unused by this head: it gets no gradient anyway, and DDP refuses parameters without one
            pooler.requires_grad_(False)
        config = self.encoder.config
        encoder_dropout = getattr(config, "hidden_dropout_prob", None)  # an explicit 0.0 stays 0.0
        head_dropout = dropout if dropout is not None else float(0.1 if encoder_dropout is None else encoder_dropout)
        self.head = ClassificationHead(config.hidden_size, num_labels, head_dropout, hidden_size, hidden_activation)
        self.pooling = pooling

    # ------------------------------------------------------------------ forward
    def encode(self, batch: dict[str, torch.Tensor], **kwargs: Any):
        """Run the encoder on a padded batch; returns the transformers model output."""
        return self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)

    def sentence_representation(self, encoder_output, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = encoder_output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "pooled":
            pooled = getattr(encoder_output, "pooler_output", None)
            if pooled is None:
                raise ConfigError("model.pooling 'pooled': this encoder has no pooler output; use cls or mean")
            return pooled
        return mean_pooled(hidden, attention_mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.head_kind == "native":
            return self.network(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        output = self.encode(batch)
        return self.head(self.sentence_representation(output, batch["attention_mask"]))

    @property
    def output_layer(self) -> nn.Module | None:
        """The final linear layer (its input is h(x), its output the logits); None for a head without ``head.out``."""
        if self.head_kind == "native":
            return self.network.get_submodule(self._output_layer_name)
        out = getattr(getattr(self, "head", None), "out", None)
        return out if isinstance(out, nn.Linear) else None

    @property
    def head_root(self) -> nn.Module:
        """The module holding the head's dropout (MC dropout over the head only): ``head``, or the native network."""
        return self.network if self.head_kind == "native" else self.head

    def is_head_parameter(self, name: str) -> bool:
        """Whether the parameter ``name`` (as in ``named_parameters``) belongs to the head, not the encoder."""
        if self.head_kind == "native":
            return name.startswith(self._head_prefixes)
        return name.startswith("head.")

    def forward_parts(self, batch: dict[str, torch.Tensor], encoder_output: Any = None) -> ForwardParts:
        """One forward pass in pieces (``ForwardParts``); with ``encoder_output`` given, only the head runs."""
        if self.head_kind != "native":
            output = self.encode(batch) if encoder_output is None else encoder_output
            features = self.head.features(self.sentence_representation(output, batch["attention_mask"]))
            return ForwardParts(output, features, self.head.out(features))
        with native.captured(self.encoder, self.output_layer) as seen:
            if encoder_output is None:
                logits = self(batch)
            else:
                with native.replaced_output(self.encoder, encoder_output):
                    logits = self(batch)
        native.check_captured(seen, self.network)
        return ForwardParts(seen["encoder"], seen["features"], logits)

    def head_logits(self, batch: dict[str, torch.Tensor], encoder_output: Any) -> torch.Tensor:
        """The logits of the head alone over an encoder output computed before (MC dropout over the head)."""
        if self.head_kind != "native":
            return self.head(self.sentence_representation(encoder_output, batch["attention_mask"]))
        with native.replaced_output(self.encoder, encoder_output):
            return self(batch)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)

    @property
    def starts_from_label_prior(self) -> bool:
        """Whether each fit starts its output biases at the labeled set's prior (``output_bias``)."""
        return self.hparams.output_bias == "prior" or (self.hparams.output_bias == "auto" and self.multi_label)

    def start_from_label_prior(self, targets: torch.Tensor | np.ndarray) -> bool:
        """With ``output_bias: prior`` (or ``auto`` on a sigmoid head), set the output biases from the training targets (n × C, 0/1).

        Called before fitting on the labeled set; returns whether it set them.
        """
        if not self.starts_from_label_prior or targets.shape[0] == 0:
            return False
        layer = self.output_layer
        if not isinstance(layer, nn.Linear) or layer.bias is None:
            message = "model.output_bias: prior needs a head whose output layer is an nn.Linear with a bias (`head.out`)"
            if self.hparams.output_bias == "prior":
                raise ConfigError(message)
            log.warning("%s; this head keeps its own initialisation (set model.output_bias: default to silence this)", message)
            return False
        bias = prior_output_bias(targets, self.multi_label)
        with torch.no_grad():
            layer.bias.copy_(bias.to(layer.bias))
        return True

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits, targets)
        return F.cross_entropy(logits, targets.argmax(dim=-1))

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch), batch["labels"])
        self.log("train_loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: MetricCollection, prefix: str) -> None:
        if batch["input_ids"].shape[0] == 0:  # a DDP process's empty share of a small dev or test set
            return
        logits = self(batch)
        self.eval_losses[prefix].update(self.loss(logits, batch["labels"]), weight=logits.shape[0])
        probs = self.probabilities(logits)
        targets = batch["labels"].long() if self.multi_label else batch["labels"].argmax(-1)
        metrics.update(probs, targets)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val_")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test_")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics)

    def _log_metrics(self, metrics: MetricCollection) -> None:
        loss = self.eval_losses[metrics.prefix]
        with warnings.catch_warnings():
            if loss.update_count == 0:  # a DDP process whose share was an empty batch: it gets the synced values
                warnings.filterwarnings("ignore", "The ``compute`` method of metric", UserWarning)
            values = metrics.compute()
            flat: dict[str, torch.Tensor] = {f"{metrics.prefix}loss": loss.compute()}
        for name, value in values.items():
            if value.ndim == 0:
                flat[name] = value
            elif self.positive_index is not None:  # per-class vector: keep the target class
                flat[name] = value[self.positive_index]
        # torchmetrics summed the counts over the processes, so every process holds the same values;
        # "max" of equal values keeps them exact where a mean over three processes would round them
        self.log_dict(flat, sync_dist=True, reduce_fx="max")
        metrics.reset()
        loss.reset()

    # -------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        head_lr = self.hparams.head_lr or self.hparams.lr
        groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            decays = not (param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name)
            lr = head_lr if self.is_head_parameter(name) else self.hparams.lr
            groups.setdefault((lr, decays), []).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": params, "lr": lr, "weight_decay": self.hparams.weight_decay if decays else 0.0}
             for (lr, decays), params in groups.items()],
            lr=self.hparams.lr, eps=self.hparams.adam_eps,
        )
        if self.hparams.lr_schedule == "constant" and self.hparams.warmup_ratio == 0:
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = int(self.hparams.warmup_ratio * total)
        linear = self.hparams.lr_schedule == "linear"

        def factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            if not linear:
                return 1.0
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---------------------------------------------------------------- metrics
    def _metrics(self, prefix: str) -> MetricCollection:
        k = self.num_labels
        if self.multi_label:
            t = self.threshold
            metrics: dict[str, Any] = {
                "micro_f1": C.MultilabelF1Score(k, threshold=t, average="micro"),
                "macro_f1": C.MultilabelF1Score(k, threshold=t, average="macro"),
                "subset_accuracy": C.MultilabelExactMatch(k, threshold=t),
            }
        else:
            metrics = {
                "accuracy": C.MulticlassAccuracy(k, average="micro"),
                "macro_f1": C.MulticlassF1Score(k, average="macro"),
                "micro_f1": C.MulticlassF1Score(k, average="micro"),
            }
            if self.positive_index is not None:
                metrics.update({
                    "target_precision": C.MulticlassPrecision(k, average="none"),
                    "target_recall": C.MulticlassRecall(k, average="none"),
                    "target_f1": C.MulticlassF1Score(k, average="none"),
                })
        return MetricCollection(metrics, prefix=prefix)


def resolve_head(head: str | None, **options: Any) -> str:
    """``native`` or ``lit_al``: the configured head, or, when unset, ``lit_al`` if a lit_al-head option is set.

    Refuses a lit_al-head option (``pooling``, ``hidden_size``, ``hidden_activation``) with ``head: native``.
    """
    given = [name for name in LIT_AL_HEAD_OPTIONS if options.get(name) is not None]
    if head is None:
        return "lit_al" if given else "native"
    if head not in ("native", "lit_al"):
        raise ConfigError(f"model.head must be native or lit_al, got {head!r}")
    if head == "native" and given:
        raise ConfigError(f"model.{given[0]} shapes lit_al's own head, but model.head is native (the encoder's own "
                          f"classification head); remove model.{given[0]} or set model.head: lit_al")
    return head


def mean_pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mask-aware mean of ``hidden`` (batch × tokens × d) over the tokens ``attention_mask`` keeps."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def prior_output_bias(targets: torch.Tensor | np.ndarray, multi_label: bool, smoothing: float = 0.5) -> torch.Tensor:
    """Output biases at the label prior of ``targets`` (n × C, 0/1 rows).

    ``p_j = (n_j + smoothing) / (n + 2 · smoothing)`` (add-½: a label without a positive
    gets a finite bias); sigmoid outputs get the log-odds ``log p_j − log(1 − p_j)``, so
    that ``sigmoid(b_j) = p_j``; softmax outputs get ``log p_j``, so that ``softmax(b) ∝ p``.
    """
    targets = torch.as_tensor(targets, dtype=torch.float64)
    prior = (targets.sum(0) + smoothing) / (targets.shape[0] + 2 * smoothing)
    bias = torch.log(prior) - torch.log1p(-prior) if multi_label else torch.log(prior)
    return bias.to(torch.float32)


def load_tokenizer(model_kwargs: dict[str, Any]):
    """The fast tokenizer of the configured model (``hub.resolve_model_path``: the local copy when offline)."""
    from transformers import AutoTokenizer

    name = model_kwargs.get("model_name_or_path", DEFAULT_MODEL)
    return AutoTokenizer.from_pretrained(resolve_model_path(name), use_fast=True)


RUN_MODEL_WEIGHTS = "model.safetensors"


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as CPU tensors that own their memory (safetensors refuses shared storage)."""
    return {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}


def save_run_model(directory: Path, model: TextClassifier, model_kwargs: dict[str, Any], round_index: int) -> None:
    """Keep ``model`` as the run's last model: safetensors weights, then a JSON that names them (written last).

    The JSON holds the model options, the task (labels, multi-label, positive class), the
    round and the weights' SHA-256, so a crash between the two writes is detected on load.
    """
    from safetensors.torch import save

    weights = save(state_tensors(model))
    atomic_write_bytes(directory / RUN_MODEL_WEIGHTS, weights)
    meta = {
        "round": int(round_index),
        "model": dict(model_kwargs),
        "task": {"num_labels": model.num_labels, "multi_label": model.multi_label,
                 "label_names": list(model.label_names), "positive_index": model.positive_index},
        "sha256": hashlib.sha256(weights).hexdigest(),
    }
    atomic_write_json(directory / RUN_MODEL_META, meta)


def load_run_model(directory: Path) -> tuple[TextClassifier, dict[str, Any]]:
    """The model ``save_run_model`` kept in ``directory``, in eval mode, and its JSON."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from .rundir import read_run_model_meta

    meta_path, weights_path = directory / RUN_MODEL_META, directory / RUN_MODEL_WEIGHTS
    if not meta_path.exists() or not weights_path.exists():
        raise ConfigError(f"{directory}: no trained model yet (a run keeps its last model once a round has trained)")
    meta = read_run_model_meta(directory)  # one line for a damaged file
    weights = weights_path.read_bytes()
    if hashlib.sha256(weights).hexdigest() != meta.get("sha256"):
        raise ConfigError(f"{weights_path}: does not match {meta_path.name} (interrupted write?); run the next round again")
    kwargs = dict(meta["model"])
    kwargs.setdefault("head", "lit_al")  # kept before model.head existed: lit_al's head was the only one
    try:
        model = TextClassifier(**kwargs, **meta["task"])
    except (TypeError, ValueError) as exc:  # options this version does not know, or values it refuses
        raise ConfigError(f"{meta_path}: describes a model that cannot be built: {str(exc).splitlines()[0]}") from None
    try:
        model.load_state_dict(load(weights))
    except (SafetensorError, RuntimeError) as exc:
        raise ConfigError(f"{weights_path}: cannot load the weights: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model, meta
