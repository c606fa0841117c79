"""The labeling page's web app (Starlette): the page, its static files and a small JSON API.

API (every request carries the token when the server has one: ``?token=`` or the
``X-Lit-Al-Token`` header):

- ``GET /api/item?client=C``: what client ``C`` sees now: the item it holds, or why it has none.
  Reading leases nothing.
- ``POST /api/take`` ``{"client", "annotator"?, "reclaim"?}``: lease ``C`` the next open item (its own
  if it holds one); ``"reclaim": true`` takes back an item that another tab of the same annotator
  holds (a crashed tab) when every open item is held.
- ``POST /api/answer`` ``{"client", "id", "labels": [...]}`` or ``{"client", "id", "skip": "skip" | "not sure"}``,
  optional ``"annotator"``: one answer, recorded at once.
- ``POST /api/undo`` ``{"client"}`` (optional ``"id"``, ``"annotator"``): undo the client's last answer.
- ``POST /api/release`` ``{"client"}``: give the client's item back.
- ``POST /api/round`` ``{}``: train and propose the next batch in the background; ``GET /api/round``: its progress.

Every POST changes the run, so it must come from the page itself, on loopback too: a JSON body
(``Content-Type: application/json``), no ``Origin`` but the server's own and no ``Sec-Fetch-Site``
but ``same-origin``, and the page's secret in the ``X-Lit-Al-Page`` header (a fresh one per server,
written into the page's HTML, which another site can neither read nor send). Item texts' keyword
``highlights`` are ``[start, end)`` in code points.

Bad input is a 4xx with ``{"error": "..."}`` naming the field, and nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigError, DataError
from ..labeling.answers import MAX_NAME, check_name
from .store import SKIP_REASONS, RunStore

TOKEN_HEADER = "x-lit-al-token"
PAGE_HEADER = "x-lit-al-page"
MAX_BODY = 64 << 10  # one answer is a few hundred bytes
MAX_FIELD = 200  # client ids are short; longer values are refused


class BadRequest(Exception):
    """A malformed request: its status (400 unless said) and the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def static_dir() -> Path:
    return Path(str(resources.files("lit_al.annotate") / "static"))


class TokenGate:
    """Every request must carry the token (query string ``token`` or header ``X-Lit-Al-Token``); 401 otherwise."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
            if not secrets.compare_digest(given.encode(), self.token):
                response = JSONResponse({"error": "token: missing or wrong (add ?token=... to the address)"}, 401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header (``[::1]:8080`` -> ``::1``), lower case; None when it has none."""
    try:
        return urlsplit(f"//{header}").hostname or None
    except ValueError:  # "[::1" and the like
        return None


