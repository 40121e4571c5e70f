"""Constant-speed reparametrisation keeps the path and its end points."""

from __future__ import annotations

import torch

from latentgeo.curves import CubicSpline, constant_speed
from latentgeo.metrics import as_metric
from latentgeo.testing import StereographicSphere


def test_constant_speed_keeps_path_and_end_points() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[-2.0, 0.5], [0.3, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[2.0, 1.0], [0.2, -0.4]], dtype=torch.float64)
    base = CubicSpline(z0, z1, num_knots=6)
    fast = constant_speed(sphere, base, min_pieces=64)
    t = torch.linspace(0, 1, 33, dtype=torch.float64)
    speed = as_metric(sphere).norm(fast(t), fast.velocity(t)).detach()
    assert float((speed / speed.mean(1, keepdim=True) - 1).abs().max()) < 1e-5
    torch.testing.assert_close(fast(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach(),
                               torch.stack([z0, z1], 1))  # fmt: skip
    # same path: the straight segment stays on its line
    pts = fast(t).detach()
    direction = (z1 - z0) / (z1 - z0).norm(dim=-1, keepdim=True)
    off = pts - z0[:, None]
    perp = off - (off * direction[:, None]).sum(-1, keepdim=True) * direction[:, None]
    assert float(perp.abs().max()) < 1e-12
