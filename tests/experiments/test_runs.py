"""A run's folder, resumable parts, clock and summary (``latentgeo.experiments.runs``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from latentgeo.experiments import RunExistsError
from latentgeo.experiments.runs import NOT_A_RESULT, start_run, summary_head


@dataclass(frozen=True)
class _Settings:
    size: int = 1


def test_a_started_run_writes_its_summary_with_machine_settings_and_files(tmp_path: Path) -> None:
    started = start_run(tmp_path / "run", _Settings(3), force=False)
    assert started.store.path == tmp_path / "run.parts"
    assert started.load.keys() == {"cpus", "load_average_1min"}
    started.run.write_csv("t.csv", ["a"], [[1]])
    summary = started.finish({"done": True}, _Settings(3))
    assert summary["machine"]["start"] == started.load
    assert summary["machine"]["end"].keys() == {"cpus", "load_average_1min"}
    assert summary["settings"] == {"size": 3} and summary["seconds"] >= 0
    assert summary["files"][-2:] == ["t.csv", "summary.json"]
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["done"] is True and on_disk["settings"] == {"size": 3}


def test_a_finished_run_is_refused_unless_forced(tmp_path: Path) -> None:
    start_run(tmp_path / "run", _Settings(), force=False).finish({}, _Settings())
    with pytest.raises(RunExistsError):
        start_run(tmp_path / "run", _Settings(), force=False)
    assert start_run(tmp_path / "run", _Settings(), force=True).store.resuming is False


@pytest.mark.parametrize(
    ("budget", "result", "note"), [("quick", False, NOT_A_RESULT), ("cpu", True, "")]
)
def test_summary_head(budget: str, result: bool, note: str) -> None:
    head = summary_head("kmeans (X 2018)", SimpleNamespace(budget=budget, seed=4))
    assert head == {
        "experiment": "kmeans (X 2018)",
        "result": result,
        "note": note,
        "budget": budget,
        "seed": 4,
    }
    assert list(head) == ["experiment", "result", "note", "budget", "seed"]
