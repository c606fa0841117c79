"""Background job folders (``lit_al.overlap.jobs``) and their workers, without training anything."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from annotate_runs import wait_for
from lit_al.atomic import atomic_write_json
from lit_al.data.schema import LabelSchema
from lit_al.loop import LoopConfig
from lit_al.overlap import Background, Pool
from lit_al.overlap.jobs import PID_FILE, PROPOSAL_FILE, list_jobs, new_job

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds workers through Linux's /proc")


def _background(run_dir: Path) -> Background:
    return Background(run_dir, Pool(["a", "b"], ["x", "y"], LabelSchema(("neg", "pos"))), LoopConfig(query_size=2))


def _stand_in(job) -> subprocess.Popen:
    """A process that runs as the job's worker would (its command line names the job's folder), doing nothing."""
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(job.directory)])
    argument = str(job.directory).encode()
    wait_for(lambda: argument in Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0"), 30, "the stand-in")
    return worker


def test_a_worker_whose_starter_was_killed_before_writing_its_pid_is_still_found(tmp_path):
    """A watcher SIGKILLed between starting a worker and writing ``pid`` leaves a worker without ``pid``: it is a
    training that runs (not one that died: its folder must not be deleted under it), and stopping the run's
    trainings stops it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job = new_job(run_dir, {}, round_index=0, labeled=3, answers=3, created="2026-12-06T00:00:00Z")
    other = new_job(run_dir, {}, round_index=0, labeled=5, answers=5, created="2026-12-06T00:00:01Z")
    worker = _stand_in(job)
    try:
        assert not (job.directory / PID_FILE).exists()
        assert job.pid() == worker.pid and job.is_alive()
        assert other.pid() is None and not other.is_alive()  # a folder no process names (job_000002 is not job_000001)
        background = _background(run_dir)
        status = background.status()
        assert status.state == "running" and status.job == job.name
        background.stop()
        assert worker.wait(timeout=30) == -signal.SIGKILL
        assert list_jobs(run_dir) == []
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_job_that_wrote_its_proposal_is_done_while_its_process_ends(tmp_path):
    """The proposal is written last: a job with one is finished (ready to adopt, no longer training), though its
    process takes a moment to end (a torch process's threads exit after the proposal is written)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    job = new_job(run_dir, {}, round_index=0, labeled=3, answers=3, created="2026-12-06T00:00:00Z")
    worker = _stand_in(job)
    try:
        (job.directory / PID_FILE).write_text(f"{worker.pid}\n", encoding="utf-8")
        background = _background(run_dir)
        assert background.status().state == "running"
        atomic_write_json(job.directory / PROPOSAL_FILE, {"job": job.number, "round": 0})
        assert job.is_alive()
        status = background.status()
        assert status.state == "idle" and status.ready == 3 and status.job is None
    finally:
        worker.kill()
        worker.wait()
