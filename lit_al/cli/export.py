"""``lit_al export RUN_DIR OUT_DIR``: write a run's last model as a Hugging Face folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag

    parser = ArgumentParser(description="Write a run's last model as a Hugging Face folder.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("out_dir", type=str, help="the folder to write (new, or empty)")
    add_flag(parser, "overwrite", default=False, help="replace out_dir if it is not empty")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..product.export import export_run

    exported = export_run(cfg.run_dir, cfg.out_dir, overwrite=cfg.overwrite)
    how = "trust_remote_code=True" if exported.trust_remote_code else "no remote code"
    print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory} "
          f"({exported.architecture}; loads with {how})")
    print(f'  from transformers import pipeline; pipeline("text-classification", model="{exported.directory}"'
          + (", trust_remote_code=True" if exported.trust_remote_code else "") + ")")
    return 0
