"""Every script in examples/ runs on its tiny settings (``--quick``)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_exist() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "decoder_metric",
        "many_geodesics",
        "ensemble_vs_rbf",
        "neural_geodesic",
        "relative_improvement",
        "bring_your_model",
    } <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(
    script: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # outputs go to tmp_path/runs/examples
    monkeypatch.setattr(sys, "argv", [str(script), "--quick"])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()
