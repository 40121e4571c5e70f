"""The demo's settings checks and its geometry helpers (pairs across the ring, points in its
hole). The whole demo runs in tests/cli/test_demo.py."""

from __future__ import annotations

import math

import pytest
import torch

from latentgeo.experiments import DemoSettings
from latentgeo.experiments.demo import hole_and_ring_points, pairs_across_ring


def test_quick_settings_are_valid_and_smaller() -> None:
    quick, full = DemoSettings.quick(seed=3), DemoSettings()
    assert quick.seed == 3
    assert quick.num_data < full.num_data and quick.epochs < full.epochs


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("seed", -1, "DemoSettings.seed must be an integer from 0"),
        ("epochs", 0, "DemoSettings.epochs must be an integer >= 1"),
        ("curve_points", 1, "DemoSettings.curve_points must be an integer >= 2"),
        ("graph_points", 10, r"graph_points must be an integer >= 11 \(more than graph_k\)"),
        ("noise", -0.1, "DemoSettings.noise"),
        ("hidden", (), "DemoSettings.hidden"),
    ],
)
def test_bad_settings_are_refused_by_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DemoSettings(**{field: value})  # type: ignore[arg-type]


def test_pairs_across_the_ring_are_opposite_whatever_the_order_of_the_data() -> None:
    gen = torch.Generator().manual_seed(0)
    angles = 2 * math.pi * torch.rand(500, generator=gen)
    i, j = pairs_across_ring(angles, 6)
    gap = torch.remainder(angles[j] - angles[i], 2 * math.pi)
    torch.testing.assert_close(gap, torch.full((6,), math.pi), atol=0.05, rtol=0)
    want = (torch.arange(6) + 0.5) * math.pi / 6
    diff = torch.remainder(angles[i].double() - want + math.pi, 2 * math.pi) - math.pi
    assert float(diff.abs().max()) < 0.05


def test_hole_points_lie_on_circles_inside_the_ring() -> None:
    t = torch.linspace(0, 2 * math.pi, 201, dtype=torch.float64)[:-1]
    codes = torch.stack([3 + 2 * t.cos(), -1 + 2 * t.sin()], -1)
    points, radius = hole_and_ring_points(codes, num=8)
    assert points.shape == (24, 2) and radius == pytest.approx(2.0)
    r = (points - torch.tensor([3.0, -1.0], dtype=torch.float64)).norm(dim=-1)
    torch.testing.assert_close(r, torch.tensor([0.0, 0.5, 1.0]).double().repeat_interleave(8))
