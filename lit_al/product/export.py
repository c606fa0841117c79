"""``export_run``: a run's last model as a standard Hugging Face folder that loads without lit_al.

Three shapes, chosen by what the model is:

- **native** (``model.head: native``, the default): the model *is* the encoder's own
  ``AutoModelForSequenceClassification``; it is written with its ``save_pretrained``.
- **standard** (``model.head: lit_al`` heads that equal a transformers class exactly): the
  weights are renamed onto that class, loaded into it strictly, and saved with its
  ``save_pretrained``. ``EXACT_HEADS`` lists them: BERT and ALBERT with ``pooling: pooled``
  and no hidden layer (pooler, dropout, linear); RoBERTa, XLM-R and MPNet with ``pooling:
  cls`` and a hidden layer of the model's width with tanh (their classification head);
  ELECTRA and DeBERTa-v2 the same with gelu; DistilBERT the same with relu (in eval mode:
  lit_al's head puts a dropout before its hidden layer, DistilBERT's does not).
- **custom** (``trust_remote_code=True``): every other lit_al head (``mean`` pooling, other
  hidden layers, other encoders) is written with a small architecture of its own,
  ``modeling_lit_al.py`` + ``configuration_lit_al.py`` in the folder, registered through
  ``auto_map`` in ``config.json``; it needs only torch and transformers.

All carry ``id2label`` / ``label2id`` and ``problem_type`` (``single_label_classification``
or ``multi_label_classification``, so the ``text-classification`` pipeline applies softmax or
sigmoid), safetensors weights, and the encoder's tokenizer with ``model_max_length`` set to
the run's ``data.max_length`` (``truncation=True`` then cuts texts as lit_al did). No local
path is written (``_name_or_path`` is the hub name the run was configured with, or empty),
and the folder and its files get the permissions the process's umask gives new files.

``format="onnx"`` writes the same model as ``model.onnx`` beside ``config.json`` and the tokenizer
(``onnx_export``): transformers classes traced as themselves, any other lit_al head as lit_al
computes it, so no remote code is needed in any case.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model import RUN_MODEL_DIR, TextClassifier, load_run_model, load_tokenizer, state_tensors
from .run_files import check_run_dir, run_max_length


@dataclass(frozen=True)
class ExactHead:
    """A lit_al head that a transformers class computes exactly: when it applies and how the weights are renamed."""

    pooling: str
    activation: str | None  # None: no hidden layer; else a hidden layer of the encoder's width with this activation
    renames: tuple[tuple[str, str], ...]  # lit_al prefix -> the class's prefix
    dropout_fields: tuple[str, ...]  # config fields holding the head's dropout


_ROBERTA_LIKE = (("head.hidden.0.", "classifier.dense."), ("head.out.", "classifier.out_proj."))
#: model_type -> the lit_al head its ``*ForSequenceClassification`` computes exactly.
EXACT_HEADS = {
    "bert": ExactHead("pooled", None, (("encoder.", "bert."), ("head.out.", "classifier.")), ("classifier_dropout",)),
    "albert": ExactHead("pooled", None, (("encoder.", "albert."), ("head.out.", "classifier.")), ("classifier_dropout_prob",)),
    "roberta": ExactHead("cls", "tanh", (("encoder.", "roberta."),) + _ROBERTA_LIKE, ("classifier_dropout",)),
    "xlm-roberta": ExactHead("cls", "tanh", (("encoder.", "roberta."),) + _ROBERTA_LIKE, ("classifier_dropout",)),
    "mpnet": ExactHead("cls", "tanh", (("encoder.", "mpnet."),) + _ROBERTA_LIKE, ()),
    "electra": ExactHead("cls", "gelu", (("encoder.", "electra."),) + _ROBERTA_LIKE, ("classifier_dropout",)),
    "deberta-v2": ExactHead("cls", "gelu", (("encoder.", "deberta."), ("head.hidden.0.", "pooler.dense."),
                                            ("head.out.", "classifier.")), ("pooler_dropout", "cls_dropout")),
    "distilbert": ExactHead("cls", "relu", (("encoder.", "distilbert."), ("head.hidden.0.", "pre_classifier."),
                                            ("head.out.", "classifier.")), ("seq_classif_dropout",)),
}
CUSTOM_ARCHITECTURE = "LitAlForSequenceClassification"
CUSTOM_CODE = Path(__file__).resolve().parent / "hf_code"
CUSTOM_FILES = ("configuration_lit_al.py", "modeling_lit_al.py")
EXPORT_INFO = "lit_al_export.json"


@dataclass(frozen=True)
class Exported:
    """What ``export_run`` wrote: the folder, its architecture, whether loading it needs ``trust_remote_code``, its format."""

    directory: Path
    architecture: str
    trust_remote_code: bool
    round: int
    format: str = "native"


def exact_head(model: TextClassifier) -> ExactHead | None:
    """The ``ExactHead`` a lit_al-head ``model`` matches, or None (native heads and every other lit_al head)."""
    if model.head_kind != "lit_al":
        return None
    config = model.encoder.config
    exact = EXACT_HEADS.get(getattr(config, "model_type", ""))
    if exact is None or model.pooling != exact.pooling or type(model.head).__name__ != "ClassificationHead":
        return None
    hparams = model.hparams
    if exact.activation is None:
        return exact if not hparams.hidden_size else None
    if hparams.hidden_size != config.hidden_size or (hparams.hidden_activation or "relu") != exact.activation:
        return None
    if config.model_type == "deberta-v2" and (getattr(config, "pooler_hidden_act", "gelu") != "gelu"
                                              or getattr(config, "pooler_hidden_size", config.hidden_size) != config.hidden_size):
        return None
    return exact


FORMATS = ("native", "onnx")


def export_run(run_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False, format: str = "native") -> Exported:
    """Write the last model of ``run_dir`` to ``out_dir`` (a new folder, filled in a temporary one and renamed).

    ``format``: ``native`` (a transformers folder, ``save_pretrained``) or ``onnx`` (``model.onnx``
    with ``config.json`` and the tokenizer, ``onnx_export``; needs the ``onnx`` extra).
    """
    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "onnx":
        from .onnx_export import require_onnx

        require_onnx()
    run_dir = check_run_dir(run_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir}: exists and is not empty; choose another folder or pass --overwrite true")
    model, meta = load_run_model(run_dir / RUN_MODEL_DIR)
    if model.hparams.trust_remote_code:
        raise ConfigError(f"{run_dir}: the encoder {meta['model'].get('model_name_or_path')!r} runs its own remote code; "
                          "lit_al exports only encoders that transformers ships")
    name = meta["model"].get("model_name_or_path")
    network = native_network(model, name)
    architecture = type(network).__name__ if network is not None else CUSTOM_ARCHITECTURE
    remote_code = network is None and format == "native"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tokenizer = load_tokenizer(meta["model"])
        tokenizer.model_max_length = run_max_length(run_dir)
        info = {"run": run_dir.resolve().name, "round": meta["round"], "format": format, "architecture": architecture,
                "head": model.head_kind, "trust_remote_code": remote_code, "threshold": model.threshold}
        if format == "onnx":
            info["onnx"] = _write_onnx(staging, model, network, name, tokenizer, run_dir)
        elif network is not None:
            network.save_pretrained(staging)
        else:
            config, tensors = _custom(model, name)
            _write_custom(staging, config, tensors)
        tokenizer.save_pretrained(staging)
        (staging / EXPORT_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        _follow_umask(staging)
        exported = Exported(out_dir, architecture, remote_code, meta["round"], format)
        # last, once nothing can fail: an export that fails leaves out_dir as it was
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return exported


def _write_onnx(directory: Path, model: TextClassifier, network, configured_name: str | None, tokenizer,
                run_dir: Path) -> dict[str, Any]:
    """``model.onnx`` and a ``config.json`` that loads without remote code; returns what ``lit_al_export.json`` says of the graph.

    A model a transformers class computes (``network``) is traced as that class, with its config;
    any other lit_al head is traced as lit_al computes it, under the encoder's config (the graph
    holds the head, so no ``modeling_lit_al.py`` is needed) with the labels and ``problem_type``.
    """
    from .onnx_export import ONNX_FILE, OPSET, write_onnx

    if network is not None:
        inputs = write_onnx(directory, network, transformers_class=True, tokenizer=tokenizer, where=run_dir)
        config = network.config
        config.architectures = [type(network).__name__]  # as save_pretrained sets it (the checkpoint's may be *ForMaskedLM)
    else:
        inputs = write_onnx(directory, model, transformers_class=False, tokenizer=tokenizer, where=run_dir)
        config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
        config.id2label = {i: label for i, label in enumerate(model.label_names)}
        config.label2id = {label: i for i, label in enumerate(model.label_names)}
        config.problem_type = _labels(model)["problem_type"]
        config.architectures = None
        config.name_or_path = public_name(configured_name)
    config.save_pretrained(directory)
    return {"file": ONNX_FILE, "inputs": inputs, "output": "logits", "opset": OPSET,
            "probabilities": "sigmoid" if model.multi_label else "softmax"}


def public_name(name: str | None) -> str:
    """``name`` when it is a hub name, "" when it is a local path (no local path leaves the machine in an export)."""
    if not name or os.path.isabs(name) or Path(name).exists() or name.startswith((".", "~")):
        return ""
    return name


def native_network(model: TextClassifier, configured_name: str | None):
    """The transformers ``*ForSequenceClassification`` that computes ``model`` exactly, or None (custom export)."""
    if model.head_kind == "native":
        network = model.network
    else:
        exact = exact_head(model)
        if exact is None:
            return None
        network = _standard(model, exact)
    network.config.name_or_path = public_name(configured_name)
    return network


def _follow_umask(root: Path) -> None:
    """Give ``root`` and everything under it the permissions new files get under this process's umask.

    The folder is made by ``mkdtemp`` (always 0700, so that it is private while it fills up).
    """
    mask = os.umask(0)
    os.umask(mask)
    for path in [root, *root.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _labels(model: TextClassifier) -> dict[str, Any]:
    return {
        "id2label": {str(i): name for i, name in enumerate(model.label_names)},
        "label2id": {name: i for i, name in enumerate(model.label_names)},
        "problem_type": "multi_label_classification" if model.multi_label else "single_label_classification",
    }


def _standard(model: TextClassifier, exact: ExactHead):
    """The transformers class ``exact`` names, built from the encoder's config, holding ``model``'s weights (strict load)."""
    from transformers import AutoModelForSequenceClassification

    config = model.encoder.config.__class__.from_dict(model.encoder.config.to_dict())
    config.id2label = {i: name for i, name in enumerate(model.label_names)}
    config.label2id = {name: i for i, name in enumerate(model.label_names)}
    config.problem_type = _labels(model)["problem_type"]
    for field in exact.dropout_fields:
        setattr(config, field, model.head.dropout.p)
    network = AutoModelForSequenceClassification.from_config(config)
    expected = network.state_dict()
    renamed = {}
    for name, tensor in state_tensors(model).items():
        target = next((new + name[len(old):] for old, new in exact.renames if name.startswith(old)), None)
        if target in expected:
            renamed[target] = tensor
        elif not name.startswith("encoder.pooler."):  # a pooler the class does not build (this head does not read it)
            raise ConfigError(f"cannot map parameter {name!r} onto {type(network).__name__}")
    missing = sorted(set(expected) - set(renamed))
    if missing:
        raise ConfigError(f"cannot export onto {type(network).__name__}: no weights for {', '.join(missing[:3])}")
    network.load_state_dict(renamed, strict=True)
    return network.eval()


def _custom(model: TextClassifier, configured_name: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """lit_al's own architecture: the encoder config nested, the head described, the weights as lit_al names them."""
    import transformers

    hparams = model.hparams
    encoder = model.encoder.config.to_dict()
    encoder["_name_or_path"] = public_name(configured_name)
    config = {
        "model_type": "lit_al_text_classifier",
        "architectures": [CUSTOM_ARCHITECTURE],
        "auto_map": {
            "AutoConfig": "configuration_lit_al.LitAlClassifierConfig",
            "AutoModelForSequenceClassification": f"modeling_lit_al.{CUSTOM_ARCHITECTURE}",
        },
        "encoder": encoder,
        "pooling": model.pooling,
        "head_hidden_size": hparams.hidden_size or None,
        "head_activation": hparams.hidden_activation or "relu",
        "head_dropout": model.head.dropout.p,
        "threshold": model.threshold,
        "transformers_version": transformers.__version__,
        **_labels(model),
    }
    return config, state_tensors(model)


def _write_custom(directory: Path, config: dict[str, Any], tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    for name in CUSTOM_FILES:
        shutil.copyfile(CUSTOM_CODE / name, directory / name)
