"""``latentgeo reproduce``: every experiment end to end on tiny settings, no overwrite."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from latentgeo.cli import main
from latentgeo.experiments import (
    CVSettings,
    KMeansSettings,
    RISettings,
    RunDir,
    run_ensembles_cv,
    run_kmeans,
    run_relative_improvement,
)


def test_reproduce_commands_refuse_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    RunDir(tmp_path).write_summary({"done": True})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for experiment in ("ensembles-cv", "relative-improvement", "kmeans"):
        argv = ["reproduce", experiment, "--quick", "--quiet", "--out", str(tmp_path)]
        assert main(argv) == 2
        assert "--force" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_reproduce_experiments_end_to_end_on_tiny_settings(tmp_path: Path) -> None:
    cv = run_ensembles_cv(
        tmp_path / "cv", CVSettings.quick(data="digits", repeats=2, pairs=4), progress=False
    )
    assert {"cv.csv", "distances.csv", "training.csv", "cv_histogram.png"} <= set(cv["files"])
    assert cv["result"] is False and cv["report"][0].startswith("QUICK SMOKE TEST")
    assert cv["decorrelated"]["solves_per_model"] == 8
    ri = run_relative_improvement(
        tmp_path / "ri", RISettings.quick(data="digits", latent_dim=2, pairs=3), progress=False
    )
    assert ri["num_pairs"] == 3 and 0 <= ri["converged"] <= 3 and ri["result"] is False
    km = run_kmeans(tmp_path / "km", KMeansSettings.quick(data="digits", points=9), progress=False)
    assert set(km["f_measure"]) == {"012", "347", "569"}
    for r in km["f_measure"].values():
        assert 0.0 < r["geodesic"]["mean"] <= 1.0 and r["num_pairs"] == 36


def test_the_summary_gives_the_command_as_typed_and_every_setting(tmp_path: Path) -> None:
    """A run's ``"command"`` reproduces it: the options and ``--out`` as typed (it gave
    only the budget, data and seed, so ``--pairs 2`` was lost); ``"settings"`` holds
    every field."""
    out = tmp_path / "ri"
    argv = ["reproduce", "relative-improvement", "--quick", "--data", "digits", "--pairs", "2",
            "--latent-dim", "2", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == shlex.join(["latentgeo", *argv])
    assert summary["settings"]["pairs"] == 2 and summary["settings"]["latent_dim"] == 2
    assert summary["settings"]["recipe"]["max_epochs"] == RISettings.quick().recipe.max_epochs
    # from Python: the equivalent command of its budget, data and seed
    python = run_relative_improvement(
        tmp_path / "py", RISettings.quick(data="digits", latent_dim=2, pairs=2), progress=False
    )
    assert python["command"] == "latentgeo reproduce relative-improvement --data digits --quick"
    assert json.loads(json.dumps(python["settings"])) == summary["settings"]
