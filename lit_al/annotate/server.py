"""``lit_al annotate``: serve the labeling page of a run (uvicorn), safely by default.

Bound to 127.0.0.1 unless asked otherwise. Any other address lets the network in, so
it needs a token: the one given with ``--token``, or a generated one printed with
the address. Every request must then carry it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, RunInterrupted

_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,200}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class Exposure:
    """The token every request must carry (None: none needed) and whether it was generated here."""

    token: str | None
    generated: bool = False


def check_exposure(host: str, token: str | None) -> Exposure:
    """The token for ``host``: the one given (checked), a generated one off loopback, or none on loopback."""
    if token is not None:
        if not _TOKEN.fullmatch(token):
            raise ConfigError("--token: 8 to 200 characters of A-Z a-z 0-9 . _ ~ - (it travels in the address)")
        return Exposure(token)
    if is_loopback(host):
        return Exposure(None)
    return Exposure(secrets.token_urlsafe(24), generated=True)


#: The names a page bound to loopback answers to.
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


def allowed_hosts(host: str) -> list[str] | None:
    """``Host`` headers to accept: loopback names for a loopback bind; any (the token guards it) otherwise."""
    if ":" in host:  # an IPv6 literal: Starlette's host check cannot parse "[::1]:8080"; the token is the guard
        return None
    return LOOPBACK_HOSTS if is_loopback(host) else None


def page_address(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(run_dir: Path, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          annotator: str | None = None) -> int:
    """Serve the page until Ctrl-C (checks the run and the address first; prints where to open it)."""
    import uvicorn

    from .app import create_app
    from .store import RunStore

    exposure = check_exposure(host, token)
    store = RunStore(Path(run_dir), annotator=annotator)
    app = create_app(store, token=exposure.token, allowed_hosts=allowed_hosts(host))
    if exposure.generated:
        print(f"--host {host} is reachable from the network: every request must carry this token "
              f"(pass --token to choose it): {exposure.token}")
    print(f"labeling page for {run_dir}: {page_address(host, port, exposure.token)}  (Ctrl-C stops it)", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except RunInterrupted:  # uvicorn hands Ctrl-C / SIGTERM on once it has shut down: the normal way to stop
        pass
    print("labeling page stopped; every answer given is saved")
    return 0


@contextlib.contextmanager
def serving(run_dir: Path, *, token: str | None = None, **store_options: Any) -> Iterator[str]:
    """The page for ``run_dir`` on a free port of 127.0.0.1 in a background thread, for the duration of the block.

    Yields the page's address. For a notebook (label while the Python session goes on), the
    browser tests and the README's screenshot; ``store_options`` go to ``RunStore``.
    """
    import uvicorn

    from .app import create_app
    from .store import RunStore

    app = create_app(RunStore(Path(run_dir), **store_options), token=token, allowed_hosts=LOOPBACK_HOSTS)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="lit_al-annotate")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the labeling page's server did not start")
        time.sleep(0.02)
    try:
        yield page_address("127.0.0.1", sock.getsockname()[1], token)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
