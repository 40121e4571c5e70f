"""``latentgeo demo``: the quick demo's files and numbers, quiet when redirected, no overwrite."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latentgeo.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """``latentgeo demo --quick`` as a user runs it, its output redirected to pipes."""
    out = tmp_path_factory.mktemp("demo") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "latentgeo.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True, text=True, check=False, umask=0o022,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def demo_dir(demo_run: tuple[Path, str, str]) -> Path:
    return demo_run[0]


def test_a_redirected_demo_writes_no_progress_bars(demo_run: tuple[Path, str, str]) -> None:
    out, stdout, stderr = demo_run
    assert "\r" not in stdout and "\r" not in stderr
    assert stderr.splitlines() == [f"latentgeo: run complete: {out}"]  # logs on stderr
    assert "files in" in stdout and "improvement" in stdout  # the result on stdout
    assert "converged" in stdout and "means over converged pairs" in stdout  # k/n by the means
    record = json.loads((out / "run.json").read_text())
    assert record["command"] == ["latentgeo", "demo", "--quick", "--out", str(out)]
    assert record["completed"] is True and record["seed"] == 0
    assert [p.name for p in out.parent.iterdir()] == ["run"]  # no staging folder left
    for p in [out, *out.iterdir()]:  # readable by others under umask 022
        assert p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644), p.name


def test_demo_quick_writes_all_files(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "summary.json").read_text())
    for name in ("distances.csv", "latent_ensemble.png", "latent_rbf.png"):
        assert name in summary["files"]
    for name in summary["files"]:
        assert (demo_dir / name).is_file(), name
    assert (demo_dir / "latent_rbf.png").read_bytes()[:8] == PNG
    assert not [p.name for p in demo_dir.iterdir() if p.name.startswith(".")]  # no temporaries
    with open(demo_dir / "distances.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = summary["settings"]["num_pairs"]
    assert len(rows) == 2 * n
    assert {r["model"] for r in rows} == {"ensemble", "rbf"}


def test_demo_geodesics_go_around_the_hole(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "summary.json").read_text())
    assert summary["seed"] == 0
    for name in ("ensemble", "rbf"):
        model = summary["models"][name]
        off = model["off_data_fraction"]
        assert off["geodesic"] < off["straight_line"], name
        assert off["geodesic"] < 0.5 * off["straight_line"], name
        assert model["mean_geodesic_length"] < model["mean_straight_line_length"], name
        assert model["mean_relative_improvement"] > 0, name


def test_demo_refuses_to_overwrite_a_finished_run(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (demo_dir / "summary.json").read_bytes()
    assert main(["demo", "--quick", "--quiet", "--out", str(demo_dir)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (demo_dir / "summary.json").read_bytes() == before
