"""``lit_al export RUN OUT --format onnx``: onnxruntime gives lit_al's probabilities on three encoder families.

Runs are a kept model (perturbed random weights, so the logits are far from uniform) and a
``config.yaml``, as ``export`` reads them. The ONNX files are run by onnxruntime in a process
where ``import lit_al`` fails, on a padded batch, with softmax or sigmoid chosen from
``config.json``'s ``problem_type`` (the README's recipe); lit_al's probabilities are computed one
unpadded text at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lit_al.cli import main
from lit_al.model import TextClassifier, save_run_model
from lit_al.product import onnx_export
from lit_al.product.export import export_run
from test_product import LABELS, TEXTS, _assert_no_local_path, _reference_probs
from tiny_encoders import write_encoder

#: WordPiece; byte-level BPE; Unigram with DeBERTa-v3's relative attention
FAMILIES = ["bert", "roberta", "deberta-v2"]

ORT_SCRIPT = r"""
import json, sys
sys.modules["lit_al"] = None  # the ONNX folder must run without lit_al
import numpy as np
import onnxruntime
from transformers import AutoTokenizer
folders, texts = json.loads(sys.argv[1])
out = {}
for folder in folders:
    with open(f"{folder}/config.json", encoding="utf-8") as f:
        config = json.load(f)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    session = onnxruntime.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    logits = session.run(["logits"], {i.name: batch[i.name] for i in session.get_inputs()})[0]
    if config["problem_type"] == "multi_label_classification":
        probs = 1 / (1 + np.exp(-logits))
    else:
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        probs = shifted / shifted.sum(-1, keepdims=True)
    out[folder] = {"probs": probs.tolist(), "inputs": [i.name for i in session.get_inputs()],
                   "labels": [config["id2label"][str(i)] for i in range(probs.shape[1])]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx_encoders")
    return {family: write_encoder(family, root / family) for family in FAMILIES}


def _run(root, name, encoder, *, multi_label=False, **options):
    """A run directory holding a kept model of ``encoder`` (native head unless ``options`` say otherwise)."""
    run_dir = root / name
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("data:\n  max_length: 16\n")
    kwargs = {"model_name_or_path": str(encoder), "head": "native", **options}
    torch.manual_seed(len(name))
    model = TextClassifier(**kwargs, num_labels=3, multi_label=multi_label, label_names=LABELS)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    save_run_model(run_dir / "model", model, kwargs, 0)
    return run_dir


def _onnxruntime_probs(tmp_path, folders, texts):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    payload = json.dumps([[str(f) for f in folders], texts])
    done = subprocess.run([sys.executable, "-c", ORT_SCRIPT, payload], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_onnx_export_gives_lit_als_probabilities_on_three_families(tmp_path, encoders, tiny_bert):
    cases = {f"{family}-{kind}": (encoders[family], {"multi_label": kind == "multi"})
             for family in FAMILIES for kind in ("single", "multi")}
    cases["bert-token-types"] = (tiny_bert, {})  # BertTokenizerFast writes token_type_ids: the graph reads them
    cases["bert-lit-al-mean-multi"] = (tiny_bert, {"multi_label": True, "head": "lit_al", "pooling": "mean",
                                                   "hidden_size": 8})  # no transformers class: lit_al's head traced
    folders, expected = {}, {}
    for name, (encoder, options) in cases.items():
        run_dir = _run(tmp_path / "runs", name, encoder, **options)
        exported = export_run(run_dir, tmp_path / "onnx" / name, format="onnx")
        assert exported.format == "onnx" and not exported.trust_remote_code
        folders[name] = exported.directory
        expected[name] = _reference_probs(run_dir, TEXTS)[0]
    results = _onnxruntime_probs(tmp_path, list(folders.values()), TEXTS)
    gaps = {}
    for name, folder in folders.items():
        result = results[str(folder)]
        assert result["labels"] == LABELS
        got = np.array(result["probs"])
        gaps[name] = float(np.abs(got - expected[name]).max())
        np.testing.assert_allclose(got, expected[name], atol=1e-4, err_msg=name)
        multi = "multi" in name
        assert np.allclose(got.sum(1), 1.0) != multi, name  # sigmoid for multi-label, softmax otherwise
        types = name == "bert-token-types"
        assert result["inputs"] == ["input_ids", "attention_mask"] + (["token_type_ids"] if types else []), name
        info = json.loads((folder / "lit_al_export.json").read_text())
        assert info["onnx"]["inputs"] == result["inputs"] and info["onnx"]["probabilities"] == ("sigmoid" if multi else "softmax")
    assert json.loads((folders["bert-lit-al-mean-multi"] / "config.json").read_text()).get("architectures") is None
    print("max |onnxruntime - lit_al| probability per case:", {k: f"{v:.1e}" for k, v in gaps.items()})


def test_onnx_export_through_the_cli_is_an_optimum_layout_without_local_paths(tmp_path, encoders, capsys):
    run_dir = _run(tmp_path, "run", encoders["roberta"])
    out = tmp_path / "exported"
    old = os.umask(0o022)
    try:
        assert main(["export", str(run_dir), str(out), "--format", "onnx"]) == 0
    finally:
        os.umask(old)
    said = capsys.readouterr()
    assert "RobertaForSequenceClassification as ONNX" in said.out and "model.onnx" in said.out
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json", "lit_al_export.json"} <= names
    assert not names & {"model.safetensors", "modeling_lit_al.py"}
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RobertaForSequenceClassification"] and "auto_map" not in config
    assert config["problem_type"] == "single_label_classification" and config["id2label"]["2"] == "tech"
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 16
    info = json.loads((out / "lit_al_export.json").read_text())
    assert info["format"] == "onnx" and info["run"] == "run" and info["onnx"]["output"] == "logits"
    _assert_no_local_path(out, tmp_path, encoders["roberta"])
    graph = (out / "model.onnx").read_bytes()
    assert not any(str(p).encode() in graph for p in (tmp_path, tmp_path.resolve(), encoders["roberta"].parent))
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)  # umask 022: drwxr-xr-x, -rw-r--r--
    assert {oct(f.stat().st_mode & 0o777) for f in out.iterdir()} == {oct(0o644)}

    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert [str(d) for d in session.get_inputs()[0].shape] == ["batch_size", "sequence_length"]


def _assert_one_line_and_nothing_written(code, capsys, out, pattern):
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert pattern in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_onnx_export_errors_are_one_line_and_write_nothing(tmp_path, encoders, capsys, monkeypatch):
    run_dir = _run(tmp_path, "run", encoders["bert"])
    capsys.readouterr()  # transformers' loading progress, before main quiets it
    out = tmp_path / "out"
    args = ["export", str(run_dir), str(out), "--format", "onnx"]
    assert main(["export", str(run_dir), str(out), "--format", "tflite"]) == 2  # a usage error, as every bad option
    err = capsys.readouterr().err.strip()
    assert "format" in err and "tflite" in err and len(err.splitlines()) == 1 and not out.exists()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "onnxruntime", None)  # the extra is not installed
        _assert_one_line_and_nothing_written(main(args), capsys, out, "pip install 'lit_al[onnx]'")

    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported: aten::something\nthe exporter's long\nexplanation")

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", refuse)
        _assert_one_line_and_nothing_written(main(args), capsys, out, "torch's ONNX exporter cannot export this BertForSequenceClassification")
    with monkeypatch.context() as patch:
        patch.setattr(onnx_export, "TOLERANCE", -1.0)  # every graph now fails the check against the model
        _assert_one_line_and_nothing_written(main(args), capsys, out, "the ONNX graph's logits differ from the model's")


def test_a_run_with_a_compiled_encoder_exports_to_onnx(tmp_path, encoders):
    """``model.compile: true`` compiles the encoder when the run's model is built; the tracer refuses compiled code."""
    run_dir = _run(tmp_path, "run", encoders["bert"], compile=True)
    exported = export_run(run_dir, tmp_path / "out", format="onnx")  # checked against the model by onnxruntime
    assert json.loads((exported.directory / "lit_al_export.json").read_text())["onnx"]["inputs"] == ["input_ids", "attention_mask"]
