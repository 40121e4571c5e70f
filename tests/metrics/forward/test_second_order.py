"""TaylorPropagator: K first-order tangents and ∂²f[v, v] in one pass, against nested jvp."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.metrics.forward import TaylorPropagator, taylor_propagator

from ..reference import GaussianMLP


class Mixed(nn.Module):
    """Rules of every kind and two calls without one (generic second order)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 6), nn.ELU())
        self.b = nn.Sequential(nn.Linear(2, 6), nn.SiLU(), nn.Linear(6, 6), nn.Sigmoid())
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 6))

    def forward(self, z: Tensor) -> Tensor:
        a, b = self.a(z), self.b(z)
        c = a * b + torch.sin(a) - b / 3.0 + a.exp() * self.scale + torch.atan2(a, 1.0 + b * b)
        c = c / (1.0 + (b * b).sum(-1, keepdim=True)) + a**2 - c.mean(-1, keepdim=True)
        d = torch.cat([c, torch.cumsum(b, -1), self.scale.expand_as(b)], dim=-1)
        return F.layer_norm(d.reshape(z.shape[0], 3, 6).tanh(), (6,))


@pytest.mark.parametrize("kind", ["mixed", "gaussian"])
def test_second_order_equals_nested_forward_mode(kind: str) -> None:
    torch.manual_seed(3)
    if kind == "mixed":
        module: nn.Module = Mixed().double()
    else:
        gaussian = GaussianMLP(2, 5).double()
        module = nn.Sequential(gaussian.body, gaussian.mean)
    prop = taylor_propagator(module)
    assert isinstance(prop, TaylorPropagator)
    z, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    tangents = torch.randn(3, 5, 2, dtype=torch.float64)
    out, cols, second = prop(z, tangents, v)

    def f(x: Tensor) -> Tensor:
        return module(x).reshape(x.shape[0], -1)

    torch.testing.assert_close(out, f(z))
    reference = torch.stack([jvp(f, (z,), (t,))[1] for t in tangents])
    torch.testing.assert_close(cols, reference, rtol=1e-12, atol=1e-12)
    if kind == "mixed":  # torch.func's second order of layer_norm is wrong: differences instead
        h = 1e-5  # central differences of the exact first order along v
        along_v = lambda x: jvp(f, (x,), (v,))[1]  # noqa: E731
        nested = (along_v(z + h * v) - along_v(z - h * v)) / (2 * h)
        torch.testing.assert_close(second, nested, rtol=1e-6, atol=1e-6)
    else:
        nested = jvp(lambda x: jvp(f, (x,), (v,))[1], (z,), (v,))[1]
        torch.testing.assert_close(second, nested, rtol=1e-12, atol=1e-12)


def test_final_linear_and_parts_in_second_order() -> None:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 9)).double()
    prop = TaylorPropagator(net)
    z, v = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    basis = torch.eye(2, dtype=torch.float64)[:, None].expand(2, 3, 2)
    linear, first, second = prop.push_to_final_linear(z, basis, v)
    _, cols, full = prop(z, basis, v)
    assert linear is net[2]
    torch.testing.assert_close(first @ linear.weight.T, cols)
    torch.testing.assert_close(second @ linear.weight.T, full)
