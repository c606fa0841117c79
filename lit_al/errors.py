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


class RunInterrupted(BaseException):
    """A signal (SIGTERM, SIGINT) stopped the run; the CLI exits with 128 + the signal number.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` may swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


def one_line(exc: BaseException, max_lines: int = 3) -> str:
    """A library exception's message on one line (its first ``max_lines`` lines)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:max_lines]) if lines else type(exc).__name__
