"""The ensembles-cv report: its lines carry the comparisons' own numbers, converged k/n next
to them, WARNING lines below 90 %, and the smoke-test banner; the tables and figure are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentgeo.analysis import compare_retrainings
from latentgeo.experiments import CVSettings, RunDir
from latentgeo.experiments.ensembles_cv import PAPER
from latentgeo.experiments.ensembles_cv_report import summarise, write_figure
from latentgeo.solvers import Status

TRAINING = {"final_val_loss": 1.5, "epochs": 3, "stopped_early": False, "fit_images": 99,
            "seconds": 0.1}  # fmt: skip


def _comparisons(failed: int) -> dict:
    rng = np.random.default_rng(0)
    base = rng.uniform(1.0, 3.0, size=12)
    ens = base * (1 + 0.02 * rng.standard_normal((3, 12)))
    rbf = base * (1 + 0.2 * rng.standard_normal((3, 12)))
    status = np.full((3, 12), Status.CONVERGED.value, dtype=object)
    status[0, :failed] = Status.MAX_ITERATIONS.value
    cmp = compare_retrainings(ens, rbf, status, np.full((3, 12), Status.CONVERGED.value))
    return {"decorrelated": cmp, "mean metric": cmp}


def _results() -> list[dict]:
    return [{k: {"training": TRAINING} for k in ("ensemble", "rbf")} for _ in range(3)]


def test_report_lines_quote_the_comparison(tmp_path: Path) -> None:
    comps = _comparisons(failed=0)
    s = CVSettings(repeats=3, pairs=12)
    summary = summarise(s, _results(), comps, 12.0, ("digits", (0, 5, 7)), PAPER)
    assert json.loads(json.dumps(summary, default=str))["decorrelated"]["pairs_used"] == 12
    test = comps["decorrelated"].test
    assert test is not None and summary["decorrelated"]["t"] == test.statistic
    lines = summary["report"]
    assert lines[0].startswith("ensembles-cv: digits classes [0, 5, 7], d = 2; budget cpu")
    line = next(x for x in lines if x.startswith("decorrelated ensemble vs RBF"))
    assert f"t = {test.statistic:.2f}" in line and "over 12 of 12 pairs" in line
    assert "ensemble converged 36/36 solves" in line
    assert not any(x.startswith("WARNING") for x in lines)
    run = RunDir(tmp_path / "run")
    write_figure(run, comps, "converged 12/12")
    assert (run.staging / "cv_histogram.png").read_bytes()[:4] == b"\x89PNG"
    run.discard()


def test_warnings_and_the_smoke_test_banner() -> None:
    comps = _comparisons(failed=6)  # 6 of 36 ensemble solves failed: 83 %
    summary = summarise(CVSettings.quick(), _results(), comps, 1.0, ("digits", None), PAPER)
    lines = summary["report"]
    assert lines[0].startswith("QUICK SMOKE TEST")
    assert "ensemble converged 30/36 solves" in next(x for x in lines if "decorrelated" in x)
    warnings = [x for x in lines if x.startswith("WARNING")]
    assert any("ensemble solves" in w for w in warnings)
    assert any("pairs (every retraining)" in w for w in warnings)


def test_no_test_when_no_pair_converged_everywhere() -> None:
    summary = summarise(
        CVSettings(), _results(), _comparisons(failed=12), 1.0, ("mnist", (0, 5, 7)), PAPER
    )
    assert summary["decorrelated"]["t"] is None
    assert any(
        "fewer than 2 pairs converged under every retraining" in x for x in summary["report"]
    )
