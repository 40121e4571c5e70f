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


@pytest.mark.parametrize("page", GEN.PAGES)
def test_page_is_the_rendering_of_its_recorded_summary(page: str) -> None:
    summary = ROOT / "docs" / "papers" / "runs" / page / "summary.json"
    assert summary.is_file(), f"no recorded run for {page}: python docs/gen_papers.py record"
    text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
    assert text == GEN.render(page), f"docs/papers/{page}.md is stale: python docs/gen_papers.py"
    assert GEN.BANNER.format(page=page) in text


@pytest.mark.parametrize("page", GEN.PAGES)
def test_every_figure_of_a_page_is_committed(page: str) -> None:
    text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(\.\./(assets/papers/[^)]+)\)", text)
    assert figures, f"{page} shows no figure"
    for rel in figures:
        assert (ROOT / "docs" / rel).is_file(), rel


def test_pages_quote_the_evidence_of_their_runs() -> None:
    for page in GEN.PAGES:
        s = json.loads((ROOT / "docs" / "papers" / "runs" / page / "summary.json").read_text())
        text = (ROOT / "docs" / "papers" / f"{page}.md").read_text()
        assert f"| seed | {s['seed']} |" in text
        assert f"{s['seconds']:.0f} s" in text
        if page != "demo":
            assert s["command"] in text and s["result"] is True  # a recorded run is a result


def test_check_mode_finds_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    (docs / "papers").mkdir(parents=True)
    page = GEN.PAGES[0]
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
