"""latentgeo's error and warning classes, and warn_once: once per owner and text."""

from __future__ import annotations

import gc
import warnings

import pytest

from latentgeo.exceptions import (
    LatentgeoError,
    LatentgeoWarning,
    NumericsWarning,
    PerformanceWarning,
    warn_once,
)


class Owner:
    pass


def test_warnings_can_be_filtered_by_class() -> None:
    assert issubclass(PerformanceWarning, LatentgeoWarning)
    assert issubclass(NumericsWarning, LatentgeoWarning)
    assert issubclass(LatentgeoWarning, UserWarning) and issubclass(LatentgeoError, Exception)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        with pytest.raises(PerformanceWarning, match="slow"):
            warn_once(Owner(), PerformanceWarning("slow"))


def _caught(*calls: tuple[object, LatentgeoWarning]) -> list[bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shown = [warn_once(owner, warning) for owner, warning in calls]
    assert len(caught) == sum(shown)
    return shown


def test_once_per_owner_text_and_class() -> None:
    a, b = Owner(), Owner()
    shown = _caught(
        (a, PerformanceWarning("x")),
        (a, PerformanceWarning("x")),  # the same: not again
        (a, PerformanceWarning("y")),  # another text
        (a, NumericsWarning("x")),  # another class
        (b, PerformanceWarning("x")),  # another owner
    )
    assert shown == [True, False, True, True, True]


def test_owners_that_cannot_be_weakly_referenced_and_freed_owners() -> None:
    key = (1, 2)  # a tuple: not weakly referenceable, kept by id
    assert _caught((key, NumericsWarning("t")), (key, NumericsWarning("t"))) == [True, False]
    owner = Owner()
    assert _caught((owner, PerformanceWarning("f"))) == [True]
    del owner
    gc.collect()
    assert _caught((Owner(), PerformanceWarning("f"))) == [True]  # a new owner hears it


def test_the_warning_points_at_the_caller_of_the_warning_function() -> None:
    def library_function(owner: object) -> None:
        warn_once(owner, PerformanceWarning("here"), stacklevel=3)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library_function(Owner())
    assert caught[0].filename == __file__
