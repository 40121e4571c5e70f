"""Decoded interpolation rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentgeo.viz import (
    plot_interpolations,
    save_figure,
)


def test_interpolation_rows(tmp_path: Path) -> None:
    images = plot_interpolations([torch.rand(6, 784), torch.rand(6, 784)],
                                 labels=["straight line", "geodesic"], title="0 to 1")  # fmt: skip
    assert len(images.axes) == 12
    assert save_figure(images, tmp_path / "rows.png").stat().st_size > 0
    small = plot_interpolations(torch.rand(1, 4, 8, 8))
    assert len(small.axes) == 4
    flat = plot_interpolations(torch.rand(2, 5, 2), labels=["a", "b"])
    assert len(flat.axes) == 1 and len(flat.axes[0].lines) == 4
    space = plot_interpolations(torch.rand(2, 5, 3))
    assert space.axes[0].name == "3d"
    with pytest.raises(ValueError, match="neither images"):
        plot_interpolations(torch.rand(2, 5, 7))
    with pytest.raises(ValueError, match="one entry per row"):
        plot_interpolations(torch.rand(2, 5, 2), labels=["a"])
    with pytest.raises(ValueError, match="does not hold"):
        plot_interpolations(torch.rand(2, 5, 10), image_shape=(3, 3))
