"""One writer per run directory: a round in progress and an import of a person's answers never interleave."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from .errors import ConfigError

LOCK_FILE = ".lit_al.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path, *, writes: bool = True, wait: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock (a no-op for a process that writes nothing, e.g. a DDP rank other than 0).

    The lock file lives in the run directory, so nothing is written for a directory that
    does not exist yet (a run that fails validation leaves nothing behind); such a run
    takes the lock with ``lock_when_created`` once it has made its directory.
    ``wait=False``: refuse at once with one line when another lit_al process holds it.
    """
    if not writes or not run_dir.is_dir():
        yield
        return
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise ConfigError(f"{run_dir}: another lit_al process is working on this run (a round is training?); "
                          "try again when it has finished") from None
    try:
        yield
    finally:
        lock.release()
