"""The ``lit_al`` verbs that hand a run's result over: ``export``, ``predict`` and ``status``.

Each verb is a parser and a function; ``cli`` adds them with ``add_product_subcommands``
and dispatches with ``run_product``.
"""

from __future__ import annotations

from typing import Callable

from jsonargparse import ArgumentParser, Namespace


def _export_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Write a run's last model as a Hugging Face folder.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("out_dir", type=str, help="the folder to write (new, or empty)")
    parser.add_argument("--overwrite", type=bool, default=False, help="replace out_dir if it is not empty")
    return parser


def _predict_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Label new texts with a run's last model.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("--input", type=str, required=True, help="texts to label (CSV, TSV, JSONL or Parquet)")
    parser.add_argument("--output", type=str, required=True, help="the predictions CSV to write")
    parser.add_argument("--text_column", type=str, default="text", help="column holding the text")
    parser.add_argument("--id_column", type=str | None, default=None,
                        help="column holding an id (default: 'id' if present, else row numbers)")
    parser.add_argument("--batch_size", type=int, default=64, help="texts per batch")
    parser.add_argument("--progress", type=bool, default=True, help="show a progress bar")
    return parser


def _status_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Print where a run stands.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    return parser


def run_export(cfg: Namespace) -> int:
    from .product.export import export_run

    exported = export_run(cfg.run_dir, cfg.out_dir, overwrite=cfg.overwrite)
    how = "trust_remote_code=True" if exported.trust_remote_code else "no remote code"
    print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory} "
          f"({exported.architecture}; loads with {how})")
    print(f'  from transformers import pipeline; pipeline("text-classification", model="{exported.directory}"'
          + (", trust_remote_code=True" if exported.trust_remote_code else "") + ")")
    return 0


def run_predict(cfg: Namespace) -> int:
    from .product.predict import predict_file

    table = predict_file(cfg.run_dir, cfg.input, cfg.output, text_column=cfg.text_column, id_column=cfg.id_column,
                         batch_size=cfg.batch_size, progress=cfg.progress)
    print(f"predictions for {len(table)} text(s): {cfg.output}")
    return 0


def run_status_verb(cfg: Namespace) -> int:
    from .product.status import format_status, run_status

    print(format_status(run_status(cfg.run_dir)))
    return 0


PRODUCT_VERBS: dict[str, tuple[Callable[[], ArgumentParser], Callable[[Namespace], int], str]] = {
    "export": (_export_parser, run_export, "write a run's last model as a Hugging Face folder"),
    "predict": (_predict_parser, run_predict, "label new texts with a run's last model"),
    "status": (_status_parser, run_status_verb, "print where a run stands"),
}


def add_product_subcommands(subcommands) -> None:
    for name, (make_parser, _, help_text) in PRODUCT_VERBS.items():
        subcommands.add_subcommand(name, make_parser(), help=help_text)


def run_product(name: str, cfg: Namespace) -> int:
    return PRODUCT_VERBS[name][1](cfg)
