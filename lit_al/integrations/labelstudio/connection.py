"""Where the Label Studio server is, the API key, and the SDK client; its failures as one line.

Label Studio's own conventions: ``LABEL_STUDIO_URL`` (default ``http://localhost:8080``) and
``LABEL_STUDIO_API_KEY`` (a legacy token or a personal access token, both from the
server's *Account & Settings* page), or the ``--url`` / ``--api_key`` options. The key lives
in this process only: it is never written to the run directory, and no message shows it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from ...errors import ConfigError

URL_VARIABLE = "LABEL_STUDIO_URL"
KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
DEFAULT_URL = "http://localhost:8080"
INSTALL_HINT = "pip install 'lit_al[labelstudio]'"


class Unreachable(ConfigError):
    """The server did not answer (down, restarting, network): worth another try, unlike a refused key."""


@dataclass(frozen=True)
class Connection:
    """A Label Studio server and the key to it (``repr`` hides the key)."""

    url: str
    api_key: str = field(repr=False)

    @property
    def shown_url(self) -> str:
        """The URL without any user:password part: what messages and the run directory may hold."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def connection_from(url: str | None = None, api_key: str | None = None) -> Connection:
    """The connection the options (else the environment) describe; one line when the key is missing."""
    url = (url or os.environ.get(URL_VARIABLE) or DEFAULT_URL).strip()
    key = (api_key or os.environ.get(KEY_VARIABLE) or "").strip()
    if not urlsplit(url).scheme or not urlsplit(url).hostname:
        raise ConfigError(f"Label Studio URL {url!r} is not a URL (e.g. {DEFAULT_URL}); set {URL_VARIABLE} or --url")
    if not key:
        raise ConfigError(f"no Label Studio API key: set {KEY_VARIABLE} (Account & Settings in Label Studio) "
                          "or give --api_key")
    return Connection(url.rstrip("/"), key)


def make_client(connection: Connection, timeout: float = 60.0) -> Any:
    """The SDK's ``LabelStudio`` client (imported here: the SDK is an optional extra)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request says nothing to a lit_al user
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise ConfigError(f"lit_al labelstudio needs the Label Studio SDK: {INSTALL_HINT}") from None
    with translated_errors(connection):  # the SDK checks a personal access token's expiry here
        return LabelStudio(base_url=connection.url, api_key=connection.api_key, timeout=timeout)


@contextlib.contextmanager
def translated_errors(connection: Connection, doing: str = "") -> Iterator[None]:
    """Turn the SDK's and httpx's failures into one ``ConfigError`` line that names the server (never the key)."""
    import httpx

    from label_studio_sdk.core.api_error import ApiError

    where = f"Label Studio at {connection.shown_url}" + (f" ({doing})" if doing else "")
    try:
        yield
    except ApiError as exc:
        raise ConfigError(f"{where}: {_api_reason(exc)}") from None
    except httpx.TimeoutException:
        raise Unreachable(f"{where}: no answer in time (is the server overloaded?)") from None
    except httpx.TransportError as exc:
        reason = str(exc).replace(connection.api_key, "***") or type(exc).__name__
        raise Unreachable(f"{where}: cannot reach the server ({reason}); is it running? set {URL_VARIABLE} or --url") from None
    except httpx.HTTPError as exc:
        reason = str(exc).replace(connection.api_key, "***") or type(exc).__name__
        raise ConfigError(f"{where}: {reason}") from None


def _api_reason(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = body.get("detail") if isinstance(body, dict) else body
    detail = " ".join(str(detail).split())[:300] if detail else ""
    if status in (401, 403):
        return (f"the API key was refused ({status}{': ' + detail if detail else ''}); set {KEY_VARIABLE} to a token "
                "from Account & Settings (legacy tokens must be enabled for the organisation, or use a personal access token)")
    if status == 404:
        return f"not found (404){': ' + detail if detail else ''}"
    return f"HTTP {status}{': ' + detail if detail else ''}"
