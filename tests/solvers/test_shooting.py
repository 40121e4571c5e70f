"""``connecting_geodesic(..., method="shooting")``: converged pairs, one length per curve."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import curve_energy, curve_length
from latentgeo.solvers import HermiteCurve, connecting_geodesic
from latentgeo.testing import PoincareDisk, StereographicSphere


def test_shooting_method_on_the_sphere() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [0.7, 0.3]], dtype=torch.float64)
    res = connecting_geodesic(sphere, z0, z1, method="shooting")
    assert res.method == "shooting" and res.all_converged
    assert isinstance(res.curve, HermiteCurve)
    exact = sphere.distance(z0, z1)
    torch.testing.assert_close(res.length, exact, rtol=1e-6, atol=0)
    torch.testing.assert_close(res.info["log_length"], exact, rtol=1e-6, atol=0)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    pts = res.curve(t)
    torch.testing.assert_close(pts[:, 0], z0)
    torch.testing.assert_close(pts[:, -1], z1, rtol=0, atol=1e-6)
    # constant speed: energy = length²
    torch.testing.assert_close(res.energy, res.length**2, rtol=1e-6, atol=0)


def test_one_length_per_curve() -> None:
    disk = PoincareDisk()
    z0 = torch.tensor([[0.1, 0.2], [-0.4, 0.1]], dtype=torch.float64)
    z1 = torch.tensor([[-0.3, 0.4], [0.3, -0.2]], dtype=torch.float64)
    res = connecting_geodesic(disk, z0, z1, method="shooting", num_points=9)
    # the reported length is curve_length's default quadrature of the returned curve
    torch.testing.assert_close(res.length, curve_length(disk, res.curve), rtol=1e-12, atol=0)
    torch.testing.assert_close(res.energy, curve_energy(disk, res.curve), rtol=1e-12, atol=0)
    torch.testing.assert_close(res.length, disk.distance(z0, z1), rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_points": 1}, "num_points must be an int >= 2"),
        ({"rtol": 0.0}, "rtol must be"),
        ({"max_iter": 0}, "max_iter must be"),
        ({"steps": 16}, "unexpected keyword"),
    ],
)
def test_bad_options(options: dict[str, object], match: str) -> None:
    z = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        connecting_geodesic(PoincareDisk(), z, z + 0.1, method="shooting", **options)
