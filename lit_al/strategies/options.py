"""Validators for strategy options, shared by the strategy classes.

Each validator checks one option value and either returns it (converted to the plain
Python type the strategy stores) or raises :class:`~lit_al.errors.StrategyError` with a
one-line message of the form ``"<strategy>: <option> must be ..., got <value!r>"``,
so that a bad config value is reported by the strategy's and the option's name.

``bool`` is never taken for a number here (``True`` is not the integer 1), except where
``check_float(..., coerce=True)`` converts with ``float()`` on purpose.
"""

from __future__ import annotations

import math
from typing import Any, Collection, TypeVar

import numpy as np

from ..errors import StrategyError

__all__ = ["check_bool", "check_choice", "check_float", "check_int", "check_optional_int"]

_T = TypeVar("_T")

#: Types accepted as a real number by :func:`check_float` (``bool`` is excluded separately).
_REAL_TYPES = (int, float, np.integer, np.floating)


def _fail(strategy: str, option: str, expected: str, value: Any) -> StrategyError:
    return StrategyError(f"{strategy}: {option} must be {expected}, got {value!r}")


def check_choice(strategy: str, option: str, value: _T, choices: Collection[Any], *, expected: str | None = None) -> _T:
    """Return ``value`` if it is one of ``choices``, else raise ``StrategyError``.

    A ``bool`` only matches a ``bool`` choice (``True`` does not match ``1``).
    ``expected`` replaces the default ``"one of [...]"`` wording of the message, e.g. to
    say what each choice means.
    """
    value_is_bool = isinstance(value, bool)
    if not any(value == choice and value_is_bool == isinstance(choice, bool) for choice in choices):
        raise _fail(strategy, option, expected or f"one of {list(choices)}", value)
    return value


def _int_wording(minimum: int) -> str:
    return "a positive integer" if minimum == 1 else f"an integer >= {minimum}"


def _is_int_at_least(value: Any, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum


def check_int(strategy: str, option: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer (Python or NumPy, not ``bool``) ``>= minimum``.

    Floats are refused even when integral (``2.0``), as are strings.
    """
    if not _is_int_at_least(value, minimum):
        raise _fail(strategy, option, _int_wording(minimum), value)
    return int(value)


def check_optional_int(strategy: str, option: str, value: Any, minimum: int = 1) -> int | None:
    """Like :func:`check_int`, but ``None`` (the option switched off) is accepted and returned."""
    if value is None:
        return None
    if not _is_int_at_least(value, minimum):
        raise _fail(strategy, option, f"None or {_int_wording(minimum)}", value)
    return int(value)


def _float_wording(
    minimum: float | None, maximum: float | None, min_inclusive: bool, max_inclusive: bool, finite: bool
) -> str:
    """The wording of the bounds in use: an interval, a lower bound (``minimum=0`` exclusive: positive), or none."""
    if minimum is not None and maximum is not None:
        return f"in {'[' if min_inclusive else '('}{minimum:g}, {maximum:g}{']' if max_inclusive else ')'}"
    if minimum is not None:
        if min_inclusive:
            return f"a finite number >= {minimum:g}" if finite else f"a number >= {minimum:g}"
        return "a positive number" if minimum == 0 else f"a number > {minimum:g}"
    return "a finite number" if finite else "a number"


def check_float(
    strategy: str,
    option: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    finite: bool = False,
    coerce: bool = False,
) -> float:
    """Return ``value`` as a ``float`` if it is a number within the given bounds.

    - ``minimum`` / ``maximum``: optional bounds; ``min_inclusive`` / ``max_inclusive``
      say whether each bound itself is allowed (``minimum=0, min_inclusive=False`` is
      "positive"; ``minimum=0, maximum=1, max_inclusive=False`` is ``[0, 1)``).
    - ``finite``: refuse ``inf`` as well (NaN is always refused).
    - ``coerce``: convert with ``float()`` first, so numeric strings and ``bool`` are
      accepted; without it only ``int``/``float`` and NumPy integers/floats are
      (never ``bool``).
    """
    if coerce:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    elif isinstance(value, bool) or not isinstance(value, _REAL_TYPES):
        number = math.nan
    else:
        number = float(value)
    ok = not math.isnan(number) and not (finite and math.isinf(number))
    if ok and minimum is not None:
        ok = number >= minimum if min_inclusive else number > minimum
    if ok and maximum is not None:
        ok = number <= maximum if max_inclusive else number < maximum
    if not ok:
        raise _fail(strategy, option, _float_wording(minimum, maximum, min_inclusive, max_inclusive, finite), value)
    return number


def check_bool(strategy: str, option: str, value: Any) -> bool:
    """Return ``value`` as a ``bool`` if it is ``True`` or ``False`` (Python or NumPy); no truthiness."""
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(strategy, option, "true or false", value)
    return bool(value)
