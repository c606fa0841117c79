"""The labeling page: ``lit_al annotate RUN_DIR`` serves the run's pending batch, one text at a time.

``store`` is the run as the page sees it (items leased to clients, answers through
``session.import_answers``), ``leases`` who sees which item, ``rounds`` the next round
in a child process, ``app`` the web app and its JSON API, ``server`` the command.
The page itself is plain HTML, CSS and JavaScript in ``static/``, served by lit_al.
"""

from .app import create_app
from .server import check_exposure, serve
from .store import RunStore

__all__ = ["RunStore", "check_exposure", "create_app", "serve"]
