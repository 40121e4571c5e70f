"""The "graph" method: around a hole the straight-line start cannot leave; unreachable pairs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from latentgeo.metrics import as_metric
from latentgeo.solvers import Status, connecting_geodesic
from latentgeo.solvers.graph import knn_graph, segment_lengths
from latentgeo.testing import StereographicSphere

DT = torch.float64


class RingDecoder(nn.Module):
    """Gaussian decoder: mean ``z``; precision ``β = exp(−4 (|z|² − 1)²) + 10⁻³`` peaks on the
    unit circle, so the uncertainty ``σ = β^{-1/2}`` is 1 on the ring and grows away from
    it, to about 7 in the middle (the hole). Radially symmetric, so the straight line
    through the centre is an exact critical point of the energy: gradient methods started
    on it stay on it."""

    def forward(self, z: torch.Tensor) -> Normal:
        sq = (z * z).sum(-1, keepdim=True)
        beta = torch.exp(-4.0 * (sq - 1.0) ** 2) + 1e-3
        return Normal(z, beta.rsqrt().expand_as(z))


def ring_codes(n: int = 300) -> torch.Tensor:
    theta = torch.rand(n, dtype=DT) * 2 * math.pi
    r = 1.0 + 0.05 * torch.randn(n, dtype=DT)
    return torch.stack([r * theta.cos(), r * theta.sin()], -1)


def test_graph_goes_around_the_hole_where_the_straight_start_gets_stuck() -> None:
    decoder = RingDecoder()
    z0 = torch.tensor([[-1.0, 0.0], [0.0, -1.0]], dtype=DT)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=DT)
    t = torch.linspace(0, 1, 101, dtype=DT)
    straight = connecting_geodesic(decoder, z0, z1, method="spline")
    assert (straight.curve(t).norm(dim=-1).amin(-1) < 0.1).all()  # through the hole
    graph = connecting_geodesic(decoder, z0, z1, method="graph", points=ring_codes())
    assert graph.method == "graph" and graph.all_converged, graph.status
    assert (graph.curve(t).norm(dim=-1).amin(-1) > 0.7).all()  # around it, along the codes
    assert (graph.length <= graph.info["graph_length"] + 1e-9).all()  # refinement shortens
    line = segment_lengths(as_metric(decoder), z0, z1)
    assert (graph.length < 3.5).all() and (line > 15.0).all()
    assert (straight.length > 4.0 * graph.length).all()


def test_unreachable_pairs_get_a_status() -> None:
    a = 0.1 * torch.randn(20, 2, dtype=DT)
    b = 0.1 * torch.randn(20, 2, dtype=DT) + 10.0
    z0 = torch.tensor([[0.0, 0.0], [0.05, 0.0]], dtype=DT)
    z1 = torch.tensor([[10.0, 10.0], [0.0, 0.1]], dtype=DT)
    res = connecting_geodesic(lambda z: z, z0, z1, method="graph", points=torch.cat([a, b]), k=4)
    assert res.converged.tolist() == [False, True]
    assert res.status == [Status.UNREACHABLE, Status.CONVERGED]
    assert "connected components" in res.message[0] and res.message[1] == ""
    assert res.info["components"] == 2
    assert torch.isinf(res.info["graph_length"][0]) and torch.isfinite(res.length).all()
    torch.testing.assert_close(res.length[1], (z1[1] - z0[1]).norm(), rtol=1e-6, atol=0)


def test_the_energy_solvers_message_survives_the_graph_verdicts() -> None:
    """A reachable pair keeps the energy solver's message: here the sphere pair that
    reaches ``max_knots=64`` before its energy settles (its length 1.8e-4 off)."""
    sphere = StereographicSphere()
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(7, 2, generator=gen, dtype=DT)
    cloud = torch.cat([z, torch.randn(200, 2, generator=gen, dtype=DT)])
    res = connecting_geodesic(
        sphere, z[:1], z[1:2], method="graph", points=cloud, k=8, max_iter=200, max_knots=64
    )
    assert res.status == [Status.MAX_ITERATIONS] and res.message[0].startswith(
        "max_knots=64 reached"
    )


def test_bad_options() -> None:
    z0, z1 = torch.zeros(1, 2, dtype=DT), torch.ones(1, 2, dtype=DT)
    with pytest.raises(ValueError, match="points="):
        connecting_geodesic(lambda z: z, z0, z1, method="graph")
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        connecting_geodesic(lambda z: z, z0, z1, method="graph", points=torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="last dimension"):
        connecting_geodesic(lambda z: z, z0, z1, method="graph", points=torch.zeros(3, 3, dtype=DT))
    with pytest.raises(ValueError, match="dtype"):
        connecting_geodesic(lambda z: z, z0, z1, method="graph", points=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="k must"):
        connecting_geodesic(lambda z: z, z0, z1, method="graph", points=z0, k=0)


def test_knn_graph_and_segment_lengths() -> None:
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=DT)
    i, j = knn_graph(pts, k=1)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (1, 2)]
    lengths = segment_lengths(as_metric(lambda z: 2 * z), pts[i], pts[j])
    torch.testing.assert_close(lengths, 2 * (pts[j] - pts[i]).norm(dim=-1))


def test_a_pairs_path_does_not_depend_on_the_other_pairs() -> None:
    """End points join the points' graph only (out of z0, into z1): in a sparse cloud 22 of
    24 graph lengths changed between solving the pairs together and one at a time, and a
    start repeated in a batch filled its own neighbourhood with copies of itself."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 10)).double().eval()
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(60, 2, generator=gen, dtype=DT)
    z0, z1 = torch.randn(2, 24, 2, generator=gen, dtype=DT)
    z0[12:] = z0[12]  # one start, twelve times
    options = {"method": "graph", "points": points, "k": 4, "refine": False}
    together = connecting_geodesic(net, z0, z1, **options)
    for p in range(24):
        alone = connecting_geodesic(net, z0[p : p + 1], z1[p : p + 1], **options)
        assert alone.info["graph_length"][0] == together.info["graph_length"][p]
        n = points.shape[0]  # node indices: the pair's own end points are 60 and 61 alone
        path = together.info["paths"][p]
        assert path[0] == n + p and path[-1] == n + 24 + p  # no other pair's end point
        assert alone.info["paths"][0] == [n, *path[1:-1], n + 1]
