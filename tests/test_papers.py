"""docs/papers/*.md are generated from recorded runs' summary.json by docs/gen_papers.py."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_papers", ROOT / "docs" / "gen_papers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


RECORDED = [
    p for p in GEN.PAGES if (ROOT / "docs" / "papers" / "runs" / p / "summary.json").is_file()
]


def test_the_recorded_runs_include_syrota_et_al() -> None:
    assert "ensembles-cv" in RECORDED  # the checks below are not vacuous


@pytest.mark.parametrize("page", GEN.PAGES)
def test_page_is_the_rendering_of_its_recorded_summary(page: str) -> None:
    text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
    assert text == GEN.render(page), f"docs/papers/{page}.md is stale: python docs/gen_papers.py"
    if page in RECORDED:
        assert GEN.BANNER.format(page=page) in text
    else:  # says so, and quotes no figure or result of ours
        assert GEN.PENDING_BANNER.format(page=page) in text and "No recorded run yet" in text
        assert "![" not in text and "| seed |" not in text


@pytest.mark.parametrize("page", RECORDED)
def test_every_figure_of_a_page_is_committed(page: str) -> None:
    text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(\.\./(assets/papers/[^)]+)\)", text)
    assert figures, f"{page} shows no figure"
    for rel in figures:
        assert (ROOT / "docs" / rel).is_file(), rel


@pytest.mark.parametrize("page", RECORDED)
def test_pages_quote_the_evidence_of_their_runs(page: str) -> None:
    s = json.loads((ROOT / "docs" / "papers" / "runs" / page / "summary.json").read_text())
    text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
    assert f"| seed | {s['seed']} |" in text
    assert f"{s['seconds']:.0f} s" in text
    if page != "demo":
        assert s["command"] in text and s["result"] is True  # a recorded run is a result


def test_check_mode_finds_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    (docs / "papers").mkdir(parents=True)
    page = "ensembles-cv"
    src = ROOT / "docs" / "papers" / "runs" / page
    (docs / "papers" / "runs" / page).mkdir(parents=True)
    (docs / "papers" / "runs" / page / "summary.json").write_text(
        (src / "summary.json").read_text()
    )
    monkeypatch.setattr(GEN, "DOCS", docs)
    monkeypatch.setattr(GEN, "RUNS", docs / "papers" / "runs")
    assert GEN.main(["--check"]) == 1  # the page does not exist yet
    assert GEN.main([]) == 0 and GEN.main(["--check"]) == 0
    path = docs / "papers" / f"{page}.md"
    path.write_text(path.read_text().replace("| seed |", "| seed (edited) |"))
    assert GEN.main(["--check"]) == 1


def _common(command: str) -> dict:
    """The keys every reproduction's summary has had since the recipes (``finish_run``)."""
    return {
        "result": True,
        "note": "",
        "budget": "cpu",
        "seed": 0,
        "command": command,
        "compute_seconds": 100.0,
        "seconds": 120.0,
        "environment": {"torch": "2.13.0", "threads": 1},
        "machine": {"start": {"cpus": 2, "load_average_1min": 1.0}, "end": {}},
        "report": ["a line"],
    }


def _relative_improvement(converged: int, *, new_keys: bool) -> dict:
    """A relative-improvement summary as main wrote it (``new_keys``: with the added ones)."""
    s = {
        **_common("latentgeo reproduce relative-improvement --data mnist --budget cpu"),
        "experiment": "relative-improvement (Michelis et al. 2021, Algorithm 1)",
        "mean": 0.04,
        "standard_error": 0.002,
        "pairs_used": converged,
        "include_all": False,
        "converged": converged,
        "num_pairs": 100,
        "min": 0.01,
        "max": 0.08,
        "share_above_zero": 1.0,
        "mean_straight_line_length": 10.0,
        "mean_geodesic_length": 9.6,
        "training": {"final_val_loss": 5.0, "epochs": 30, "stopped_early": True, "fit_images": 9},
        "paper": {"mean": 0.0358, "standard_error": 0.0012, "pairs": 100},
        "settings": {"latent_dim": 16, "step": 1.0},
        "files": ["pairs.csv", "relative_improvement.png", "summary.json"],
    }
    if new_keys:
        s["status_counts"] = {"converged": converged, "max_iter": 100 - converged}
        s["warning"] = None
    return s


def _kmeans(converged: int, *, new_keys: bool) -> dict:
    triple = {
        "geodesic": {"mean": 0.9, "std": 0.01, "values": [0.9]},
        "euclidean": {"mean": 0.8, "std": 0.01, "values": [0.8]},
        "converged": converged,
        "num_pairs": 100,
        "training": {"final_val_loss": 50.0},
        "compute_seconds": 10.0,
    }
    if new_keys:
        triple.update(points_used=[55], points=60, status_counts={"converged": converged})
    s = {
        **_common("latentgeo reproduce kmeans --data mnist --budget cpu"),
        "experiment": "kmeans (Arvanitidis et al. 2018)",
        "f_measure": {name: dict(triple) for name in ("012", "347", "569")},
        "converged": 3 * converged,
        "num_pairs": 300,
        "paper": {
            name: {"geodesic": (90.0, 1.0), "euclidean": (78.0, 1.0)}
            for name in ("012", "347", "569")
        },
        "settings": {"subsets": 1, "points": 60},
        "files": ["f_measure.csv", "latent_012.png", "summary.json"],
    }
    if new_keys:
        s.update(include_all=False, warning=None)
    return s


@pytest.mark.parametrize("new_keys", [False, True])
@pytest.mark.parametrize(
    ("page", "make"), [("relative-improvement", _relative_improvement), ("kmeans", _kmeans)]
)
def test_summaries_of_main_and_of_now_render_with_counts_and_warnings(
    page: str, make: object, new_keys: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GEN, "RUNS", tmp_path)
    (tmp_path / page).mkdir()
    for converged, low in ((95, False), (30, True)):
        summary = make(converged, new_keys=new_keys)  # type: ignore[operator]
        (tmp_path / page / "summary.json").write_text(json.dumps(summary))
        text = GEN.render(page)
        assert GEN.BANNER.format(page=page) in text
        figure = text.index("![")  # the converged count is printed under the figure
        assert f"converged {converged}/100" in text[figure:].split("\n\n")[1]
        assert ("WARNING: only" in text) == low and ("**< 90 %**" in text) == low
        if page == "kmeans":
            assert ("| 55/60 |" in text) == new_keys and ("| all |" in text) != new_keys


def test_demo_page_says_which_pairs_its_means_are_over() -> None:
    text = (ROOT / "docs" / "papers" / "demo.md").read_text()
    s = json.loads((ROOT / "docs" / "papers" / "runs" / "demo" / "summary.json").read_text())
    for name, m in s["models"].items():
        assert f"*{name}: converged {m['converged']}/{m['num_pairs']} geodesics*" in text
    assert "Means over rbf:" in text
