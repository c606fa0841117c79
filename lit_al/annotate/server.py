"""``lit_al annotate``: serve the labeling page of a run (uvicorn), safely by default.

Bound to 127.0.0.1 unless asked otherwise. Any other address lets the network in, so
it needs a token: the one given with ``--token``, or a generated one printed with
the address. Every request must then carry it. A loopback bind (127.0.0.0/8, ``::1``,
``localhost``) answers only to loopback host names instead (no DNS rebinding).

The port is bound before anything heavy is imported, so a busy port is one line at once
and the address is printed at once; a browser opened on it early waits in the socket's
backlog until the page is ready.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, DataError, RunInterrupted
from ..rundir import STATE_FILE

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


#: The names a page bound to loopback answers to (besides the address it is bound to).
LOOPBACK_HOSTS = ["127.0.0.1", "::1", "localhost"]


def allowed_hosts(host: str) -> list[str] | None:
    """Host names to accept: the bound address and the loopback names for a loopback bind; any (the token guards it) otherwise."""
    if not is_loopback(host):
        return None
    own = str(ipaddress.ip_address(host)) if host != "localhost" else host  # "0:0::1" is written "::1" by browsers
    return [own] + [name for name in LOOPBACK_HOSTS if name != own]


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; a busy port or a foreign address is one ``ConfigError`` line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a page just stopped leaves TIME_WAIT behind
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: the port is in use on {host} (another lit_al annotate?); "
                              "stop it or choose another --port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"--host {host}: not an address of this machine") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"--port {port}: not allowed to listen there (ports below 1024 need privileges); "
                              "choose another --port") from None
        raise
    return sock


def page_address(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(run_dir: Path, *, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          annotator: str | None = None) -> int:
    """Serve the page until Ctrl-C (checks the options and binds the port first; prints where to open it at once)."""
    exposure = check_exposure(host, token)
    if annotator is not None:
        _check_annotator(annotator)
    run_dir = Path(run_dir)
    if not (run_dir / STATE_FILE).is_file():
        raise ConfigError(f"{run_dir}: not a lit_al run (no {STATE_FILE}); start one with lit_al query")
    sock = listen(host, port)
    try:
        if exposure.generated:
            print(f"--host {host} is reachable from the network: every request must carry this token "
                  f"(pass --token to choose it): {exposure.token}")
        print(f"labeling page for {run_dir}: {page_address(host, port, exposure.token)}  (Ctrl-C stops it)", flush=True)
        _run(sock, run_dir, host, exposure.token, annotator)
    except RunInterrupted:  # uvicorn hands Ctrl-C / SIGTERM on once it has shut down: the normal way to stop
        pass
    finally:
        sock.close()
    print("labeling page stopped; every answer given is saved")
    return 0


def _check_annotator(annotator: str) -> None:
    from ..labeling.answers import check_name

    try:
        check_name(annotator, "--annotator")
    except DataError as exc:
        raise ConfigError(str(exc)) from None


def _run(sock: socket.socket, run_dir: Path, host: str, token: str | None, annotator: str | None) -> None:
    import uvicorn  # the heavy imports come after the address is printed

    from .app import create_app
    from .store import RunStore

    app = create_app(RunStore(run_dir, annotator=annotator), token=token, allowed_hosts=allowed_hosts(host))
    uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])


@contextlib.contextmanager
def serving(run_dir: Path, *, token: str | None = None, **store_options: Any) -> Iterator[str]:
    """The page for ``run_dir`` on a free port of 127.0.0.1 in a background thread, for the duration of the block.

    Yields the page's address. For a notebook (label while the Python session goes on), the
    browser tests and the README's screenshot; ``store_options`` go to ``RunStore``.
    """
    import uvicorn

    from .app import create_app
    from .store import RunStore

    app = create_app(RunStore(Path(run_dir), **store_options), token=token, allowed_hosts=allowed_hosts("127.0.0.1"))
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
