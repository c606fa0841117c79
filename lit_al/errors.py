"""Errors that carry a message meant for the person running lit_al.

The CLI prints ``LitAlError`` messages as one line and exits non-zero, without a
traceback; anything else is a bug and keeps its traceback.
"""


class LitAlError(Exception):
    """A problem with the user's input (config, file, option): shown as one line."""


class ConfigError(LitAlError):
    """An option has a value that cannot work."""


class DataError(LitAlError):
    """A data file is missing, unreadable or inconsistent (names the file and row)."""


class StrategyError(LitAlError):
    """A strategy was configured or called in a way it cannot serve."""
