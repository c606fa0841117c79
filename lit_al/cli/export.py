"""``lit_al export RUN_DIR OUT_DIR``: write a run's last model as a Hugging Face folder (or ONNX: ``--format onnx``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag

    parser = ArgumentParser(description="Write a run's last model as a Hugging Face folder.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("out_dir", type=str, help="the folder to write (new, or empty)")
    add_flag(parser, "overwrite", default=False, help="replace out_dir if it is not empty")
    parser.add_argument("--format", type=Literal["native", "onnx"], default="native",
                        help="native: a transformers folder; onnx: model.onnx + config + tokenizer (extra: lit_al[onnx])")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..product.export import export_run

    exported = export_run(cfg.run_dir, cfg.out_dir, overwrite=cfg.overwrite, format=cfg.format)
    if exported.format == "onnx":
        print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory / 'model.onnx'} "
              f"({exported.architecture} as ONNX; output: logits, checked against the model with onnxruntime)")
        print(f'  import onnxruntime; onnxruntime.InferenceSession("{exported.directory / "model.onnx"}")')
        return 0
    how = "trust_remote_code=True" if exported.trust_remote_code else "no remote code"
    print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory} "
          f"({exported.architecture}; loads with {how})")
    print(f'  from transformers import pipeline; pipeline("text-classification", model="{exported.directory}"'
          + (", trust_remote_code=True" if exported.trust_remote_code else "") + ")")
    return 0
