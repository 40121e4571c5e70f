"""``benchmarks/feature_metric.py --quick`` runs in seconds (numbers not checked: timings belong
to the benchmark, never to the tests)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "feature_metric.py"


def test_feature_metric_benchmark_quick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "feature_metric.txt"
    argv = [str(SCRIPT), "--quick", "--features", "4", "--diagonal", "exact", "hutchinson"]
    monkeypatch.setattr(sys, "argv", [*argv, "--probes", "2", "--out", str(out)])
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    runpy.run_path(str(SCRIPT), run_name="__main__")
    printed = capsys.readouterr().out
    assert "memory budget" in printed and "| plain (expected metric) |" in printed
    assert "| feature, exact |" in printed and "| feature, hutchinson (2 probes) |" in printed
    diff = float(printed.split("largest relative difference ")[1].split()[0])
    assert diff < 1e-10  # the reverse-mode diagonal is the forward-mode one
    assert out.read_text(encoding="utf-8") == printed
