"""The Riemannian random walk stays where the data are."""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo.analysis import metric_inverse_sqrt, riemannian_random_walk
from latentgeo.data import ring
from latentgeo.metrics import ExplicitMetric


def density_metric(data: Tensor, bandwidth: float = 0.1, eps: float = 1e-3) -> ExplicitMetric:
    """A conformal metric ``I / (p(z) + ε)`` from a kernel density of the data: large off the data.

    It mimics the expected metric of a decoder whose uncertainty grows away from the data.
    """

    def tensor(z: Tensor) -> Tensor:
        d2 = (data - z[..., None, :]).pow(2).sum(-1)
        density = torch.exp(-d2 / (2 * bandwidth**2)).mean(-1)
        eye = torch.eye(2, dtype=z.dtype, device=z.device)
        return (1.0 / (density + eps))[..., None, None] * eye

    return ExplicitMetric(tensor)


def test_inverse_sqrt() -> None:
    a = torch.randn(4, 3, 3, dtype=torch.float64)
    g = a @ a.mT + 0.1 * torch.eye(3, dtype=torch.float64)
    s = metric_inverse_sqrt(g)
    torch.testing.assert_close(s @ g @ s, torch.eye(3, dtype=torch.float64).expand(4, 3, 3))


def test_shapes_and_reproducibility() -> None:
    flat = ExplicitMetric(lambda z: torch.eye(2).expand(*z.shape[:-1], 2, 2))
    gen = torch.Generator().manual_seed(1)
    a = riemannian_random_walk(flat, torch.zeros(5, 2), num_steps=7, step_size=0.1, generator=gen)
    gen = torch.Generator().manual_seed(1)
    b = riemannian_random_walk(flat, torch.zeros(5, 2), num_steps=7, step_size=0.1, generator=gen)
    assert a.shape == (5, 8, 2)
    assert torch.equal(a, b)
    assert torch.equal(a[:, 0], torch.zeros(5, 2))
    # flat metric: increments are N(0, h I)
    steps = riemannian_random_walk(flat, torch.zeros(4000, 2), num_steps=1, step_size=0.25)
    inc = steps[:, 1]
    assert abs(float(inc.var()) - 0.25) < 0.03


def test_walk_stays_on_the_ring() -> None:
    gen = torch.Generator().manual_seed(0)
    data = ring(400, noise=0.05, seed=0, dtype=torch.float64).x
    start = data[:50].clone()
    walk = riemannian_random_walk(
        density_metric(data), start, num_steps=800, step_size=0.003, generator=gen
    )
    off_ring = (walk.norm(dim=-1) - 1.0).abs()
    on_ring = (off_ring < 0.3).double().mean()
    # a Euclidean walk with the same first step length on the data
    step = float((walk[:, 1] - walk[:, 0]).norm(dim=-1).median())
    flat = ExplicitMetric(lambda z: torch.eye(2, dtype=z.dtype).expand(*z.shape[:-1], 2, 2))
    euclid = riemannian_random_walk(
        flat, start, num_steps=800, step_size=step**2 / 2, generator=gen
    )
    euclid_off = (euclid.norm(dim=-1) - 1.0).abs()
    euclid_on = (euclid_off < 0.3).double().mean()
    assert on_ring > 0.9
    assert on_ring > euclid_on
    # the walkers that stray furthest stray less far
    assert float(off_ring[:, -1].quantile(0.9)) < float(euclid_off[:, -1].quantile(0.9))
    # the Riemannian walkers do move along the ring
    angle = torch.atan2(walk[..., 1], walk[..., 0])
    assert float((angle[:, -1] - angle[:, 0]).abs().median()) > 0.05