class HostGuard:
    """Serve only requests whose ``Host`` names one of ``names`` (400 otherwise).

    A page bound to loopback answers to its own names only: a web site that points a DNS
    name of its own at 127.0.0.1 (DNS rebinding) reaches the port, but under its own name.
    """

    def __init__(self, app: ASGIApp, names: list[str]) -> None:
        self.app = app
        self.names = {name.lower() for name in names}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Request(scope).headers.get("host", "")
            if host_name(header) not in self.names:
                response = JSONResponse({"error": f"host: {header!r} is not served here; open the page at "
                                                  f"one of {sorted(self.names)}"}, 400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _from_the_page(request: Request, secret: str) -> None:
    """Refuse a state-changing request that another site's page could have sent (403, one line each)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise BadRequest(f"sec-fetch-site: {site!r}: only the labeling page itself may change the run", 403)
    origin = request.headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()):
        raise BadRequest(f"origin: {origin!r} is another site: only the labeling page itself may change the run", 403)
    if not secrets.compare_digest(request.headers.get(PAGE_HEADER, "").encode(), secret.encode()):
        raise BadRequest("x-lit-al-page: missing or out of date: reload the page (the server was restarted?)", 403)


def _text(payload: dict, name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name}: a non-empty string is required")
    if name != "id":  # client ids and annotator names: bounded and printable (they are written and shown)
        try:
            check_name(value, name, limit=MAX_FIELD if name == "client" else MAX_NAME)
        except DataError as exc:
            raise BadRequest(str(exc)) from None
    return value


async def _payload(request: Request, secret: str) -> dict:
    # JSON only: another site's page can send a form or text/plain to this address without asking
    # first, but not application/json (the browser asks first, and this server never says yes)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("content-type: send the body as application/json", 415)
    _from_the_page(request, secret)
    too_large = BadRequest(f"body: larger than {MAX_BODY >> 10} KiB", 413)
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # read no further than the limit, whatever the header said
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    try:
        payload = json.loads(bytes(body))
    except ValueError:  # not JSON, or not UTF-8
        raise BadRequest("body: not JSON (send a JSON object)") from None
    except RecursionError:  # arrays nested thousands deep fit in the size limit
        raise BadRequest("body: nested too deeply (send a flat JSON object)") from None
    if not isinstance(payload, dict):
        raise BadRequest("body: a JSON object is required")
    return payload


def _answer_fields(payload: dict) -> tuple[list[str] | None, str | None]:
    labels, skip = payload.get("labels"), payload.get("skip")
    if (labels is None) == (skip is None):
        raise BadRequest("labels/skip: give exactly one of labels (a list of label names) or skip")
    if skip is not None:
        if skip not in SKIP_REASONS:
            raise BadRequest(f"skip: {skip!r} is not one of {list(SKIP_REASONS)}")
        return None, skip
    if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
        raise BadRequest("labels: a list of label names is required")
    return labels, None


def _lifespan(store: RunStore):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(store.stop)  # a round still training stops cleanly and resumes later

    return lifespan


def create_app(store: RunStore, *, token: str | None = None, allowed_hosts: list[str] | None = None,
               page_secret: str | None = None) -> ASGIApp:
    """The app for ``store``'s run; with ``token``, every request must carry it.

    ``allowed_hosts``: the host names served (others get 400): a page bound to loopback
    answers only to its own names, so a web site cannot reach it by rebinding a DNS name.
    ``page_secret``: what every POST must carry in ``X-Lit-Al-Page`` (default: a fresh random one),
    handed out in the page's HTML only.
    """
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    secret = page_secret or secrets.token_urlsafe(24)

    async def index(request: Request) -> Response:
        # asset addresses carry the token too: a <script src> cannot send a header
        query = f"?token={token}" if token else ""
        html = page.replace("{{asset_query}}", query).replace("{{page_secret}}", secret)
        return Response(html, media_type="text/html", headers={"Cache-Control": "no-store"})

    async def item(request: Request) -> Response:
        client = _text(dict(request.query_params), "client")
        return JSONResponse(await run_in_threadpool(store.view, client))

    async def take(request: Request) -> Response:
        payload = await _payload(request, secret)
        client, annotator = _text(payload, "client"), _text(payload, "annotator", required=False)
        reclaim = payload.get("reclaim", False)
        if not isinstance(reclaim, bool):
            raise BadRequest("reclaim: true or false")
        return JSONResponse(await run_in_threadpool(lambda: store.view(client, take=True, annotator=annotator,
                                                                         reclaim=reclaim)))

    async def answer(request: Request) -> Response:
        payload = await _payload(request, secret)
        client, example_id = _text(payload, "client"), _text(payload, "id")
        annotator = _text(payload, "annotator", required=False)
        labels, skip = _answer_fields(payload)
        summary = await run_in_threadpool(store.answer, client, example_id, labels, skip, annotator)
        view = await run_in_threadpool(lambda: store.view(client, take=True, annotator=annotator))
        return JSONResponse({"summary": summary.line(), "unchanged": summary.unchanged > 0, **view})

    async def undo(request: Request) -> Response:
        payload = await _payload(request, secret)
        client = _text(payload, "client")
        example_id = _text(payload, "id", required=False)
        annotator = _text(payload, "annotator", required=False)
        undone = await run_in_threadpool(store.undo, client, example_id, annotator)
        view = await run_in_threadpool(lambda: store.view(client, take=True, annotator=annotator))
        return JSONResponse({"undone": undone, **view})

    async def release(request: Request) -> Response:
        payload = await _payload(request, secret)
        return JSONResponse({"released": store.release(_text(payload, "client"))})

    async def round_progress(request: Request) -> Response:
        return JSONResponse((await run_in_threadpool(store.round_progress)).to_json())

    async def start_round(request: Request) -> Response:
        await _payload(request, secret)
        await run_in_threadpool(store.start_round)
        return JSONResponse(store.round_progress().to_json(), status_code=202)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": f"{request.url.path}: {exc.detail}"}, status_code=exc.status_code)

    async def conflict(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=409)

    routes = [
        Route("/", index),
        Route("/api/item", item),
        Route("/api/take", take, methods=["POST"]),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/release", release, methods=["POST"]),
        Route("/api/round", round_progress, methods=["GET"]),
        Route("/api/round", start_round, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    handlers: dict[Any, Any] = {BadRequest: bad_request, DataError: bad_request, ConfigError: conflict,
                                HTTPException: http_error}
    middleware = [Middleware(HostGuard, names=allowed_hosts)] if allowed_hosts else []
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=_lifespan(store))
    return TokenGate(app, token) if token else app
