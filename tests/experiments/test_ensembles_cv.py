"""Syrota et al.'s experiment: the recipe's settings, pairs, honest statuses, resuming."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from latentgeo.experiments import CVSettings, RunExistsError, run_ensembles_cv
from latentgeo.experiments.ensembles_cv import PAPER_RECIPE, pick_test_pairs
from latentgeo.solvers import Status


def test_the_paper_budget_is_the_papers_recipe() -> None:
    s = CVSettings.for_budget("paper")
    assert (s.repeats, s.pairs, s.members, s.latent_dim) == (30, 100, 10, 2)
    r = s.recipe
    assert r.hidden == (64, 128, 256, 512) and r.activation == "relu"
    assert (r.lr, r.batch_size, r.beta, r.grad_clip) == (5e-5, 130, 0.05, 0.01)
    assert r.obs_std == pytest.approx(2**-0.5)  # ‖x − μ‖² + 0.05 KL up to a constant
    assert (r.centres, r.zeta, r.bandwidth, r.rbf_codes) == (10, 0.1, "mean_sq_dist", "sample")
    assert (s.energy_points, s.length_points) == (256, 4096)
    cpu = CVSettings.for_budget("cpu", pairs=40)
    assert cpu.pairs == 40 and cpu.recipe.hidden == PAPER_RECIPE.hidden
    assert cpu.recipe.patience is not None  # early-stopped, on the fixed validation split
    assert not cpu.include_all and CVSettings.quick().include_all


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(budget="huge"), "budget"),
        (dict(data="cifar"), "data"),
        (dict(endpoints="median"), "endpoints"),
        (dict(repeats=1), "repeats"),
    ],
)
def test_settings_refuse_bad_values(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CVSettings(**kw)


def test_test_pairs_are_fixed_half_random_half_cross_class() -> None:
    labels = torch.arange(60) % 3
    a, b = pick_test_pairs(labels, 10)
    a2, b2 = pick_test_pairs(labels, 10)
    assert a.tolist() == a2.tolist() and b.tolist() == b2.tolist()  # fixed across retrainings
    assert bool((a != b).all()) and int(a.max()) < 60 and int(b.max()) < 60
    assert bool((labels[a[5:]] != labels[b[5:]]).all())  # the cross-class half
    assert pick_test_pairs(labels, 10, seed=1)[0].tolist() != a.tolist()
    with pytest.raises(ValueError, match="cross-class"):
        pick_test_pairs(torch.zeros(10, dtype=torch.long), 4)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cv") / "run"
    s = CVSettings.quick(data="digits", repeats=2, pairs=4)
    return out, run_ensembles_cv(out, s, progress=False)


def test_quick_runs_say_they_are_not_a_result(quick_run: tuple[Path, dict]) -> None:
    out, summary = quick_run
    assert summary["result"] is False and "NOT A RESULT" in summary["note"]
    assert summary["report"][0] == summary["note"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["settings"]["budget"] == "quick" and saved["settings"]["recipe"]["hidden"]


def test_converged_counts_are_the_solvers_statuses(quick_run: tuple[Path, dict]) -> None:
    out, summary = quick_run
    with open(out / "distances.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * 4  # (sampled, mean metric, rbf) x retrainings x pairs
    assert {r["status"] for r in rows} <= {st.value for st in Status}
    for key, estimator in (("decorrelated", "sampled"), ("mean_metric", "mean_metric")):
        ok = sum(r["status"] == "converged" for r in rows if r["estimator"] == estimator)
        assert summary[key]["converged_ensemble"] == ok
    ok_rbf = sum(r["status"] == "converged" for r in rows if r["model"] == "rbf")
    assert summary["decorrelated"]["converged_rbf"] == ok_rbf
    for key in ("decorrelated", "mean_metric"):  # statuses and pairs converged everywhere
        c = summary[key]
        assert c["num_pairs"] == 4 and 0 <= c["converged_pairs"] <= 4
        assert sum(c["status_counts"]["rbf"].values()) == 2 * 4
        assert c["status_counts"]["rbf"].get("converged", 0) == ok_rbf
        low = c["converged_pairs"] < 0.9 * 4 or min(c["converged_ensemble"], ok_rbf) < 0.9 * 8
        assert (c["warning"] is not None) == low
        assert any(line.startswith("WARNING:") for line in summary["report"]) == (
            summary["decorrelated"]["warning"] is not None
        )
    parts = out.with_name("run.parts")
    for r in json.loads((parts / "tables" / "ensemble_r00.json").read_text())["sampled"]["status"]:
        assert r != Status.NOT_SOLVED.value  # a solver ran on every pair


def test_a_rerun_picks_up_the_files_of_an_unfinished_run(quick_run: tuple[Path, dict]) -> None:
    out, summary = quick_run
    shutil.rmtree(out)  # as if the run had stopped before its end (never committed)
    parts = out.with_name("run.parts")  # what it had done is kept beside it
    files = sorted((parts / "models").glob("*")) + sorted((parts / "tables").glob("*"))
    assert {p.parent.name for p in files} == {"models", "tables"}
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = run_ensembles_cv(
        out, CVSettings.quick(data="digits", repeats=2, pairs=4), progress=False
    )
    assert {p: p.stat().st_mtime_ns for p in files} == stamps  # nothing recomputed
    assert again["decorrelated"] == summary["decorrelated"]
    shutil.rmtree(out)
    with pytest.raises(RunExistsError, match="other settings"):
        run_ensembles_cv(out, CVSettings.quick(data="digits", repeats=3, pairs=4), progress=False)
