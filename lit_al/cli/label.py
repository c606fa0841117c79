"""``lit_al label RUN_DIR FILE``: validate a person's answers, then record them in one atomic write.

Reads the run's files only (no torch, Lightning or transformers): it answers in about a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .next_step import batch_line

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

LIGHT = True


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag

    parser = ArgumentParser(description="Import a person's answers to the pending batch of a run.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="the run directory (lit_al query wrote its batch there)")
    parser.add_argument("file", type=str, help="answers: the filled to_label.csv, a Label Studio JSON export, "
                        "or Prodigy / Argilla JSONL")
    parser.add_argument("--annotator", type=str | None, default=None, help="who answered (when the file does not say)")
    add_flag(parser, "overwrite", default=False, help="let an answer correct an earlier label")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..labeling import read_answer_file
    from ..rundir import remove_stale_writes
    from ..session import import_answers, load_run_files

    if cfg.annotator is not None:  # one line now, not a UnicodeEncodeError when the labels are saved
        from ..labeling.answers import check_name

        check_name(cfg.annotator, "--annotator")
    run_dir = Path(cfg.run_dir)
    data = load_run_files(run_dir)  # the pool's ids and the label schema, without torch
    found = read_answer_file(cfg.file, data.schema, data.label_separator)
    remove_stale_writes(run_dir)  # what killed writes left: label cleans up as fit does
    summary = import_answers(run_dir, found.answers, schema=data.schema, ids=data.pool.ids,
                             overwrite=bool(cfg.overwrite), annotator=cfg.annotator)
    print(f"{cfg.file}: {summary.line()}")
    for note in found.notes():  # records read without an answer, annotators who disagreed
        print(f"  {note}")
    print(next_step(run_dir, cfg.file, summary))
    return 0


def next_step(run_dir: Path, file: str, summary) -> str:
    """What ``lit_al label`` says after an import: what to do next, or that nothing new came in and which file does."""
    from ..product.run_files import read_batch_progress

    batch = read_batch_progress(run_dir)
    resume = f"lit_al query --resume {run_dir}"
    if summary.added or summary.overwritten or summary.skipped:
        return f"next: {resume}   (trains on every label and proposes the next batch)"
    said = f"nothing new was labeled: {file} holds no answer that is not recorded already"
    if batch is None:
        return f"{said}; no batch is pending (next: {resume})"
    if batch.open == 0:
        return f"{said}; every item of the round-{batch.round} batch is answered (next: {resume})"
    return f"{said}; the current batch is round {batch.round}'s: {batch_line(run_dir, batch.round, batch.open, batch.size)}"
