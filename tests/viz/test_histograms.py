"""The histograms of the papers' figures are written as PNGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from latentgeo.viz import (
    plot_cv_histograms,
    plot_relative_improvement,
    save_figure,
)


def test_histograms(tmp_path: Path, is_png: Callable[[Path], bool]) -> None:
    rng = np.random.default_rng(0)
    fig = plot_cv_histograms(rng.uniform(0.04, 0.1, 50), torch.rand(50) * 0.5)
    assert is_png(save_figure(fig, tmp_path / "cv.png"))
    fig = plot_relative_improvement(torch.rand(40) * 0.1)
    assert is_png(save_figure(fig, tmp_path / "rel.png"))
    with pytest.raises(ValueError, match="no finite"):
        plot_relative_improvement(np.array([np.nan]))
