"""The next round, started from the page: ``lit_al query --resume RUN_DIR`` in a child process.

The child is exactly the command a person would type, so the page and the terminal
train, score and propose the same way, under the same run lock. Its log lines
(``round N: training on ...``, ``epoch E of M trained``, ``round N: scoring ...``,
``round N: selecting ...``) become the progress the page shows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

_PHASES = (
    (re.compile(r"round (\d+): training on (\d+) labels"), "training"),
    (re.compile(r"round (\d+): scoring (\d+) unlabeled"), "scoring"),
    (re.compile(r"round (\d+): selecting (\d+) with"), "selecting"),
)
_EPOCH = re.compile(r"epoch (\d+) of (\d+) trained")
_ERROR = re.compile(r"^lit_al: (error|interrupted)")


@dataclass(frozen=True)
class RoundProgress:
    """Where the background round stands: ``state`` is idle, running, done or failed."""

    state: str = "idle"
    phase: str | None = None
    epoch: int | None = None
    max_epochs: int | None = None
    message: str = ""
    log: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {"state": self.state, "phase": self.phase, "epoch": self.epoch, "max_epochs": self.max_epochs,
                "message": self.message, "log": list(self.log)}


def read_progress_line(progress: RoundProgress, line: str) -> RoundProgress:
    """``progress`` after one line of the child's output (lines that say nothing new change nothing)."""
    for pattern, phase in _PHASES:
        found = pattern.search(line)
        if found:
            epoch = 0 if phase == "training" else progress.epoch
            return replace(progress, phase=phase, epoch=epoch, message=line.split(": ", 1)[-1].strip())
    found = _EPOCH.search(line)
    if found:
        return replace(progress, epoch=int(found.group(1)), max_epochs=int(found.group(2)))
    if _ERROR.search(line):
        return replace(progress, message=line.strip())
    return progress


def query_command(run_dir: Path) -> list[str]:
    """The command the page runs: the same ``lit_al query --resume`` as the command line."""
    return [sys.executable, "-m", "lit_al.cli", "query", "--resume", str(run_dir)]


class RoundRunner:
    """Runs one round at a time in a child process and follows its progress.

    Args:
        run_dir: the run.
        command: the child's command line (default ``query_command(run_dir)``).
    """

    def __init__(self, run_dir: Path, command: Sequence[str] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.command = list(command or query_command(self.run_dir))
        self._progress = RoundProgress()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._tail: deque[str] = deque(maxlen=40)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._progress.state == "running"

    def progress(self) -> RoundProgress:
        with self._lock:
            return self._progress

    def start(self) -> bool:
        """Start the round; False when one is already running."""
        with self._lock:
            if self._progress.state == "running":
                return False
            # the child imports the lit_al this server runs, wherever it was installed from
            package_root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
            self._tail.clear()
            self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             env=env, bufsize=1)
            self._progress = RoundProgress(state="running", phase="starting", message="starting the round")
            process = self._process
        threading.Thread(target=self._follow, args=(process,), daemon=True, name="lit_al-round").start()
        return True

    def _follow(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if not line:
                continue
            with self._lock:
                self._tail.append(line)
                self._progress = replace(read_progress_line(self._progress, line), log=tuple(self._tail))
        code = process.wait()
        with self._lock:
            if code == 0:
                self._progress = replace(self._progress, state="done", phase=None, message="the next batch is ready")
            else:
                errors = [line for line in self._tail if _ERROR.search(line)]
                reason = errors[-1] if errors else (self._tail[-1] if self._tail else "")
                self._progress = replace(self._progress, state="failed",
                                         message=f"the round stopped (exit status {code}): {reason}".rstrip(": "))

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt a running round (SIGTERM: lit_al stops cleanly and the run resumes later)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
