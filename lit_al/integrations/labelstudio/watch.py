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

from ...rundir import CONFIG_FILE
from .connection import Connection, Unreachable, make_client
from .sync import fetch_answers, load_run, pull, push

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
    cfg = parser.parse_path(str(run_dir / CONFIG_FILE))
    cfg.resume, cfg.loop.oracle = str(run_dir), "person"
    set_threads(cfg.threads)
    cfg.threads = None
    metrics = ["test_accuracy", "test_macro_f1", "test_micro_f1"]
    build_run(parser, cfg, on_round_end=lambda row: say(format_round(row, [m for m in metrics if m in row]))).execute()


@dataclass
class _Watcher:
    """The state of one ``watch``: what it was asked, rounds trained, the progress last shown."""

    run_dir: Path
    connection: Connection
    client: Any
    rounds: int | None
    title: str | None
    project: int | None
    overwrite: bool
    say: Print
    trained: int = 0
    shown: tuple[int, int] | None = None

    def step(self) -> WatchResult | bool:
        """One look at the run and its project: the result when watching is over, else whether to wait."""
        data, state = load_run(self.run_dir)
        if state.pending is None:
            if state.finished:
                return WatchResult(self.trained, "the run is finished (its budget is spent)")
            if self.rounds is not None and self.trained >= self.rounds:
                return WatchResult(self.trained, f"{self.rounds} round(s) trained (--rounds)")
            self.say("no batch pending: training and proposing one")
            self._train()
            return False
        pushed = push(self.run_dir, self.connection, title=self.title, project=self.project)
        if pushed.added:
            self.say(pushed.line(self.connection.shown_url))
        if self.rounds is not None and self.trained >= self.rounds:
            return WatchResult(self.trained, f"{self.rounds} round(s) trained (--rounds); the next batch waits in Label Studio")
        found = fetch_answers(self.run_dir, self.connection, data, state, self.client)
        assert found is not None
        if (found.round, found.answered) != self.shown:
            self.say(f"round {found.round}: {found.answered} of {found.size} answered in Label Studio")
            self.shown = (found.round, found.answered)
        if found.answered < found.size:
            return True
        self.say(pull(self.run_dir, self.connection, overwrite=self.overwrite, client=self.client).line())
        self.say(f"round {found.round} answered: training on every label and proposing the next batch")
        self._train()
        return False

    def _train(self) -> None:
        train_and_propose(self.run_dir, self.say)
        self.trained += 1
        self.shown = None


def watch(run_dir: Path, connection: Connection, *, interval: float = 10.0, rounds: int | None = None,
          title: str | None = None, project: int | None = None, overwrite: bool = False, say: Print = print,
          sleep: Callable[[float], None] = time.sleep) -> WatchResult:
    """Loop until the run is finished or ``rounds`` rounds were trained (see the module docstring)."""
    watcher = _Watcher(run_dir, connection, make_client(connection), rounds, title, project, overwrite, say)
    while True:
        try:
            step = watcher.step()
        except Unreachable as exc:  # a server restarting, a network blip: watching goes on
            say(f"{exc}; trying again in {interval:g} s")
            step = True
        if isinstance(step, WatchResult):
            return step
        if step:
            sleep(interval)
