"""``lit_al status RUN_DIR``: print where a run stands (reads its files only: no model library, no pandas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

LIGHT = True


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(description="Print where a run stands.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..product.status import format_status, run_status

    print(format_status(run_status(cfg.run_dir)))
    return 0
