"""One version: the package's, the distribution's metadata and pyproject.toml agree."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import latentgeo
from latentgeo._version import __version__


def test_the_version_is_the_same_everywhere() -> None:
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    project = pyproject[pyproject.index("[project]") :]
    found = re.search(r'^version = "([^"]+)"$', project, re.MULTILINE)
    assert found is not None
    assert latentgeo.__version__ == __version__ == found.group(1)
    assert importlib.metadata.version("latentgeo") == __version__
