"""``lit_al labelstudio watch``: Label Studio as the front end of the whole loop.

Every ``interval`` seconds it reads the project and pushes the pending batch's missing tasks.

- **Overlapped** (``loop.overlap.enabled``, the default, as on the labeling page): the answers are
  imported as they arrive (``sync.fetch_answers``, then the validated, locked import of ``lit_al
  label``), and every look moves the overlapped loop's schedule (``lit_al.overlap.Background.tick``):
  background trainings on every label so far, in processes of their own. When the last item of
  the batch is answered, the newest finished background proposal is adopted (round committed, next
  batch pending, ``proposed_by`` in ``state.json``) and pushed at once; with none finished yet, the
  watcher waits for the running one, looking every ``POLL_S`` seconds. When nothing is proposed ahead
  (the budget's end, a stop criterion) or the background trainings failed, the synchronous round
  trains on every label instead.
- **Synchronous** (``loop.overlap.enabled: false``): when every item of the pending batch has an
  answer in the project it pulls them (``sync.pull``), trains on every label and proposes the next
  batch (what ``lit_al query --resume RUN`` does), and pushes that batch.

A stop at any moment (Ctrl-C, SIGTERM, a kill) loses nothing and imports nothing twice: the
answers stay in Label Studio until imported, an import is one atomic write that a repeat leaves
unchanged, a round interrupted while training resumes, an adoption is one atomic write of the
state, a background training outlives a killed watcher (the next one adopts its batch), and a push
adds only the tasks missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ...errors import DataError
from ...labeling import Answer, ImportSummary
from ...rundir import CONFIG_FILE, STATE_FILE
from .connection import Connection, Unreachable, make_client
from .sync import BatchAnswers, fetch_answers, import_found, load_run, pull, push

Print = Callable[[str], None]
#: Seconds between two looks at a background training the finished batch waits for.
POLL_S = 1.0


@dataclass(frozen=True)
class WatchResult:
    """Why watching stopped, and how many rounds it trained (overlapped: batches adopted, too)."""

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


def background_trainings(run_dir: Path, data: Any, overlap: bool | None = None):
    """The run's background trainings (``lit_al.overlap.Background``), or None for the synchronous loop.

    ``overlap``: None follows the run's ``loop.overlap.enabled``, as the labeling page does.
    """
    from ...config import as_dict, saved_config
    from ...loop import LoopConfig
    from ...overlap import Background, Pool

    config = LoopConfig(**as_dict(saved_config(run_dir).loop))
    if not (config.overlap.enabled if overlap is None else overlap):
        return None
    return Background(run_dir, Pool(list(data.pool.ids), list(data.pool.texts), data.schema, data.label_separator), config)


@dataclass(frozen=True)
class Arrived:
    """The answers of one look sorted against the run's state: ``new`` (nothing recorded yet),
    ``changed`` (a label changed in Label Studio after it was imported) and ``refused`` (a change
    no import may make: a skip for a labeled item; one line each)."""

    new: list[Answer]
    changed: list[Answer]
    refused: list[str]


def sort_arrived(state: Any, schema: Any, ids: Sequence[str], answers: Sequence[Answer]) -> Arrived:
    """Which of ``answers`` (to the pending batch) are new, changed or refused; ``state`` is used up (a dry run)."""
    from ...labeling import apply_answers

    row = {ids[i]: i for i in state.pending.pool_indices} if state.pending is not None else {}
    new, changed, refused = [], [], []
    for answer in answers:
        if not state.is_answered(row[answer.id]):
            new.append(answer)
            continue
        try:  # one answer at a time on a copy never saved: what importing it would do
            summary = apply_answers(state, schema, [answer], overwrite=True)
        except DataError as exc:
            refused.append(str(exc))
            continue
        if summary.overwritten:
            changed.append(answer)
        elif summary.added or summary.skipped:  # a skipped item labeled now, another skip reason: no correction
            new.append(answer)
    return Arrived(new, changed, refused)


@dataclass
class _Watcher:
    """The state of one ``watch``: what it was asked, rounds trained, what was last shown."""

    run_dir: Path
    connection: Connection
    client: Any
    rounds: int | None
    title: str | None
    project: int | None
    overwrite: bool
    say: Print
    sleep: Callable[[float], None]
    background: Any = None  # lit_al.overlap.Background, or None: the synchronous loop
    trained: int = 0
    shown: tuple[int, int] | None = None
    said: set[str] = field(default_factory=set)

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
        pushed = push(self.run_dir, self.connection, title=self.title, project=self.project, client=self.client)
        if pushed.added:
            self.say(pushed.line(self.connection.shown_url))
        if self.rounds is not None and self.trained >= self.rounds:
            return WatchResult(self.trained, f"{self.rounds} round(s) trained (--rounds); the next batch waits in Label Studio")
        found = fetch_answers(self.run_dir, self.connection, data, state, self.client)
        assert found is not None
        if (found.round, found.answered) != self.shown:
            self.say(f"round {found.round}: {found.answered} of {found.size} answered in Label Studio")
            self.shown = (found.round, found.answered)
        if self.background is not None:
            return self._overlapped(data, state, found)
        if found.answered < found.size:
            return True
        self.say(pull(self.run_dir, self.connection, overwrite=self.overwrite, client=self.client).line())
        self.say(f"round {found.round} answered: training on every label and proposing the next batch")
        self._train()
        return False

    # ------------------------------------------------------------------ overlapped
    def _overlapped(self, data: Any, state: Any, found: BatchAnswers) -> bool:
        """Import what arrived, move the background schedule; adopt, train synchronously, wait or look again later."""
        from ...data.state import LabelState

        self._import(data, state, found)
        while True:
            state = LabelState.load(self.run_dir / STATE_FILE, data.pool.ids)
            tick = self.background.tick(state)
            self._report(tick.status)
            outcome = tick.next
            if outcome == "adopted":
                proposer = LabelState.load(self.run_dir / STATE_FILE, data.pool.ids).proposed_by.get(tick.adoption.round, {})
                self.say(f"round {found.round} committed; round {tick.adoption.round}'s batch ({tick.adoption.size} items) "
                         f"was picked by the model trained in the background on {proposer.get('labeled', '?')} labels: "
                         "pushing it")
                self.trained += 1
                self.shown = None
                return False
            if outcome in ("synchronous", "failed"):
                why = ("nothing is proposed ahead (the budget's end, or a stop criterion)" if outcome == "synchronous"
                       else tick.status.message)
                self.say(f"round {found.round} answered; {why}: the synchronous round trains on every label")
                self.background.stop(keep_finished=False)  # its proposals would be stale once the round commits
                self._train()
                return False
            if outcome == "label":
                return True
            if tick.status.state == "running":
                self._once(f"round {found.round} answered; the next batch is picked by a model training on "
                           f"{tick.status.labeled} labels in the background")
            elif tick.adoption is not None:  # another lit_al process holds the run, or moved it on
                self._once(f"round {found.round} answered; waiting: {tick.adoption.message}")
            self.sleep(POLL_S)

    def _import(self, data: Any, state: Any, found: BatchAnswers) -> ImportSummary | None:
        """Import the answers that arrived since the last look (and, with ``--overwrite``, the changed ones)."""
        arrived = sort_arrived(state, data.schema, data.pool.ids, found.answers)
        for line in arrived.refused:
            self._once(f"{line}; the recorded answer stands")
        if arrived.changed and not self.overwrite:
            self._once(f"{len(arrived.changed)} answer(s) changed in Label Studio after they were imported; the imported "
                       "ones stand (watch --overwrite true lets a change correct them)")
        answers = arrived.new + (arrived.changed if self.overwrite else [])
        if not answers:
            return None
        summary = import_found(self.run_dir, data, answers, overwrite=self.overwrite,
                               how_to_overwrite="watch with --overwrite true")
        self.say(f"round {found.round}: imported as they arrived: {summary.line()}")
        return summary

    def _report(self, status: Any) -> None:
        """Say once when a background training starts, and when they failed for good."""
        if status.state == "running" and status.job is not None:
            self._once(f"background training {status.job}: a model on {status.labeled} labels "
                       f"({status.answers} answer(s) of the pending batch)")
        elif status.state == "failed":
            self._once(f"background training failed: {status.message}")

    def _once(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.say(line)

    def _train(self) -> None:
        train_and_propose(self.run_dir, self.say)
        self.trained += 1
        self.shown = None


def watch(run_dir: Path, connection: Connection, *, interval: float = 10.0, rounds: int | None = None,
          title: str | None = None, project: int | None = None, overwrite: bool = False, say: Print = print,
          sleep: Callable[[float], None] = time.sleep, overlap: bool | None = None, client: Any | None = None) -> WatchResult:
    """Loop until the run is finished or ``rounds`` rounds were trained (see the module docstring).

    ``overlap``: None follows the run's ``loop.overlap.enabled``; ``client``: the SDK client (default: one for ``connection``).
    """
    data, _ = load_run(run_dir)  # one clear line for a folder that is not a run
    watcher = _Watcher(run_dir, connection, client if client is not None else make_client(connection), rounds, title,
                       project, overwrite, say, sleep, background_trainings(run_dir, data, overlap))
    try:
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
    finally:
        if watcher.background is not None:  # a running training stops; a finished one's batch waits for the next watch
            watcher.background.stop()
