"""The documentation builds without warnings (needs the ``docs`` extra)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason='needs the docs extra: pip install -e ".[docs]"',
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_example_has_a_tutorial() -> None:
    pages = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for script in (ROOT / "examples").glob("*.py"):
        assert f"examples/{script.name}" in pages, script.name


def test_architecture_examples_run() -> None:
    """The architecture page's examples run, in order, in one namespace."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 4, "docs/architecture.md lost its examples"
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), "docs/architecture.md", "exec"), namespace)
