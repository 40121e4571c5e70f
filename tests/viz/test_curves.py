"""Curves in a 2-d latent space: what is drawn, and shapes refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgeo.viz import new_figure, plot_curves, plot_solved_curves, plot_straight_lines


def test_curves_draw_one_line_per_curve_and_their_end_points() -> None:
    _, (ax,) = new_figure()
    t = torch.linspace(0, 1, 7)
    curves = torch.stack([t, t**2], -1).expand(3, -1, -1) + torch.arange(3.0)[:, None, None]
    lines = plot_curves(ax, curves, label="spline")
    segments = lines.get_segments()
    assert len(segments) == 3
    np.testing.assert_allclose(segments[2], curves[2].double().numpy())
    ends = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(ends, np.concatenate([curves[:, 0], curves[:, -1]]))
    one = plot_curves(ax, curves[0], endpoints=False)  # (T, 2): one curve
    assert len(one.get_segments()) == 1


def test_solved_curves_are_solid_or_dashed_and_counted() -> None:
    _, (ax,) = new_figure()
    curves = np.random.default_rng(0).normal(size=(4, 5, 2))
    plot_solved_curves(ax, curves, np.array([True, False, True, True]), what="spline")
    lines = [c for c in ax.collections if hasattr(c, "get_segments")]
    solid, dashed = lines
    assert len(solid.get_segments()) == 3 and len(dashed.get_segments()) == 1
    np.testing.assert_allclose(dashed.get_segments()[0], curves[1])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["spline: 3/4 converged", "not converged (dashed): 1"]


def test_all_converged_curves_have_no_dashed_entry() -> None:
    _, (ax,) = new_figure()
    plot_solved_curves(ax, np.zeros((2, 3, 2)), torch.tensor([True, True]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["geodesic: 2/2 converged"]


def test_straight_lines_join_the_end_points() -> None:
    _, (ax,) = new_figure()
    z0, z1 = torch.zeros(2, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    lines = plot_straight_lines(ax, z0, z1)
    np.testing.assert_allclose(np.stack(lines.get_segments()), torch.stack([z0, z1], 1).numpy())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ax: plot_curves(ax, np.zeros((2, 5, 3))), r"curves must have shape \(B, T, 2\)"),
        (
            lambda ax: plot_solved_curves(ax, np.zeros((2, 5, 2)), np.ones(3, dtype=bool)),
            r"converged \(B,\)",
        ),
        (
            lambda ax: plot_straight_lines(ax, np.zeros((2, 2)), np.zeros((3, 2))),
            r"z0 and z1 must both have shape \(B, 2\)",
        ),
    ],
)
def test_shapes_are_refused_by_name(call: object, match: str) -> None:
    _, (ax,) = new_figure()
    with pytest.raises(ValueError, match=match):
        call(ax)  # type: ignore[operator]
