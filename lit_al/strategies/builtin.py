"""Imports every built-in strategy module so that its classes register themselves."""

from . import uncertainty  # noqa: F401
