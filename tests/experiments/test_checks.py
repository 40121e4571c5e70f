"""Settings checks: every refusal names the class, the field, what is accepted and the value."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from latentgeo.experiments._checks import (
    SEED_MAX,
    SettingsError,
    check_choice,
    check_digits,
    check_int,
    check_layers,
    check_number,
    check_seed,
)


@dataclass
class Settings:
    value: object


@pytest.mark.parametrize(
    ("check", "good", "bad", "expected"),
    [
        (lambda s: check_int(s, "value", 2, " (two at least)"), 2, 1, "an integer >= 2 (two"),
        (lambda s: check_int(s, "value", 0), 0, True, "an integer >= 0"),
        (lambda s: check_seed(s, "value"), SEED_MAX, SEED_MAX + 1, "an integer from 0 to 2147"),
        (lambda s: check_number(s, "value"), 1e-9, 0.0, "a finite number > 0"),
        (lambda s: check_number(s, "value", positive=False), 0.0, -1e-9, "a finite number >= 0"),
        (lambda s: check_choice(s, "value", ("a", "b")), "b", "c", "one of 'a', 'b'"),
        (lambda s: check_layers(s, "value"), (4, 1), (4, 0), "a non-empty tuple of layer"),
        (lambda s: check_layers(s, "value"), (3,), [3], "a non-empty tuple of layer"),
        (lambda s: check_digits(s, "value"), (0, 9), (1, 1), "at least 2 different digits"),
        (lambda s: check_digits(s, "value", 3), (0, 5, 7), (0, 5, 10), "at least 3 different"),
    ],
)
def test_good_values_pass_and_bad_ones_are_named(
    check: object, good: object, bad: object, expected: str
) -> None:
    check(Settings(good))  # type: ignore[operator]
    with pytest.raises(SettingsError) as info:
        check(Settings(bad))  # type: ignore[operator]
    assert str(info.value).startswith(f"Settings.value must be {expected}")
    assert str(info.value).endswith(f"got {bad!r}")
    assert (info.value.field, info.value.value) == ("value", bad)
    assert isinstance(info.value, ValueError)
