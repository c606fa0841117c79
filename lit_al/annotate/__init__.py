"""The labeling page: ``lit_al annotate RUN_DIR`` serves the run's pending batch, one text at a time.

``store`` is the run as the page sees it (items leased to clients, answers through
``session.import_answers``), ``leases`` who sees which item, ``rounds`` the next round
in a child process, ``app`` the web app and its JSON API, ``server`` the command.
The page itself is plain HTML, CSS and JavaScript in ``static/``, served by lit_al.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunStore", "check_exposure", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # lazily: ``lit_al annotate`` binds its port and prints the address before the app (and torch) is imported
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("check_exposure", "serve"):
        from . import server

        return getattr(server, name)
    if name == "RunStore":
        from .store import RunStore

        return RunStore
    raise AttributeError(f"module 'lit_al.annotate' has no attribute {name!r}")
