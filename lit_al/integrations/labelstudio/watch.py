"""``lit_al labelstudio watch``: Label Studio as the front end of the whole loop.

Every ``interval`` seconds it reads the project; when every item of the pending batch has
an answer there it pulls them (``sync.pull``), trains on every label and proposes the next
batch (what ``lit_al query --resume RUN`` does), and pushes that batch. A stop at any moment
(Ctrl-C, SIGTERM, a kill) loses nothing and imports nothing twice: the answers stay in
Label Studio until pulled, an import is one atomic write that a repeat leaves unchanged,
a round interrupted while training resumes, and a push adds only the tasks missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ...session import load_run_state
from .connection import Connection, make_client
from .sync import fetch_answers, pull, push

Print = Callable[[str], None]


@dataclass(frozen=True)
class WatchResult:
    """Why watching stopped, and how many rounds it trained."""

    rounds: int
    reason: str


def train_and_propose(run_dir: Path, say: Print) -> None:
    """Commit the imported answers, train on every label and propose the next batch: ``lit_al query --resume``."""
    from ...config import build_run, fit_parser
    from ...loop import format_round
    from ...threads import set_threads

    parser = fit_parser()
    cfg = parser.parse_path(str(run_dir / "config.yaml"))
    cfg.resume, cfg.loop.oracle = str(run_dir), "person"
    set_threads(cfg.threads)
    cfg.threads = None
    metrics = ["test_accuracy", "test_macro_f1", "test_micro_f1"]
    build_run(parser, cfg, on_round_end=lambda row: say(format_round(row, [m for m in metrics if m in row]))).execute()


def watch(run_dir: Path, connection: Connection, *, interval: float = 10.0, rounds: int | None = None,
          title: str | None = None, project: int | None = None, overwrite: bool = False, say: Print = print,
          sleep: Callable[[float], None] = time.sleep) -> WatchResult:
    """Loop until the run is finished or ``rounds`` rounds were trained (see the module docstring)."""
    client = make_client(connection)
    trained = 0
    shown: tuple[int, int] | None = None
    while True:
        data, state = load_run_state(run_dir)
        if state.pending is None:
            if state.finished:
                return WatchResult(trained, "the run is finished (its budget is spent)")
            if rounds is not None and trained >= rounds:
                return WatchResult(trained, f"{rounds} round(s) trained (--rounds)")
            say("no batch pending: training and proposing one")
            train_and_propose(run_dir, say)
            trained += 1
            continue
        result = push(run_dir, connection, title=title, project=project)
        if result.added:
            say(result.line(connection.shown_url))
        if rounds is not None and trained >= rounds:
            return WatchResult(trained, f"{rounds} round(s) trained (--rounds); the next batch waits in Label Studio")
        found = fetch_answers(run_dir, connection, data, state, client)
        assert found is not None
        if (found.round, found.answered) != shown:
            say(f"round {found.round}: {found.answered} of {found.size} answered in Label Studio")
            shown = (found.round, found.answered)
        if found.answered < found.size:
            sleep(interval)
            continue
        say(pull(run_dir, connection, overwrite=overwrite, client=client).line())
        say(f"round {found.round} answered: training on every label and proposing the next batch")
        train_and_propose(run_dir, say)
        trained += 1
        shown = None
