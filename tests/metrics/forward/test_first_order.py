"""TangentPropagator (first-order traced forward mode) against torch.func.jvp on many layers."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric
from latentgeo.metrics.forward import TangentPropagator, try_tangent_propagator
from latentgeo.testing import tolerance

ACTIVATIONS = [
    nn.Tanh(),
    nn.Sigmoid(),
    nn.ReLU(),
    nn.LeakyReLU(0.1),
    nn.ELU(0.7),
    nn.Softplus(beta=2.0, threshold=5.0),
    nn.SiLU(),
    nn.GELU(),
    nn.GELU(approximate="tanh"),
    nn.Identity(),
    nn.Dropout(0.5),  # eval mode: identity
]


class Custom(nn.Module):
    """Functions, methods, buffers and parameters mixed, as in hand-written decoders."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 6)
        self.w = nn.Parameter(torch.randn(6, 5))
        self.register_buffer("centre", torch.randn(5))

    def forward(self, z: Tensor) -> Tensor:
        h = torch.tanh(self.a(z))
        u = h @ self.w - self.centre
        v = torch.exp(-0.5 * u * u) / 2.0 + torch.sin(u) * torch.sigmoid(u)
        w = torch.cat([v, -u, torch.relu(u)], dim=-1).reshape(z.shape[0], 3, 5)
        return w.permute(0, 2, 1).flatten(1) + torch.nn.functional.softplus(w.sum(1)).repeat(1, 3)


class ConvDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 32),
            nn.ELU(),
            nn.Unflatten(1, (2, 4, 4)),
            nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.Conv2d(3, 2, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def _reference(module: nn.Module, z: Tensor, tangents: Tensor) -> Tensor:
    return torch.stack([jvp(module, (z,), (t,))[1] for t in tangents])


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda m: type(m).__name__)
def test_activations_match_torch_func(activation: nn.Module, dtype: torch.dtype) -> None:
    net = nn.Sequential(nn.Linear(3, 8), activation, nn.Linear(8, 5)).to(dtype).eval()
    z = torch.randn(6, 3, dtype=dtype)
    tangents = torch.randn(4, 6, 3, dtype=dtype)
    out, pushed = TangentPropagator(net)(z, tangents)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(out, net(z), rtol=rtol, atol=atol)
    torch.testing.assert_close(pushed, _reference(net, z, tangents), rtol=rtol, atol=atol)


@pytest.mark.parametrize("module_cls", [Custom, ConvDecoder])
def test_composite_modules_match_torch_func(module_cls: type[nn.Module]) -> None:
    module = module_cls().double().eval()
    d = 3 if module_cls is Custom else 2
    z = torch.randn(5, d, dtype=torch.float64)
    tangents = torch.randn(3, 5, d, dtype=torch.float64)
    out, pushed = TangentPropagator(module)(z, tangents)
    torch.testing.assert_close(out, module(z))
    torch.testing.assert_close(pushed, _reference(module, z, tangents))


def test_buffers_follow_dtype_conversion() -> None:
    module = Custom()
    prop = TangentPropagator(module)
    module.double()  # replaces the buffer tensor: the propagator must see the new one
    z = torch.randn(4, 3, dtype=torch.float64)
    out, pushed = prop(z, torch.ones(1, 4, 3, dtype=torch.float64))
    assert out.dtype == torch.float64 and pushed.dtype == torch.float64
    torch.testing.assert_close(out, module(z))


def test_gradients_through_pushed_tangents() -> None:
    net = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 4)).double()
    z = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 3, 2, dtype=torch.float64)
    _, pushed = TangentPropagator(net)(z, v)
    (grad_fast,) = torch.autograd.grad((pushed**2).sum(), z)
    reference = jvp(net, (z,), (v[0],))[1]
    (grad_ref,) = torch.autograd.grad((reference**2).sum(), z)
    torch.testing.assert_close(grad_fast, grad_ref)
    # and gradients w.r.t. the parameters (used when training through a metric)
    _, pushed = TangentPropagator(net)(z.detach(), v)
    grads = torch.autograd.grad((pushed**2).sum(), list(net.parameters()), allow_unused=True)
    assert grads[0] is not None


def test_to_final_linear_stops_at_the_input_of_the_last_layer(dtype: torch.dtype) -> None:
    """``push_to_final_linear`` and ``values_to_final_linear`` (one run to the last layer's
    input) give that layer, and ``h(z)`` and ``J_h T`` of the net without it."""
    net = nn.Sequential(nn.Linear(3, 7), nn.Tanh(), nn.Linear(7, 5)).to(dtype)
    z = torch.randn(4, 3, dtype=dtype)
    tangents = torch.randn(2, 4, 3, dtype=dtype)
    prop = TangentPropagator(net)
    linear, pushed = prop.push_to_final_linear(z, tangents)
    linear_h, h = prop.values_to_final_linear(z)
    assert linear is net[2] and linear_h is net[2]
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(h, net[:2](z), rtol=rtol, atol=atol)
    torch.testing.assert_close(pushed, _reference(net[:2], z, tangents), rtol=rtol, atol=atol)
    activated = TangentPropagator(nn.Sequential(nn.Linear(3, 5), nn.Tanh()))
    with pytest.raises(ValueError, match=r"does not return the output of an nn\.Linear"):
        activated.values_to_final_linear(z)


def test_untraceable_modules_fall_back() -> None:
    class Branchy(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            if z.sum() > 0:  # data-dependent control flow: fx cannot trace it
                return 2 * z
            return 3 * z

    assert try_tangent_propagator(Branchy()) is None
    assert try_tangent_propagator(lambda z: z) is None
    with pytest.warns(PerformanceWarning, match=r"Branchy: no traced fast path \(torch.fx"):
        metric = PullbackMetric(Branchy())
    z = torch.ones(2, 2)
    torch.testing.assert_close(metric.metric_tensor(z), 4 * torch.eye(2).expand(2, 2, 2))


def test_pullback_metric_same_with_and_without_tracing() -> None:
    net = ConvDecoder().double().eval()
    z = torch.randn(4, 2, dtype=torch.float64)
    v = torch.randn(4, 2, dtype=torch.float64)
    traced = PullbackMetric(net)
    plain = PullbackMetric(lambda x: net(x))  # a function: never traced
    torch.testing.assert_close(traced.metric_tensor(z), plain.metric_tensor(z))
    torch.testing.assert_close(traced.squared_norm(z, v), plain.squared_norm(z, v))
