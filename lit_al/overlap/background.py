"""The schedule of the overlapped loop: when a background training starts, and when its batch is adopted.

For the pending batch of round r (``Background.tick`` is called with the run's state on every
request of the page, by ``Session``, and on every look of ``lit_al labelstudio watch``):

1. **start**: with no job running, a job starts when the batch has none yet (it trains on the
   committed labels), or when ``loop.overlap.retrain_every`` answers of the batch arrived since
   the snapshot of the newest job. One job runs at a time. A job trains round r + 1's model,
   which proposes batch r + 1, with round r's seeds (``ActiveLoop.propose_ahead`` says why).
2. **adopt**: once the batch is done (``Session.query``: once one item is), the newest finished
   job's batch becomes the pending one (``adopt``); a job still running for round r is stopped,
   being staler than the labels now committed, and the next batch's first job starts at once.
   With no finished job yet, the page waits for the running one.
3. **die**: a job that exits without a proposal is restarted, up to ``loop.overlap.max_restarts``
   times in a row; then the failure is reported (the page offers the synchronous round).

Job folders of earlier rounds are deleted (their running workers stopped) on the next tick.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.state import LabelState
from ..labeling import now_utc
from ..loop import LoopConfig
from .adoption import Adoption, Pool, adopt
from .jobs import LOG_FILE, PID_FILE, Job, list_jobs, new_job, record_history, remove_job

log = logging.getLogger(__name__)
_ERROR = re.compile(r"^lit_al: error")


@dataclass(frozen=True)
class BackgroundStatus:
    """Where the background training stands: ``state`` is idle, running or failed.

    ``job``/``labeled``/``answers``: the running (or last failed) job and its snapshot;
    ``ready``: the labeled count of the newest finished proposal for the pending batch (None: none yet).
    """

    state: str = "idle"
    job: str | None = None
    labeled: int | None = None
    answers: int | None = None
    ready: int | None = None
    message: str = ""
    log: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Tick:
    """What one tick did: ``adoption`` (None: nothing was due), the status after it, and whether the
    pending batch it saw was answered in full (``batch_done``)."""

    status: BackgroundStatus
    adoption: Adoption | None = None
    batch_done: bool = False

    @property
    def next(self) -> str:
        """What a front end does after this tick (the page, ``lit_al labelstudio watch``):

        ``adopted``: show (push) the new pending batch at once; ``synchronous``: nothing is proposed
        ahead (the budget's end, a stop criterion), so the synchronous round trains on every label;
        ``failed``: the batch is done and its background trainings died ``loop.overlap.max_restarts`` + 1
        times in a row (report it; the synchronous round is the way on); ``wait``: the batch is done and
        a background training runs (or another lit_al process holds the run); ``label``: answers are
        still to come (or no batch is pending).
        """
        status = self.adoption.status if self.adoption is not None else None
        if status in ("adopted", "synchronous"):
            return status
        if not self.batch_done:
            return "label"
        return "failed" if self.status.state == "failed" else "wait"


def worker_command(job: Job) -> list[str]:
    return [sys.executable, "-m", "lit_al.overlap.worker", str(job.directory)]


class Background:
    """The background trainings of one run (see the module docstring); thread-safe.

    Args:
        run_dir: the run.
        pool: its ids, texts and label schema (``adopt.Pool``).
        config: its ``LoopConfig`` (``overlap``, budget, ``repropose_skipped``).
    """

    def __init__(self, run_dir: Path, pool: Pool, config: LoopConfig) -> None:
        self.run_dir = Path(run_dir)
        self.pool = pool
        self.config = config
        self._processes: dict[str, subprocess.Popen] = {}  # job folder name -> the worker this object started
        self._recorded: set[int] = set()
        self._failures = 0  # background trainings of the pending round that died in a row
        self._failure = ""
        self._round: int | None = None
        self._lock = threading.Lock()

    @property
    def retrain_every(self) -> int:
        every = self.config.overlap.retrain_every
        return every if every is not None else max(1, math.ceil(self.config.query_size / 4))

    # ------------------------------------------------------------------ the schedule
    def tick(self, state: LabelState, *, adopt_when: str = "complete", min_labeled: int = 0) -> Tick:
        """Reap, adopt and start as the schedule says, for the run whose state is ``state``.

        ``adopt_when``: ``complete`` (the page: every item answered), ``answered`` (``Session.query``:
        one is; the others go back to the pool) or ``never`` (``Session.teach``: only start trainings).
        ``min_labeled``: adopt only a job that trained on at least this many labels.
        """
        require_complete = adopt_when != "answered"
        with self._lock:
            pending = state.pending
            if pending is None or state.finished:
                self._stop(list_jobs(self.run_dir))
                return Tick(BackgroundStatus())
            if pending.round != self._round:  # a new batch (adopted, or proposed by a synchronous round)
                self._round, self._failures, self._failure = pending.round, 0, ""
            jobs = self._reap(pending.round)
            finished = [job for job in jobs if job.proposal() is not None]
            running = self._running(jobs, finished)
            answered = len(pending.pool_indices) - len(state.open_pending())
            due = answered == len(pending.pool_indices) if require_complete else answered > 0
            due = due and adopt_when != "never"
            adoption = None
            if due and finished and finished[-1].labeled >= min_labeled:
                adoption = self._adopt(finished[-1], require_complete)
                if adoption.status == "adopted":
                    return Tick(self._status(), adoption, batch_done=False)
            if adoption is None or adoption.status == "not_ready":
                newest = max(jobs, key=lambda job: job.number, default=None)
                fresh = newest is None or answered - newest.answers >= self.retrain_every or (due and not running
                                                                                               and not finished)
                if not running and fresh and self._failures <= self.config.overlap.max_restarts:
                    self._start(state)
            return Tick(self._status(pending.round), adoption, batch_done=answered == len(pending.pool_indices))

    def _reap(self, round_index: int) -> list[Job]:
        """The jobs of ``round_index``; older ones are stopped and deleted, dead ones counted and deleted."""
        current = []
        for job in list_jobs(self.run_dir):
            proposal = job.proposal()
            if proposal is not None and job.number not in self._recorded:
                self._record(job, proposal)
            if job.round != round_index:
                self._stop([job])
                continue
            if proposal is None and not self._alive(job):
                self._died(job)
                continue
            current.append(job)
        return current

    def _running(self, jobs: list[Job], finished: list[Job]) -> list[Job]:
        """The jobs still training: not ``finished`` (with a proposal), and a live worker. A proposal is written
        last, so a job with one is done, though its process may take a moment to end (its threads exit)."""
        return [job for job in jobs if job not in finished and self._alive(job)]

    def _alive(self, job: Job) -> bool:
        process = self._processes.get(job.name)
        if process is not None:
            return process.poll() is None
        return job.is_alive()

    def _died(self, job: Job) -> None:
        """A job that ended without a proposal: counted (restarted by the schedule, or reported) and deleted."""
        process = self._processes.pop(job.name, None)
        code = process.poll() if process is not None else None
        errors = [line for line in job.log_tail() if _ERROR.search(line)]
        if errors:
            why = errors[-1]
        elif code is not None and code < 0:
            why = f"killed by {signal.Signals(-code).name}"
        elif code is not None:
            why = f"exit status {code}: " + (job.log_tail(1) or [""])[0]
        else:
            why = "it stopped without a proposal (killed?)"
        self._failures += 1
        self._failure = f"the background training {job.name} stopped: {why}".rstrip(": ")
        log.warning("%s (%d in a row)", self._failure, self._failures)
        remove_job(job)

    def _adopt(self, job: Job, require_complete: bool) -> Adoption:
        proposal = job.proposal()
        assert proposal is not None
        from ..errors import ConfigError

        try:
            adoption = adopt(self.run_dir, job, proposal, self.pool, self.config, require_complete=require_complete)
        except ConfigError as exc:  # another lit_al process holds the run (lit_al query, lit_al label): next tick
            return Adoption("busy", message=str(exc))
        if adoption.status == "adopted":
            self._record(job, proposal, adopted_for=adoption.round)
            self._round, self._failures, self._failure = adoption.round, 0, ""
            jobs = list_jobs(self.run_dir)
            self._stop([j for j in jobs if j.round < int(proposal["for_round"])])
            from ..rundir import STATE_FILE

            self._start(LabelState.load(self.run_dir / STATE_FILE, self.pool.ids))
        return adoption

    def _record(self, job: Job, proposal: dict[str, Any], adopted_for: int | None = None) -> None:
        row = {"job": job.number, "round": proposal["for_round"], "labeled": proposal["labeled"],
               "answers": proposal["answers"], "intermediate": proposal.get("intermediate", False),
               "created": proposal["created"], "trained_at": proposal["trained_at"],
               "proposed": len((proposal.get("pending") or {}).get("pool_indices", [])), "adopted_for": adopted_for}
        row.update({k: v for k, v in proposal["row"].items() if k.startswith("test_") or k.endswith("_seconds")})
        record_history(self.run_dir, row)
        self._recorded.add(job.number)

    # ------------------------------------------------------------------ processes
    def _start(self, state: LabelState) -> Job | None:
        """A job for ``state``'s pending round on every label in it (the worker in its own process)."""
        pending = state.pending
        if pending is None or state.finished:
            return None
        answered = len(pending.pool_indices) - len(state.open_pending())
        job = new_job(self.run_dir, state.to_json(), round_index=pending.round, labeled=len(state.records),
                      answers=answered, created=now_utc())
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        with open(job.directory / LOG_FILE, "ab") as output:
            # its own session: a Ctrl-C meant for the server does not cut a training short; the server stops it
            process = subprocess.Popen(worker_command(job), stdout=output, stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        (job.directory / PID_FILE).write_text(f"{process.pid}\n", encoding="utf-8")
        self._processes[job.name] = process
        log.info("background job %s started: round %d, %d labels (%d answers of the batch)",
                 job.name, pending.round, job.labeled, answered)
        return job

    def _stop(self, jobs: list[Job]) -> None:
        """Stop the workers of ``jobs`` (SIGKILL: a job writes nothing of the run) and delete their folders."""
        for job in jobs:
            process = self._processes.pop(job.name, None)
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            elif process is None and job.is_alive():
                pid = job.pid()
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):  # it ended meanwhile
                        os.kill(pid, signal.SIGKILL)
            remove_job(job)

    def stop(self, *, keep_finished: bool = True) -> None:
        """Stop the running background jobs of the run (the server shuts down, or a synchronous round starts).

        ``keep_finished``: a finished job's batch stays, for the next server to adopt (or a later tick to delete).
        """
        with self._lock:
            jobs = list_jobs(self.run_dir)
            if keep_finished:
                jobs = [job for job in jobs if job.proposal() is None]
            self._stop(jobs)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> bool:
        """Wait until no job this object started is running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = [p for p in self._processes.values() if p.poll() is None]
            if not running:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll)

    # ------------------------------------------------------------------ status
    def status(self) -> BackgroundStatus:
        with self._lock:
            return self._status()

    def _status(self, round_index: int | None = None) -> BackgroundStatus:
        jobs = list_jobs(self.run_dir)
        if round_index is not None:
            jobs = [job for job in jobs if job.round == round_index]
        ready = [job for job in jobs if job.proposal() is not None]
        running = self._running(jobs, ready)
        ready_labeled = ready[-1].labeled if ready else None
        if running:
            job = running[-1]
            restarted = f" (restarted: {self._failure})" if self._failure else ""
            return BackgroundStatus("running", job.name, job.labeled, job.answers, ready_labeled,
                                    f"training on {job.labeled} labels in the background{restarted}", tuple(job.log_tail()))
        if self._failures > self.config.overlap.max_restarts:
            return BackgroundStatus("failed", ready=ready_labeled, message=self._failure)
        return BackgroundStatus("idle", ready=ready_labeled, message=self._failure)

    @property
    def failures(self) -> int:
        return self._failures

