"""DiscreteCurve: a polyline with free inner vertices."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import DiscreteCurve


def test_discrete_curve_is_piecewise_linear() -> None:
    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    curve = DiscreteCurve(z0, z1, num_points=5)
    with torch.no_grad():
        curve.inner[:, 1] += torch.tensor([1.0, -1.0], dtype=torch.float64)
    verts = curve.vertices().detach()
    t = torch.tensor([0.0, 0.25, 0.375, 0.5, 1.0], dtype=torch.float64)
    out = curve(t).detach()
    torch.testing.assert_close(out[:, 1], verts[:, 1])
    torch.testing.assert_close(out[:, 2], 0.5 * (verts[:, 1] + verts[:, 2]))
    torch.testing.assert_close(out[:, -1], z1)
    vel = curve.velocity(torch.tensor([0.3], dtype=torch.float64)).detach()
    torch.testing.assert_close(vel[:, 0], 4 * (verts[:, 2] - verts[:, 1]))


def test_discrete_bad_num_points() -> None:
    with pytest.raises(ValueError, match="num_points"):
        DiscreteCurve(torch.zeros(1, 2), torch.ones(1, 2), num_points=1)
