"""connecting_geodesic: method names and method objects, validation, throw."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import DiscreteCurve
from latentgeo.metrics import Metric
from latentgeo.solvers import GeodesicError, GeodesicResult, Status, connecting_geodesic
from latentgeo.testing import StereographicSphere

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
