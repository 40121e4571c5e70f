"""CurveStack: groups of curves of different sizes evaluated as one batch, in order."""

from __future__ import annotations

import pytest
import torch

from latentgeo.curves import CubicSpline, CurveStack, DiscreteCurve


def _parts() -> tuple[CubicSpline, DiscreteCurve]:
    torch.manual_seed(1)
    z = torch.randn(3, 2, 2, dtype=torch.float64)
    a = CubicSpline(z[:2, 0], z[:2, 1], num_knots=4)
    b = DiscreteCurve(z[2:, 0], z[2:, 1], num_points=5)
    with torch.no_grad():
        a.inner.add_(torch.randn_like(a.inner))
        b.inner.add_(torch.randn_like(b.inner))
    return a, b


def test_each_curve_of_the_stack_is_its_part_at_its_position() -> None:
    a, b = _parts()
    stack = CurveStack([a, b], [torch.tensor([2, 0]), torch.tensor([1])])
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    pos, vel = stack.points_and_velocities(t)
    torch.testing.assert_close(pos[[2, 0]], a(t))
    torch.testing.assert_close(pos[1], b(t)[0])
    torch.testing.assert_close(vel[[2, 0]], a.velocity(t))
    torch.testing.assert_close(vel[1], b.velocity(t)[0])
    torch.testing.assert_close(stack.z0[[2, 0, 1]], torch.cat([a.z0, b.z0]))
    per_curve = torch.rand(3, 4, dtype=torch.float64)  # each curve at its own times
    torch.testing.assert_close(stack(per_curve)[1], b(per_curve[1:2])[0])


def test_breakpoints_are_padded_with_the_end() -> None:
    a, b = _parts()
    stack = CurveStack([a, b], [torch.tensor([0, 1]), torch.tensor([2])])
    bps = stack.breakpoints()
    assert bps.shape == (3, max(a.breakpoints().shape[1], b.breakpoints().shape[1]))
    torch.testing.assert_close(bps[:2], a.breakpoints())
    short = b.breakpoints()[0]
    torch.testing.assert_close(bps[2, : short.numel()], short)
    assert bool((bps[2, short.numel() :] == 1.0).all())


@pytest.mark.parametrize(
    ("index", "match"),
    [
        ([torch.tensor([0, 1])], "same length"),
        ([torch.tensor([0, 0]), torch.tensor([1])], "permutation"),
        ([torch.tensor([0, 1]), torch.tensor([3])], "permutation"),
    ],
)
def test_index_must_be_a_permutation(index: list[torch.Tensor], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CurveStack(list(_parts()), index)
