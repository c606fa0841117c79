"""``lit_al predict RUN_DIR --input FILE --output CSV``: label new texts with a run's last model."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag

    parser = ArgumentParser(description="Label new texts with a run's last model.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("--input", type=str, required=True, help="texts to label (CSV, TSV, JSONL or Parquet)")
    parser.add_argument("--output", type=str, required=True, help="the predictions CSV to write")
    parser.add_argument("--text_column", type=str, default="text", help="column holding the text")
    parser.add_argument("--id_column", type=str | None, default=None,
                        help="column holding an id (default: 'id' if present, else row numbers)")
    parser.add_argument("--batch_size", type=int, default=64, help="texts per batch")
    add_flag(parser, "progress", default=True, help="show a progress bar")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..product.predict import predict_file

    table = predict_file(cfg.run_dir, cfg.input, cfg.output, text_column=cfg.text_column, id_column=cfg.id_column,
                         batch_size=cfg.batch_size, progress=cfg.progress)
    print(f"predictions for {len(table)} text(s): {cfg.output}")
    return 0
