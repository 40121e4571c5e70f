"""Reported lengths and energies, and the assembled result."""

from __future__ import annotations

import torch

from latentgeo.curves import CubicSpline, CurveStack, curve_length
from latentgeo.curves.reparam import arc_length_nodes
from latentgeo.metrics import ExplicitMetric, as_metric
from latentgeo.solvers import Status, connecting_geodesic
from latentgeo.solvers.energy.report import (
    REPORT_NODES,
    REPORT_PIECES,
    REPORT_PIECES_PER_SPAN,
    Finished,
    assemble_result,
    quadrature_length,
    report,
)
from latentgeo.solvers.status import code
from latentgeo.testing import PoincareDisk, StereographicSphere

SPHERE = as_metric(StereographicSphere())


def _bent_splines(n: int, bend: float = 0.3) -> CubicSpline:
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=4)
    with torch.no_grad():
        curve.inner.add_(bend * torch.randn(curve.inner.shape, generator=gen, dtype=torch.float64))
    return curve


def test_reported_length_is_the_quadrature_it_states() -> None:
    """3 Gauss–Legendre nodes on pieces of the spans, two per span and at least 8 pieces:
    recomputed here from the curve's public evaluation, on any subset of the pairs."""
    curve = _bent_splines(3)
    every = torch.arange(3)
    rep = report(SPHERE, curve, every, curve.z0, curve.z1)
    u, t, w = arc_length_nodes(
        curve, min_pieces=REPORT_PIECES, nodes=REPORT_NODES, per_span=REPORT_PIECES_PER_SPAN
    )
    assert u.shape[1] - 1 >= REPORT_PIECES and t.shape[1] == REPORT_NODES * (u.shape[1] - 1)
    assert u.shape[1] - 1 == 2 * (curve.breakpoints().shape[1] - 1)
    pos, vel = curve.points_and_velocities(t)
    torch.testing.assert_close(rep.length, (w * SPHERE.norm(pos, vel)).sum(-1), rtol=1e-14, atol=0)
    torch.testing.assert_close(rep.energy, (w * SPHERE.squared_norm(pos, vel)).sum(-1))
    torch.testing.assert_close(quadrature_length(SPHERE, curve, every), rep.length)
    sub = report(SPHERE, curve, torch.tensor([2, 0]), curve.z0[[2, 0]], curve.z1[[2, 0]])
    torch.testing.assert_close(sub.length, rep.length[[2, 0]], rtol=1e-14, atol=0)
    rows = rep.rows(torch.tensor([1]))
    assert rows.energy.shape == (1,) and rows.u.shape == (1, rep.u.shape[1])


def test_reported_length_of_a_solved_geodesic_is_its_length() -> None:
    sphere = StereographicSphere()
    curve = _bent_splines(4, bend=0.0)
    result = connecting_geodesic(sphere, curve.z0, curve.z1)
    fine = curve_length(SPHERE, result.curve, estimator="metric", num_points=4000)
    torch.testing.assert_close(result.length, fine, rtol=1e-6, atol=0)
    torch.testing.assert_close(
        result.length, sphere.distance(curve.z0, curve.z1), rtol=1e-5, atol=0
    )


def test_settled_lengths_hold_their_tolerance_on_an_elu_decoder() -> None:
    """Found by a user on a conv decoder: ELU's metric has kinks in its derivative, which
    Gauss–Legendre resolves slowly. With a fixed total of quadrature pieces (14 at both 6
    and 13 knots) the change across a refinement missed the quadrature's error (11–14 of
    64 pairs per seed settled more than refine_tol / 2 = 5e-5 off their curves' length);
    with two pieces per span alone, 7 of these 64 still did (1.4e-4 at worst; a review).
    A pair now settles only when the quadrature on twice its pieces agrees too."""
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 64), torch.nn.ELU(), torch.nn.Linear(64, 64), torch.nn.ELU(),
        torch.nn.Linear(64, 20),
    ).double().eval()  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(4.0)  # type: ignore[operator]
    gen = torch.Generator().manual_seed(3)
    z0, z1 = (2 * torch.randn(64, 2, generator=gen, dtype=torch.float64) for _ in range(2))
    result = connecting_geodesic(net, z0, z1)  # refine_tol 1e-4: lengths within 5e-5
    with torch.no_grad():
        own = curve_length(as_metric(net), result.curve, num_points=8192)
    converged = torch.tensor([s is Status.CONVERGED for s in result.status])
    assert int(converged.sum()) >= 60
    assert float(((result.length - own) / own).abs()[converged].max()) < 5e-5


def test_reported_energy_is_differentiable_in_the_end_points() -> None:
    curve = _bent_splines(2)
    every = torch.arange(2)
    z1 = curve.z1.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: report(SPHERE, curve, every, curve.z0, z).energy, (z1,), eps=1e-6, atol=1e-6
    )


def test_assembled_result_in_batch_order_with_honest_statuses() -> None:
    curve = _bent_splines(3, bend=0.05)
    first, second = torch.tensor([2, 0]), torch.tensor([1])
    groups = [Finished(first, curve.subset(first)), Finished(second, curve.subset(second))]
    status = torch.full((3,), code(Status.CONVERGED))
    iterations = torch.tensor([4, 5, 6])
    z0, z1 = curve.z0.clone(), curve.z1.clone()
    z1[1] = torch.nan  # a non-finite length can never be converged
    result = assemble_result(
        SPHERE, groups, z0, z1, status, iterations, reparametrize=True, info={"k": 1}
    )
    alone = report(SPHERE, curve, torch.arange(3), curve.z0, curve.z1).length
    torch.testing.assert_close(result.length[[0, 2]], alone[[0, 2]], rtol=1e-12, atol=0)
    assert result.status == [Status.CONVERGED, Status.NON_FINITE, Status.CONVERGED]
    assert result.converged.tolist() == [True, False, True] and result.info == {"k": 1}
    assert isinstance(result.curve, CurveStack)
    assert not any(p.requires_grad for p in result.curve.parameters())
    # reparametrised to constant speed: |γ̇|_G = length everywhere
    t = torch.linspace(0, 1, 21, dtype=torch.float64)
    pos, vel = result.curve.points_and_velocities(t)
    speed = SPHERE.norm(pos[[0, 2]], vel[[0, 2]])
    expect = result.length[[0, 2], None].expand_as(speed)
    torch.testing.assert_close(speed, expect, rtol=2e-2, atol=0)


def test_an_unconverged_pair_whose_length_the_quadrature_does_not_resolve_is_told_so() -> None:
    """A metric that oscillates faster than the quadrature's nodes (``1 + 50 sin²(400 x)``)
    and a solve stopped after one iteration: the length on twice the pieces differs, the
    larger is reported and the message says the length is uncertain; a slowly varying
    metric's pair is left alone."""
    wild = ExplicitMetric(lambda z: (1 + 50 * torch.sin(400 * z[..., :1]) ** 2)[..., None]
                          * torch.eye(2, dtype=z.dtype))  # fmt: skip
    z0 = torch.zeros(1, 2, dtype=torch.float64)
    z1 = torch.tensor([[1.0, 0.3]], dtype=torch.float64)
    res = connecting_geodesic(wild, z0, z1, max_iter=1, refine=False)
    assert res.status == [Status.MAX_ITERATIONS]
    assert res.info["unresolved_length"].tolist() == [True]
    assert "its length is not resolved by the quadrature" in res.message[0]
    calm = connecting_geodesic(PoincareDisk(), z0, 0.5 * z1, max_iter=1, refine=False)
    assert calm.info["unresolved_length"].tolist() == [False] and calm.message == [""]
