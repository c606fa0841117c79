"""Errors that carry a message meant for the person running lit_al.

The CLI prints ``LitAlError`` messages as one line and exits non-zero, without a
traceback; anything else is a bug and keeps its traceback.
"""

import re


class LitAlError(Exception):
    """A problem with the user's input (config, file, option): shown as one line."""


class ConfigError(LitAlError):
    """An option has a value that cannot work."""


class DataError(LitAlError):
    """A data file is missing, unreadable or inconsistent (names the file and row)."""


class StrategyError(LitAlError):
    """A strategy was configured or called in a way it cannot serve."""


class RunInterrupted(BaseException):
    """A signal (SIGTERM, SIGINT) stopped the run; the CLI exits with 128 + the signal number.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` may swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


#: Lines of a jsonargparse error that list what was tried rather than why it failed.
_NOISE = re.compile(r"^(- )?(Subtypes:|Given value|Errors:|Expected a |Does not validate against any of the Union subtypes)")


def one_line(exc: BaseException) -> str:
    """A library exception's message as one line that keeps its reason.

    jsonargparse's union errors list every subtype it tried; the lines saying why the intended
    one failed (``the following arguments are required: save_dir``) are kept, the list is not.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    kept = [line for line in lines if not _NOISE.match(line)]
    return " ".join(kept if len(kept) > 1 or len(lines) == 1 else lines[:3])
