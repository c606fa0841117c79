"""A real Label Studio server for the tests: installed in a virtual environment of its own, started on a free port.

``label-studio`` pins Django and many other packages that must not mix with lit_al's, so it
lives in ``REPO/.ls-venv`` (gitignored; made once, reused by later runs). The server keeps
its SQLite database in a temporary folder and is given its admin user and a legacy API token
by environment variables (Label Studio 1.23 accepts legacy tokens for a new organisation
only when ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN`` is true at its first start). That first
start, which migrates the database, is made once into ``.ls-venv/template-data``; each
server starts on a copy of it.

Where Label Studio cannot be installed the tests skip with the reason, except in CI
(``CI=true``), where that is a failure: the live test must not vanish silently.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

VERSION = "1.23.2"
REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".ls-venv"
DONE = VENV / f".installed-{VERSION}"
TEMPLATE = VENV / "template-data"
TEMPLATE_READY = TEMPLATE / ".ready.json"
INSTALL_TIMEOUT_S = 1500
START_TIMEOUT_S = 400


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Skip with ``reason`` (fail in CI)."""
    if in_ci():
        pytest.fail(f"CI=true and the live Label Studio test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def _install() -> Path:
    """``label-studio`` of ``REPO/.ls-venv``, installed first if needed (the caller holds the lock)."""
    executable = VENV / "bin" / "label-studio"
    if DONE.is_file() and executable.is_file():
        return executable
    shutil.rmtree(VENV, ignore_errors=True)  # a half-made environment is made again
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    steps = [[sys.executable, "-m", "venv", str(VENV)],
             [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"label-studio=={VERSION}"]]
    for step in steps:
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            unavailable(f"installing label-studio=={VERSION} took over {INSTALL_TIMEOUT_S} s")
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            unavailable(f"cannot install label-studio=={VERSION} into {VENV}: {tail}")
    DONE.write_text(f"label-studio=={VERSION}\n", encoding="utf-8")
    return executable


def _template(executable: Path) -> dict[str, str]:
    """A data folder whose database is migrated and holds the admin and its token (the caller holds the lock).

    Migrating a new SQLite database is most of a first start (minutes on a busy machine, against
    seconds for a start on a migrated one); each test server starts on a copy of this folder.
    """
    if TEMPLATE_READY.is_file():
        return json.loads(TEMPLATE_READY.read_text(encoding="utf-8"))
    shutil.rmtree(TEMPLATE, ignore_errors=True)
    TEMPLATE.mkdir(parents=True)
    admin = {"username": "annotator@example.com", "password": secrets.token_hex(12), "token": secrets.token_hex(20)}
    _launch(executable, TEMPLATE, admin).stop()
    (TEMPLATE / "server.log").unlink(missing_ok=True)
    TEMPLATE_READY.write_text(json.dumps(admin), encoding="utf-8")
    return admin


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    api_key: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _launch(executable: Path, data_dir: Path, admin: dict[str, str]) -> Server:
    """``label-studio start`` on a free port with SQLite in ``data_dir``; returns once /health answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABEL_STUDIO_")}
    env.pop("PYTHONPATH", None)
    env.update({
        "LABEL_STUDIO_USERNAME": admin["username"], "LABEL_STUDIO_PASSWORD": admin["password"],
        "LABEL_STUDIO_USER_TOKEN": admin["token"], "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        # it would ask PyPI for a newer version and report to Sentry: nothing leaves the machine
        "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
    })
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(executable), "start", "--no-browser", "--port", str(port), "--data-dir", str(data_dir)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", admin["token"], process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=5) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.stop()
    tail = " | ".join(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:])
    pytest.fail(f"Label Studio did not answer /health within {START_TIMEOUT_S} s: {tail}", pytrace=False)


def start_server(data_dir: Path) -> Server:
    """A server of its own (a copy of the migrated template in ``data_dir``) whose admin's legacy API token is returned."""
    from filelock import FileLock

    with FileLock(str(Path(tempfile.gettempdir()) / "lit_al-ls-venv.lock"), timeout=INSTALL_TIMEOUT_S + START_TIMEOUT_S):
        executable = _install()
        admin = _template(executable)
    shutil.copytree(TEMPLATE, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(TEMPLATE_READY.name))
    return _launch(executable, data_dir, admin)
