"""``lit_al labelstudio push|pull|watch RUN_DIR``: a live Label Studio project (``lit_al.integrations``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from ..integrations.labelstudio.command import parser

    return parser()


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..integrations.labelstudio.command import run

    return run(parser, cfg)
