"""``latentgeo distances``: files and numbers, resume, Ctrl-C, refusals (exit 2), progress bar."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from latentgeo.analysis import pairwise_geodesic_distances
from latentgeo.analysis.distributed import JobProgress
from latentgeo.cli import distances as cli_distances
from latentgeo.cli import main
from latentgeo.cli.common import show_progress

from ..conftest import make_decoder

pytestmark = pytest.mark.slow


@pytest.fixture
def points_file(tmp_path: Path, points: torch.Tensor) -> Path:
    path = tmp_path / "points.npy"
    np.save(path, points.numpy())
    return path


def _args(model: Path, points: Path, out: Path, client: Any, *extra: str) -> list[str]:
    address = client.scheduler.address
    return ["distances", "--model", str(model), "--points", str(points), "--out", str(out),
            "--scheduler", address, "--tile", "8", "--quiet", *extra]  # fmt: skip


def test_writes_matrix_and_summary_then_resumes(
    client: Any, checkpoints: dict[str, Path], points: torch.Tensor, points_file: Path,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    assert main(_args(checkpoints["mlp"], points_file, out, client)) == 0
    printed = capsys.readouterr().out
    assert "converged" in printed and str(out) in printed
    header = [c.strip() for c in printed.splitlines()[0].split("  ") if c.strip()]
    assert header[:3] == ["pairs", "converged", "not converged"], header
    ref = pairwise_geodesic_distances(make_decoder("mlp"), points, chunk_size=8)
    np.testing.assert_allclose(np.load(out / "distances.npy"), ref.numpy(), rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_pairs"] == 45 and summary["converged"] == 45 and summary["failed"] == 0
    assert summary["status_counts"] == {"converged": 45}
    assert summary["tiles"] == {"total": 6, "computed": 6, "resumed": 0, "failed": 0}
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries
    assert main(_args(checkpoints["mlp"], points_file, out, client)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"] == {"total": 6, "computed": 0, "resumed": 6, "failed": 0}


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(
    client: Any, checkpoints: dict[str, Path], points_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    def ctrl_c(self: Any, progress: JobProgress) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_distances._Bar, "__call__", ctrl_c)
    out = tmp_path / "run"
    assert main(_args(checkpoints["mlp"], points_file, out, client)) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (out / "distances.npy").exists()
    kept = len(list((out / "tiles").rglob("*.npz")))
    assert kept == 1
    monkeypatch.undo()
    assert main(_args(checkpoints["mlp"], points_file, out, client)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"] == {"total": 6, "computed": 5, "resumed": 1, "failed": 0}
    assert client.run(lambda: 1)  # the cluster we were given is still up


def test_refusals_exit_2_with_one_line(
    checkpoints: dict[str, Path], points_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bad_points = tmp_path / "bad.npy"
    bad_points.write_bytes(b"not numpy")
    three_d = tmp_path / "three.npy"
    np.save(three_d, np.zeros((4, 3)))
    with_nan, one, flat = tmp_path / "nan.npy", tmp_path / "one.npy", tmp_path / "flat.npy"
    np.save(with_nan, np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]))
    np.save(one, np.zeros((1, 2)))
    np.save(flat, np.zeros(4))
    archive = tmp_path / "points.npz"
    np.savez(archive, z=np.zeros((4, 2)))
    out = str(tmp_path / "out")
    model, missing = str(checkpoints["mlp"]), str(tmp_path / "none.pt")
    unreachable = ["--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"]
    cases = [
        ((missing, points_file), [], "--model: no checkpoint"),
        ((model, tmp_path / "none.npy"), [], "--points: no file"),
        ((model, bad_points), [], "not a readable .npy"),
        ((model, three_d), [], "dimension d=3"),
        ((model, with_nan), [], f"{with_nan} holds NaN or Inf values in 1 of 3 rows (first: 1)"),
        ((model, one), [], f"--points: {one} must hold N >= 2 points as an (N, d) array"),
        ((model, flat), [], f"--points: {flat} must hold N >= 2 points"),
        ((model, archive), [], f"--points: {archive} is an .npz archive"),
        ((model, points_file), unreachable, "cannot reach a Dask scheduler"),
        ((model, points_file), [*unreachable, "--workers", "2"], "embedded local cluster"),
    ]
    for (m, p), extra, message in cases:
        args = ["distances", "--out", out, "--quiet", "--model", m, "--points", str(p), *extra]
        assert main(args) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out" / "tiles").exists()
    bad_tile = ["distances", "--model", "m.pt", "--points", "p.npy", "--out", out, "--tile", "0"]
    assert main(bad_tile) == 2
    assert "--tile: expected an integer >= 1" in capsys.readouterr().err


def test_changed_configuration_exits_2(
    client: Any, checkpoints: dict[str, Path], points_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "run"
    (out / "tiles").mkdir(parents=True)  # a folder that is not a distance job's
    assert main(_args(checkpoints["mlp"], points_file, out, client)) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    progress = JobProgress(3, 0, 10, 300, 700, 2.0)
    for stream, shown in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr("sys.stderr", stream)
        args = argparse.Namespace(quiet=False, progress=False)
        bar = cli_distances._Bar(show_progress(args))
        bar(progress)
        bar.close()
        text = stream.getvalue()
        assert ("150.0 pairs/s, ETA 5 s" in text) is shown and ("3/10" in text) is shown, text


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distances", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--neighbours" in text and "resumes" in text
