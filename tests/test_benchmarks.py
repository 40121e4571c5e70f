"""The benchmark scripts that have a ``--quick`` mode run in seconds (numbers not checked:
timings belong to the benchmarks, never to the tests)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_real_decoders_quick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "real_decoders.txt"
    script = BENCHMARKS / "real_decoders.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--quick", "--out", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "memory budget" in printed and "| conv VAE d=16 | 4 | 4 |" in printed
    assert "| metric_tensor |" in printed and "exact J then JᵀJ" in printed
    assert "| MLP d=50 |" in printed and "latentgeo's cap on the CPU: 32 MiB" in printed
    assert "| conv VAE d=16 | 120 |" in printed and "| MLP d=50 | 1225 |" in printed
    assert out.read_text(encoding="utf-8") == printed


def test_graph_start_quick(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    script = BENCHMARKS / "graph_start.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--quick"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts its folder first
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "60 points, k=10, 4 pairs in chunks of 2" in printed
    rows = [line for line in printed.splitlines() if line.startswith(("| conv", "| MLP"))]
    gaps = [float(r.rstrip(" |").rsplit("|", 1)[1]) for r in rows]
    assert len(rows) == 2 and max(gaps) < 1e-9, rows  # a pair's path is its own: rounding only
