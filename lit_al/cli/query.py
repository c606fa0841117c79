"""``lit_al query``: ``fit`` with a person as the oracle (commit their answers, train, propose, stop).

While no answer to the pending batch has arrived there is nothing to train on: it says so at
once, without a parser, the data or the model (``answer_early``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import fit
from .fit import parser, prepare, yes_no_options  # noqa: F401  (the fit verb's options, read the same way)
from .next_step import batch_line

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def answer_early(argv: list[str]) -> int | None:
    """0 when ``--resume DIR`` names a run whose batch no answer has arrived for (said so); else None: parse and run."""
    resume = fit.resume_value(argv)
    if resume and not any(a.startswith("--overwrite") for a in argv) and said_no_labels_arrived(Path(resume)):
        return 0
    return None


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    cfg.loop.oracle = "person"
    if not cfg.overwrite and said_no_labels_arrived(Path(cfg.resume or cfg.run_dir)):
        return 0
    return fit.run(parser, cfg)


def interrupted(cfg: Namespace) -> str:
    return f"the run is unfinished; continue it with: lit_al query --resume {cfg.run_dir}"


def said_no_labels_arrived(run_dir: Path) -> bool:
    """Whether ``run_dir`` waits for a batch no answer has arrived for (then say so, and what to do: True)."""
    from ..product.run_files import read_batch_progress

    batch = read_batch_progress(run_dir)
    if batch is None or batch.answered:
        return False
    print(f"no labels arrived for the round-{batch.round} batch since it was proposed: nothing to train on yet")
    print(batch_line(run_dir, batch.round, batch.open, batch.size))
    return True
