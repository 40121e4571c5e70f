"""connecting_geodesic: method names and method objects, validation, throw."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import DiscreteCurve
from latentgeo.metrics import Metric
from latentgeo.solvers import GeodesicError, GeodesicResult, Status, connecting_geodesic
from latentgeo.testing import PoincareDisk, StereographicSphere

SPHERE = StereographicSphere()


class StraightLine:
    """A method object of our own: the straight line, reported as not solved."""

    def __init__(self) -> None:
        self.seen: list[tuple[Metric, torch.Tensor]] = []

    def solve(self, metric: Metric, z0: torch.Tensor, z1: torch.Tensor) -> GeodesicResult:
        self.seen.append((metric, z0))
        b = z0.shape[0]
        return GeodesicResult(
            curve=DiscreteCurve(z0, z1, num_points=2),
            length=(z1 - z0).norm(dim=-1),
            energy=((z1 - z0) ** 2).sum(-1),
            converged=torch.zeros(b, dtype=torch.bool),
            iterations=0,
            status=[Status.NOT_SOLVED] * b,
            method="line",
        )


def test_any_object_with_solve_is_a_method() -> None:
    z0, z1 = torch.zeros(2, 2), torch.ones(2, 2)
    method = StraightLine()
    result = connecting_geodesic(SPHERE, z0, z1, method=method)
    assert result.method == "line" and result.status == ["not_solved"] * 2
    metric, seen_z0 = method.seen[0]
    assert isinstance(metric, Metric)  # the decoder was turned into its metric
    assert torch.equal(seen_z0, z0)
    with pytest.raises(GeodesicError, match="pair 0: not_solved"):
        connecting_geodesic(SPHERE, z0, z1, method=method, throw=True)


def test_method_objects_take_no_keyword_options() -> None:
    z0, z1 = torch.zeros(2, 2), torch.ones(2, 2)
    with pytest.raises(TypeError, match=r"options \['max_iter'\] cannot go with a method object"):
        connecting_geodesic(SPHERE, z0, z1, method=StraightLine(), max_iter=3)


@pytest.mark.parametrize(
    ("method", "error", "match"),
    [
        ("nope", ValueError, "method must be one of"),
        (3, TypeError, "or an object with a solve.* got int"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_bad_methods(method: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        connecting_geodesic(SPHERE, torch.zeros(1, 2), torch.ones(1, 2), method=method)  # type: ignore[arg-type]  # fmt: skip


def test_end_points_are_checked_before_the_method_runs() -> None:
    method = StraightLine()
    with pytest.raises(ValueError, match="z0"):
        connecting_geodesic(SPHERE, torch.full((1, 2), torch.nan), torch.ones(1, 2), method=method)
    assert method.seen == []


# What "converged" promises for the default method, against closed forms. The spline
# solver reports a pair converged when its optimiser met ``tol`` and its length settled:
# the last full refinement of the knots changed it by less than ``refine_tol / 2 = 5e-5``
# relative. The change estimates the coarser level's error, the finer level's is smaller
# (float32 rounds lengths to ~1e-7: the same bound).
LENGTH_RTOL = 0.5e-4


def _random_pairs(n: int, dtype: torch.dtype, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = (torch.randn(n, 2, generator=gen, dtype=torch.float64) for _ in range(2))
    return z0.to(dtype), z1.to(dtype)


def _midpoint_angle(result: GeodesicResult, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """Angle on the sphere between each curve's midpoint and the shorter arc's midpoint
    ``(x0 + x1) / |x0 + x1|``: ~0 on the shorter arc, ~π on the longer one."""
    mid = SPHERE(result.curve(torch.tensor([0.5], dtype=z0.dtype))[:, 0].double())
    short = SPHERE(z0.double()) + SPHERE(z1.double())
    return torch.arccos((mid * short / short.norm(dim=-1, keepdim=True)).sum(-1).clamp(-1, 1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converged_pairs_meet_the_stated_tolerance_on_the_sphere(dtype: torch.dtype) -> None:
    """256 random pairs at the defaults. Every converged pair is the shorter great-circle
    arc to ``LENGTH_RTOL``; the others reached ``max_knots`` before their length settled
    and say so (status ``max_iter`` and a message). These pairs used to be reported
    converged, off by up to 7.6e-3 (the last refinement before ``max_knots`` inserts only
    a few knots, and its small energy change was taken for settling)."""
    z0, z1 = _random_pairs(256, dtype)
    result = connecting_geodesic(SPHERE, z0, z1)
    ok = result.converged
    assert int(ok.sum()) >= 240  # most pairs settle well before 256 knots
    error = (result.length.double() / SPHERE.distance(z0.double(), z1.double()) - 1).abs()
    assert float(error[ok].max()) <= LENGTH_RTOL
    assert bool((_midpoint_angle(result, z0, z1)[ok] < 0.01).all())  # the shorter arcs
    for i in (~ok).nonzero()[:, 0].tolist():
        assert result.status[i] == Status.MAX_ITERATIONS
        assert result.message[i].startswith("max_knots=256 reached before the length settled")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converged_pairs_meet_the_stated_tolerance_on_the_poincare_disk(dtype: torch.dtype) -> None:
    """The disk's geodesics are unique: every pair converges, to ``LENGTH_RTOL`` of the
    closed-form distance (observed: 1.3e-6), end points anywhere in the disk of radius 0.9."""
    gen = torch.Generator().manual_seed(1)
    radius = 0.9 * torch.rand(2, 256, 1, generator=gen, dtype=torch.float64).sqrt()
    angle = 2 * torch.pi * torch.rand(2, 256, 1, generator=gen, dtype=torch.float64)
    z0, z1 = (radius * torch.cat([angle.cos(), angle.sin()], -1)).to(dtype)
    disk = PoincareDisk()
    result = connecting_geodesic(disk, z0, z1)
    assert result.all_converged
    expect = disk.distance(z0.double(), z1.double())
    torch.testing.assert_close(result.length.double(), expect, rtol=LENGTH_RTOL, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_converged_means_a_geodesic_not_always_the_shortest(dtype: torch.dtype) -> None:
    """End points on a line through the origin with ``|z0| |z1| > 1``: the straight start
    is the longer arc of their great circle (through the south pole; the shorter passes
    the north pole, at infinity in the chart). It is a geodesic, a stationary point of
    the energy, and the solver reports it converged, with the length ``2π − d`` of that
    arc to the stated tolerance; it never stood for the distance ``d``."""
    z0 = torch.tensor([[2.0, 0.0], [0.5, 0.0], [0.0, 1.5]], dtype=dtype)
    z1 = torch.tensor([[-2.0, 0.0], [-2.5, 0.0], [0.0, -3.0]], dtype=dtype)
    result = connecting_geodesic(SPHERE, z0, z1)
    assert result.all_converged
    d = SPHERE.distance(z0.double(), z1.double())
    assert bool((_midpoint_angle(result, z0, z1) > 3.1).all())  # the longer arcs
    torch.testing.assert_close(result.length.double(), 2 * torch.pi - d, rtol=LENGTH_RTOL, atol=0)


@pytest.mark.parametrize("method", ["spline", "graph", "bvp"])
def test_points_of_another_dtype_than_the_decoder_fail_at_the_entry(method: str) -> None:
    # it was torch's "mat1 and mat2 must have the same dtype" from inside a traced layer
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    message = r"dtype torch.float64 but the decoder's parameters are torch.float32; convert"
    for decoder in (net, [net, net]):
        with pytest.raises(TypeError, match=message):
            connecting_geodesic(decoder, z0, z1, method=method)


def test_a_decoder_that_casts_its_input_itself_is_not_refused() -> None:
    class Cast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh())

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.net(z.to(torch.float32)).to(z.dtype)

    z0, z1 = torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    result = connecting_geodesic(Cast().eval(), z0, z1)
    assert result.all_converged and result.length.dtype == torch.float64


def test_an_option_a_method_does_not_take_is_refused_with_its_options() -> None:
    """An audit: ``method="shooting", num_knots=3`` raised "_shooting() got an unexpected
    keyword argument" (a private name, no list); now the method and its options are named."""
    z0, z1 = torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), 0.3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"method='shooting' does not take the option\(s\) "
                       r"\['num_knots'\]; its options are \['init', 'rtol'"):  # fmt: skip
        connecting_geodesic(PoincareDisk(), z0, z1, method="shooting", num_knots=3)
