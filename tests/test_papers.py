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
