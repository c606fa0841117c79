"""``lit_al annotate RUN_DIR``: serve the labeling page of a run's pending batch (``lit_al.annotate``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(description="Serve the labeling page of a run's pending batch.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="the run directory (lit_al query wrote its batch there)")
    parser.add_argument("--host", type=str, default="127.0.0.1", help="address to bind; off loopback a token is required")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--token", type=str | None, default=None,
                        help="every request must carry it (?token=...); generated and printed when --host is not loopback")
    parser.add_argument("--annotator", type=str | None, default=None, help="the name recorded with answers (the page can change it)")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..annotate.server import serve
    from ..rundir import remove_stale_writes

    remove_stale_writes(Path(cfg.run_dir))  # what killed writes left: annotate cleans up as fit does
    return serve(Path(cfg.run_dir), host=cfg.host, port=cfg.port, token=cfg.token, annotator=cfg.annotator)
