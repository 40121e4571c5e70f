"""Checks of the experiments' settings, run in their ``__post_init__`` before any work.

A refused value raises :class:`SettingsError`, a ``ValueError`` that names
the settings class, the field, what is accepted and what was given; the
command line turns it into ``argument --FIELD: expected ..., got ...``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "DATA_SETS",
    "SEED_MAX",
    "SettingsError",
    "check_choice",
    "check_digits",
    "check_int",
    "check_layers",
    "check_number",
    "check_seed",
]

#: The data sets the experiments load (``latentgeo.experiments.common.load_data``).
DATA_SETS = ("digits", "mnist")

#: Largest seed (NumPy and scikit-learn take seeds below 2**32; runs add small offsets).
SEED_MAX = 2**31 - 1


class SettingsError(ValueError):
    """A settings field has a value the experiment cannot use.

    Attributes:
        field: the field's name (``"points"``).
        expected: what is accepted (``"an integer >= 3 (k = 3 clusters)"``).
        value: the value given.
    """

    def __init__(self, owner: object, field: str, expected: str, value: Any) -> None:
        self.field, self.expected, self.value = field, expected, value
        super().__init__(f"{type(owner).__name__}.{field} must be {expected}, got {value!r}")


def check_int(owner: object, field: str, minimum: int, why: str = "") -> None:
    """``owner.field`` is an ``int`` (not a bool) ``>= minimum``."""
    value = getattr(owner, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(owner, field, f"an integer >= {minimum}{why}", value)


def check_seed(owner: object, field: str = "seed") -> None:
    """``owner.field`` is an integer seed in ``[0, SEED_MAX]``."""
    value = getattr(owner, field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise SettingsError(owner, field, f"an integer from 0 to {SEED_MAX}", value)


def check_number(owner: object, field: str, *, positive: bool = True) -> None:
    """``owner.field`` is a finite number, ``> 0`` if ``positive`` else ``>= 0``."""
    value = getattr(owner, field)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise SettingsError(owner, field, f"a finite number {'>' if positive else '>='} 0", value)


def check_choice(owner: object, field: str, choices: Sequence[str]) -> None:
    """``owner.field`` is one of ``choices``."""
    value = getattr(owner, field)
    if value not in choices:
        raise SettingsError(owner, field, "one of " + ", ".join(map(repr, choices)), value)


def check_layers(owner: object, field: str) -> None:
    """``owner.field`` is a non-empty tuple of layer widths ``>= 1``."""
    value = getattr(owner, field)
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value)
    ):
        raise SettingsError(owner, field, "a non-empty tuple of layer widths >= 1", value)


def check_digits(owner: object, field: str, minimum: int = 2) -> None:
    """``owner.field`` is a tuple of at least ``minimum`` different digits 0-9."""
    value = getattr(owner, field)
    ok = (
        isinstance(value, tuple)
        and len(value) >= minimum
        and len(set(value)) == len(value)
        and all(isinstance(c, int) and 0 <= c <= 9 for c in value)
    )
    if not ok:
        raise SettingsError(owner, field, f"at least {minimum} different digits 0-9", value)
