"""The solvers' progress bar: on stderr only when enabled, moved by its update function."""

from __future__ import annotations

import pytest

from latentgeo._progress import iteration_bar


def test_a_disabled_bar_shows_nothing(capsys: pytest.CaptureFixture) -> None:
    with iteration_bar(False, 5, "shots") as update:
        assert update is None
    assert capsys.readouterr() == ("", "")


def test_an_enabled_bar_shows_its_count_and_figures_then_clears(
    capsys: pytest.CaptureFixture,
) -> None:
    with iteration_bar(True, 5, "shots") as update:
        assert update is not None
        update(3, running="2/4")
    err = capsys.readouterr().err
    assert "shots" in err and "3/5" in err and "running=2/4" in err
    assert capsys.readouterr().out == ""
