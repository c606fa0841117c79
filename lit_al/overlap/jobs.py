"""Background trainings on disk: one folder per job under ``RUN_DIR/overlap``, and the history of their models.

A job folder ``overlap/job_NNNNNN`` holds what the job was given and what it made:

- ``job.json``: its number, the round r of the pending batch (the job trains round r + 1's model,
  which proposes batch r + 1), the labeled count and the answers of the pending batch in its
  snapshot, when it was made (written before the process starts);
- ``state.json``: the label state it trains on (a snapshot: answers arriving later are not in it);
- ``pid``: the worker's process id (written once it runs; found by its command line when its
  starter was killed before writing it), ``log.txt``: the worker's output;
- ``model/``, ``stopping/``, ``rounds/``: the job's model, stop-set predictions and Lightning files;
- ``proposal.json``: written last, atomically: the batch it proposes for the next round and the
  metrics of its model. A folder without it is a job running, or one that died.

Nothing here writes ``state.json`` of the run: the run's labels are never touched by a job.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json, atomic_write_text
from ..rundir import STATE_FILE

#: Folder of a run directory that holds the background jobs (``rundir.RUN_FOLDERS`` names it too).
OVERLAP_DIR = "overlap"
JOB_FILE = "job.json"
PROPOSAL_FILE = "proposal.json"
PID_FILE = "pid"
LOG_FILE = "log.txt"
SNAPSHOT_FILE = STATE_FILE  # the run's label state file, copied
#: Every model a background job finished, one row each (the learning curve of the overlapped loop).
HISTORY_FILE = "models.csv"
#: The number of the last job made.
COUNTER_FILE = "last_job"


@dataclass(frozen=True)
class Job:
    """One background job: its folder and what it was given (``job.json``)."""

    directory: Path
    number: int
    #: The round of the batch pending when the job was made; its model is round ``round + 1``'s.
    round: int
    labeled: int
    answers: int
    created: str
    intermediate: bool

    @property
    def name(self) -> str:
        return self.directory.name

    def proposal(self) -> dict[str, Any] | None:
        """The job's ``proposal.json`` (None while it runs, or when it died)."""
        return _read_json(self.directory / PROPOSAL_FILE)

    def pid(self) -> int | None:
        """The worker's process id: ``pid``, or the process running the worker on this folder when ``pid`` is
        missing (whoever started it was killed between starting it and writing ``pid``)."""
        try:
            return int((self.directory / PID_FILE).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return _process_naming(self.directory)

    def is_alive(self) -> bool:
        """Whether the job's worker process is running (its pid runs a command naming this folder)."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            if not Path("/proc/self").exists():  # no /proc (not Linux): whether the pid exists at all
                try:
                    os.kill(pid, 0)
                    return True
                except OSError:
                    return False
            return False
        return str(self.directory).encode() in command.split(b"\0")

    def log_tail(self, lines: int = 40) -> list[str]:
        try:
            text = (self.directory / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]


def _process_naming(directory: Path) -> int | None:
    """The id of a running process with ``directory`` as one of its arguments (Linux's ``/proc``; None elsewhere)."""
    argument = str(directory).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if argument in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
        except (OSError, ValueError):  # a process that ended meanwhile
            continue
    return None


def overlap_dir(run_dir: Path) -> Path:
    return Path(run_dir) / OVERLAP_DIR


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def list_jobs(run_dir: Path) -> list[Job]:
    """The run's job folders with a readable ``job.json``, oldest first."""
    folder = overlap_dir(run_dir)
    if not folder.is_dir():
        return []
    jobs = []
    for directory in sorted(folder.glob("job_*")):
        info = _read_json(directory / JOB_FILE)
        if info is None:
            continue
        jobs.append(Job(directory, int(info["job"]), int(info["round"]), int(info["labeled"]), int(info["answers"]),
                        str(info["created"]), bool(info.get("intermediate", False))))
    return sorted(jobs, key=lambda job: job.number)


def new_job(run_dir: Path, snapshot: dict[str, Any], *, round_index: int, labeled: int, answers: int,
            created: str) -> Job:
    """A new job folder holding the state snapshot and ``job.json`` (numbered after every job the run had)."""
    folder = overlap_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[4:]) for p in folder.glob("job_*") if p.name[4:].isdigit()]
    number = max(numbers + [_last_number(run_dir)], default=0) + 1
    atomic_write_text(folder / COUNTER_FILE, f"{number}\n")  # numbers never repeat, though folders are deleted
    directory = folder / f"job_{number:06d}"
    directory.mkdir()
    atomic_write_json(directory / SNAPSHOT_FILE, snapshot)
    info = {"job": number, "round": round_index, "labeled": labeled, "answers": answers, "created": created,
            "intermediate": answers > 0}
    atomic_write_json(directory / JOB_FILE, info)  # last: a folder without it is not a job
    return Job(directory, number, round_index, labeled, answers, created, answers > 0)


def _last_number(run_dir: Path) -> int:
    """The number of the last job made (job folders are deleted once used; numbers never repeat)."""
    try:
        return int((overlap_dir(run_dir) / COUNTER_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return max((int(row["job"]) for row in read_history(run_dir)), default=0)


def remove_job(job: Job) -> None:
    shutil.rmtree(job.directory, ignore_errors=True)


def read_history(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``overlap/models.csv`` (empty when there is none)."""
    path = overlap_dir(run_dir) / HISTORY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


def record_history(run_dir: Path, row: dict[str, Any]) -> None:
    """Add (or replace, by job number) one finished job's row in ``overlap/models.csv``, atomically."""
    rows = [r for r in read_history(run_dir) if r.get("job") != str(row["job"])]
    rows.append({k: "" if v is None else str(v) for k, v in row.items()})
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    rows.sort(key=lambda r: int(r["job"]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(overlap_dir(run_dir) / HISTORY_FILE, buffer.getvalue())
