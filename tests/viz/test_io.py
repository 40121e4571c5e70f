"""Figures are saved atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from latentgeo.viz import (
    new_figure,
    save_figure,
)


def test_failed_save_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    fig, _ = new_figure()
    with pytest.raises(ValueError):
        save_figure(fig, target.with_suffix(".nosuchformat"))
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["fig.png"]
