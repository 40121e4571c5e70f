"""Checks of numeric options at the call: a ``ValueError`` naming the argument and its range.

Shared by every layer (curves, solvers, analysis): a count must be an ``int``
(not a bool, not a float) at least its minimum, a tolerance a finite number
in its range; anything else is refused before any work, with the option's name.
"""

from __future__ import annotations

import math

__all__ = ["check_bool", "check_int", "check_number", "check_optional_int", "check_optional_number"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value: object, name: str, *, positive: bool = True) -> float:
    """``value`` as a float if it is a finite number ``> 0`` (``positive``) or ``≥ 0``.

    Raises:
        ValueError: naming ``name`` and the allowed range.

    Example:
        >>> check_number(1e-6, "rtol")
        1e-06
        >>> check_number(0, "atol", positive=False)
        0.0
    """
    bound = "> 0" if positive else ">= 0"
    if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if number < 0 or (positive and number == 0):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_optional_number(value: object, name: str, *, positive: bool = True) -> float | None:
    """:func:`check_number`, or ``None`` passed through (a default chosen later)."""
    return None if value is None else check_number(value, name, positive=positive)


def check_int(value: object, name: str, *, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` ``≥ minimum`` (not a bool).

    Raises:
        ValueError: naming ``name`` and the allowed range.

    Example:
        >>> check_int(3, "max_iter")
        3
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_optional_int(value: object, name: str, *, minimum: int = 1) -> int | None:
    """:func:`check_int`, or ``None`` passed through."""
    return None if value is None else check_int(value, name, minimum=minimum)


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a ``bool`` (a flag such as ``progress``).

    Raises:
        TypeError: naming ``name``.

    Example:
        >>> check_bool(True, "progress")
        True
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value
