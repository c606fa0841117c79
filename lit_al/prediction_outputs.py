"""Imports every module that registers output computers beyond the built-ins of ``prediction``."""

from . import prediction  # noqa: F401
