"""Argument checks shared by the kernels, the loss, the metric and the callback.

Every message follows one template: ``Expected `name` to be <requirement>, but got <value>.`` plus a hint
where one helps. Only built-in exceptions are raised: ``ValueError`` for a wrong value or shape, ``TypeError``
for a wrong type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

__all__ = [
    "check_alpha",
    "check_bool",
    "check_choice",
    "check_int",
    "check_minmax",
    "check_probability",
    "expected",
]


def expected(name: str, requirement: str, value: Any, hint: str = "") -> str:
    """Build the project's error message.

    Example:
        >>> expected("prob", "a float in [0, 1]", 1.5)
        'Expected `prob` to be a float in [0, 1], but got 1.5.'
    """
    message = f"Expected `{name}` to be {requirement}, but got {value!r}."
    return f"{message} {hint}" if hint else message


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(expected(name, "a real number", value))
    if math.isnan(value):
        raise ValueError(expected(name, "a number, not NaN", value))
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it lies in [0, 1]."""
    number = _check_real(name, value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(expected(name, "a float in [0, 1]", value))
    return number


def check_alpha(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0 (0 disables the method)."""
    number = _check_real(name, value)
    if number < 0.0 or math.isinf(number):
        raise ValueError(expected(name, "a finite float >= 0 (0 disables the method)", value))
    return number


def check_minmax(name: str, value: Any) -> tuple[float, float] | None:
    """Return ``value`` as a ``(lo, hi)`` pair of floats with ``0 < lo <= hi <= 1``, or ``None``."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(expected(name, "None or a pair (lo, hi) of box side ratios", value))
    lo, hi = (_check_real(name, v) for v in value)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(expected(name, "a pair (lo, hi) with 0 < lo <= hi <= 1", tuple(value)))
    return lo, hi


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in choices:
        raise ValueError(expected(name, "one of " + ", ".join(repr(c) for c in choices), value))
    return value


def check_int(name: str, value: Any, minimum: int | None = None, *, optional: bool = False) -> None:
    """Check that ``value`` is an int (not a bool), at least ``minimum`` when given, or None when ``optional``."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):  # NumPy integers pass
        raise TypeError(expected(name, "an int" + (" or None" if optional else ""), value))
    if minimum is not None and value < minimum:
        raise ValueError(expected(name, f"an int >= {minimum}", value))


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` after checking it is a bool."""
    if not isinstance(value, bool):
        raise TypeError(expected(name, "a bool", value))
    return value
