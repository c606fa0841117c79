"""Crash-safe file writes: a uniquely named temporary file in the same folder, fsync, rename.

Files get the permissions of an ordinary ``open`` (0666 minus the umask), not the 0600 that
``mkstemp`` gives, so a run directory can be shared like any other folder. A process killed
during a write leaves a ``.NAME.*.tmp`` file behind; ``remove_stale_temp_files`` deletes those
at the start of the next run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_with(path: str | Path, write: Callable[[Any], None]) -> None:
    """Replace ``path`` with what ``write(handle)`` writes to a binary handle, crash-safely.

    A crash leaves either the old or the new file (and at worst a stale temporary file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    atomic_write_with(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given), crash-safe as ``atomic_write_bytes``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left in ``directory`` and below it.

    Call it only where no other process is writing (a run directory at the start of its run).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.rglob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
