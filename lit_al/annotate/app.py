"""The labeling page's web app (Starlette): the page, its static files and a small JSON API.

API (every request carries the token when the server has one: ``?token=`` or the
``X-Lit-Al-Token`` header):

- ``GET /api/item?client=C``: what client ``C`` sees now (an item leased to it, or why none).
- ``POST /api/answer`` ``{"client", "id", "labels": [...]}`` or ``{"client", "id", "skip": "skip" | "not sure"}``,
  optional ``"annotator"``: one answer, recorded at once.
- ``POST /api/undo`` ``{"client"}`` (optional ``"id"``): undo the client's last answer.
- ``POST /api/release`` ``{"client"}``: give the client's item back.
- ``POST /api/round``: train and propose the next batch in the background; ``GET /api/round``: its progress.

Bad input is a 4xx with ``{"error": "..."}`` naming the field, and nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigError, DataError
from .store import SKIP_REASONS, RunStore

TOKEN_HEADER = "x-lit-al-token"
MAX_BODY = 64 << 10  # one answer is a few hundred bytes
MAX_FIELD = 200  # client ids and annotator names are short; longer values are refused


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


def _text(payload: dict, name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name}: a non-empty string is required")
    if name != "id" and len(value) > MAX_FIELD:
        raise BadRequest(f"{name}: longer than {MAX_FIELD} characters")
    return value


async def _payload(request: Request) -> dict:
    # JSON only: another site's page can send a form or text/plain to this address without asking
    # first, but not application/json (the browser asks first, and this server never says yes)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("content-type: send the body as application/json", 415)
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


def create_app(store: RunStore, *, token: str | None = None, allowed_hosts: list[str] | None = None) -> ASGIApp:
    """The app for ``store``'s run; with ``token``, every request must carry it.

    ``allowed_hosts``: the ``Host`` headers served (others get 400): a page bound to loopback
    answers only to its own names, so a web site cannot reach it by rebinding a DNS name.
    """
    page = (static_dir() / "index.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        # asset addresses carry the token too: a <script src> cannot send a header
        query = f"?token={token}" if token else ""
        return Response(page.replace("{{asset_query}}", query), media_type="text/html",
                        headers={"Cache-Control": "no-store"})

    async def item(request: Request) -> Response:
        client = _text(dict(request.query_params), "client")
        return JSONResponse(await run_in_threadpool(store.view, client))

    async def answer(request: Request) -> Response:
        payload = await _payload(request)
        client, example_id = _text(payload, "client"), _text(payload, "id")
        annotator = _text(payload, "annotator", required=False)
        labels, skip = _answer_fields(payload)
        summary = await run_in_threadpool(store.answer, client, example_id, labels, skip, annotator)
        view = await run_in_threadpool(store.view, client)
        return JSONResponse({"summary": summary.line(), "unchanged": summary.unchanged > 0, **view})

    async def undo(request: Request) -> Response:
        payload = await _payload(request)
        client = _text(payload, "client")
        example_id = _text(payload, "id", required=False)
        undone = await run_in_threadpool(store.undo, client, example_id)
        view = await run_in_threadpool(store.view, client)
        return JSONResponse({"undone": undone, **view})

    async def release(request: Request) -> Response:
        payload = await _payload(request)
        return JSONResponse({"released": store.release(_text(payload, "client"))})

    async def round_progress(request: Request) -> Response:
        return JSONResponse((await run_in_threadpool(store.round_progress)).to_json())

    async def start_round(request: Request) -> Response:
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
        Route("/api/answer", answer, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/release", release, methods=["POST"]),
        Route("/api/round", round_progress, methods=["GET"]),
        Route("/api/round", start_round, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    handlers: dict[Any, Any] = {BadRequest: bad_request, DataError: bad_request, ConfigError: conflict,
                                HTTPException: http_error}
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=_lifespan(store))
    return TokenGate(app, token) if token else app
