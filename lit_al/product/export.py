"""``export_run``: a run's last model as a standard Hugging Face folder that loads without lit_al.

Two shapes, chosen by what the model is:

- **standard** (no ``trust_remote_code``): a BERT encoder (``model_type: bert``) with
  ``pooling: pooled`` and no hidden head layer is exactly ``BertForSequenceClassification``
  (pooler, dropout, linear): its weights are renamed (``encoder.*`` -> ``bert.*``,
  ``head.out.*`` -> ``classifier.*``).
- **custom** (``trust_remote_code=True``): every other configuration (``cls`` or ``mean``
  pooling, a hidden head layer, other encoders) is written with a small architecture of
  its own, ``modeling_lit_al.py`` + ``configuration_lit_al.py`` in the folder, registered
  through ``auto_map`` in ``config.json``; it needs only torch and transformers.

Both carry ``id2label`` / ``label2id`` and ``problem_type`` (``single_label_classification``
or ``multi_label_classification``, so the ``text-classification`` pipeline applies softmax or
sigmoid), safetensors weights, and the encoder's tokenizer with ``model_max_length`` set to
the run's ``data.max_length`` (``truncation=True`` then cuts texts as lit_al did).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model import RUN_MODEL_DIR, TextClassifier, load_run_model, load_tokenizer, state_tensors
from .run_files import check_run_dir, run_max_length

#: Encoders whose ``*ForSequenceClassification`` is pooler -> dropout -> linear: model_type -> (class, prefix).
STANDARD_ARCHITECTURES = {"bert": ("BertForSequenceClassification", "bert")}
CUSTOM_ARCHITECTURE = "LitAlForSequenceClassification"
CUSTOM_CODE = Path(__file__).resolve().parent / "hf_code"
CUSTOM_FILES = ("configuration_lit_al.py", "modeling_lit_al.py")
EXPORT_INFO = "lit_al_export.json"


@dataclass(frozen=True)
class Exported:
    """What ``export_run`` wrote: the folder, its architecture and whether loading it needs ``trust_remote_code``."""

    directory: Path
    architecture: str
    trust_remote_code: bool
    round: int


def standard_architecture(model: TextClassifier) -> tuple[str, str] | None:
    """(class name, weight prefix) of the transformers class that computes ``model`` exactly, or None."""
    standard = STANDARD_ARCHITECTURES.get(getattr(model.encoder.config, "model_type", ""))
    if standard is None or model.pooling != "pooled" or model.hparams.hidden_size:
        return None
    return standard


def export_run(run_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Exported:
    """Write the last model of ``run_dir`` to ``out_dir`` (a new folder, filled in a temporary one and renamed)."""
    run_dir = check_run_dir(run_dir)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir}: exists and is not empty; choose another folder or pass --overwrite true")
    model, meta = load_run_model(run_dir / RUN_MODEL_DIR)
    if model.hparams.trust_remote_code:
        raise ConfigError(f"{run_dir}: the encoder {meta['model'].get('model_name_or_path')!r} runs its own remote code; "
                          "lit_al exports only encoders that transformers ships")
    standard = standard_architecture(model)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if standard is not None:
            config, tensors = _standard(model, *standard)
        else:
            config, tensors = _custom(model)
        _write_model(staging, config, tensors)
        tokenizer = load_tokenizer(meta["model"])
        tokenizer.model_max_length = run_max_length(run_dir)
        tokenizer.save_pretrained(staging)
        info = {"run_dir": str(run_dir.resolve()), "round": meta["round"], "architecture": config["architectures"][0],
                "trust_remote_code": standard is None, "threshold": model.threshold}
        (staging / EXPORT_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        exported = Exported(out_dir, config["architectures"][0], standard is None, meta["round"])
        # last, once nothing can fail: an export that fails leaves out_dir as it was
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return exported


def _labels(model: TextClassifier) -> dict[str, Any]:
    return {
        "id2label": {str(i): name for i, name in enumerate(model.label_names)},
        "label2id": {name: i for i, name in enumerate(model.label_names)},
        "problem_type": "multi_label_classification" if model.multi_label else "single_label_classification",
    }


def _standard(model: TextClassifier, architecture: str, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The encoder's config with the labels, and the weights under the standard class's names."""
    config = model.encoder.config.to_dict()
    config.update(_labels(model), architectures=[architecture], classifier_dropout=model.head.dropout.p)
    renamed = {}
    for name, tensor in state_tensors(model).items():
        if name.startswith("encoder."):
            renamed[f"{prefix}.{name[len('encoder.'):]}"] = tensor
        elif name.startswith("head.out."):
            renamed[f"classifier.{name[len('head.out.'):]}"] = tensor
        else:  # a head without a hidden layer has no other parameters
            raise ConfigError(f"cannot map parameter {name!r} onto {architecture}")
    return config, renamed


def _custom(model: TextClassifier) -> tuple[dict[str, Any], dict[str, Any]]:
    """lit_al's own architecture: the encoder config nested, the head described, the weights as lit_al names them."""
    import transformers

    hparams = model.hparams
    config = {
        "model_type": "lit_al_text_classifier",
        "architectures": [CUSTOM_ARCHITECTURE],
        "auto_map": {
            "AutoConfig": "configuration_lit_al.LitAlClassifierConfig",
            "AutoModelForSequenceClassification": f"modeling_lit_al.{CUSTOM_ARCHITECTURE}",
        },
        "encoder": model.encoder.config.to_dict(),
        "pooling": model.pooling,
        "head_hidden_size": hparams.hidden_size or None,
        "head_activation": hparams.hidden_activation,
        "head_dropout": model.head.dropout.p,
        "threshold": model.threshold,
        "transformers_version": transformers.__version__,
        **_labels(model),
    }
    return config, state_tensors(model)


def _write_model(directory: Path, config: dict[str, Any], tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    if config["architectures"][0] == CUSTOM_ARCHITECTURE:
        for name in CUSTOM_FILES:
            shutil.copyfile(CUSTOM_CODE / name, directory / name)
