"""Batched Jacobians by forward and reverse mode against autograd, and their fallbacks when
vmap cannot batch a map (announced once, same numbers)."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import pytest
import torch

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics.jacobians import (
    chunks,
    forward_jacobian,
    nested_forward_mode,
    push_tangents,
    reverse_jacobian,
)

W = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def smooth(z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(z @ W.T) * z.sum(-1, keepdim=True)


class UnbatchableTanh(torch.autograd.Function):
    """``tanh`` with a jvp and a backward but no vmap rule (and a backward that reads a
    number): torch.func can differentiate it, not batch its derivatives."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: torch.Tensor) -> None:
        ctx.save_for_forward(output)
        ctx.save_for_backward(output)

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return (1 - y * y) * tangent

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        assert grad.abs().sum().item() >= 0.0  # a number read: vmap cannot batch this
        return (1 - y * y) * grad


def unbatchable(z: torch.Tensor) -> torch.Tensor:
    return UnbatchableTanh.apply(z @ W.T) * z.sum(-1, keepdim=True)


def _autograd(f: object, z: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.autograd.functional.jacobian(f, z[i : i + 1])[0, :, 0]
                        for i in range(z.shape[0])])  # fmt: skip


def test_chunks_cover_the_range_in_pieces() -> None:
    assert [(s.start, s.stop) for s in chunks(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    assert [(s.start, s.stop) for s in chunks(4, None)] == [(0, 4)]


@pytest.mark.parametrize("jacobian", [forward_jacobian, reverse_jacobian])
def test_jacobians_match_autograd(jacobian: object) -> None:
    z = torch.randn(4, 3, dtype=torch.float64)
    got = jacobian(smooth, z)  # type: ignore[operator]
    assert got.shape == (4, 5, 3)
    torch.testing.assert_close(got, _autograd(smooth, z), rtol=1e-12, atol=1e-12)


def test_push_tangents_is_j_times_each_tangent() -> None:
    z = torch.randn(4, 3, dtype=torch.float64)
    t = torch.randn(2, 4, 3, dtype=torch.float64)
    jac = _autograd(smooth, z)
    want = torch.einsum("nmd,knd->knm", jac, t)
    torch.testing.assert_close(push_tangents(smooth, z, t), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(push_tangents(smooth, z, t[:1]), want[:1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("jacobian", [forward_jacobian, reverse_jacobian])
def test_maps_vmap_cannot_batch_get_the_same_numbers_and_one_warning(jacobian: object) -> None:
    z = torch.randn(4, 3, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = jacobian(unbatchable, z)  # type: ignore[operator]
    torch.testing.assert_close(got, _autograd(smooth, z), rtol=1e-12, atol=1e-12)
    assert [type(w.message) for w in caught] == [PerformanceWarning]
    assert "vmap" in str(caught[0].message)


@pytest.mark.parametrize("activation", [torch.nn.SiLU(), torch.nn.Mish(), torch.nn.Tanh()])
def test_nested_forward_mode_takes_second_derivatives_under_no_grad(activation) -> None:
    """A JVP of a JVP through ``silu`` or ``mish`` fails under ``torch.no_grad`` in PyTorch
    (no forward rule for ``silu_backward``); wrapped, it gives ``f''`` there, and nothing
    it returns keeps a graph of the parameters (which require grad)."""
    weight = torch.nn.Parameter(torch.tensor([[1.3, -0.4], [0.2, 0.9]], dtype=torch.float64))
    x = torch.tensor([[0.3, -1.1], [2.0, 0.5]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)

    def f(y: torch.Tensor) -> torch.Tensor:
        return activation(y @ weight.T)

    @nested_forward_mode
    def second(y: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(lambda p: torch.func.jvp(f, (p,), (v,))[1], (y,), (v,))[1]

    announced = (
        contextlib.nullcontext()
        if isinstance(activation, torch.nn.Tanh)
        else pytest.warns(PerformanceWarning, match="run with gradients on")
    )
    with torch.no_grad(), announced:
        got = second(x)
    assert not got.requires_grad
    # reference: f'' along v by reverse mode of the activation's first derivative
    pre = (x @ weight.T).detach().requires_grad_()
    d1 = torch.autograd.grad(activation(pre).sum(), pre, create_graph=True)[0]
    d2 = torch.autograd.grad(d1.sum(), pre)[0]
    expected = d2 * (v @ weight.T).detach() ** 2
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-14)
    with_grad = second(x)  # gradients on: run as it is, differentiable in the weights
    assert with_grad.requires_grad and torch.equal(with_grad.detach(), got)


def test_nested_forward_mode_keeps_the_tangents_of_a_jvp_around_it() -> None:
    """Under ``no_grad`` the wrapped function's results lose their graph but not the
    forward-mode tangents of an enclosing ``torch.func.jvp`` (an exponential map's
    derivative through the geodesic ODE, as a LAND's volume takes it)."""
    weight = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    @nested_forward_mode
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x) * weight

    x, one = torch.tensor(0.3, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    with torch.no_grad():
        value, tangent = torch.func.jvp(f, (x,), (one,))
    sig = torch.sigmoid(x)
    assert not value.requires_grad
    torch.testing.assert_close(tangent, 2.0 * (sig + x * sig * (1 - sig)), rtol=1e-14, atol=0)


def test_nested_forward_mode_turns_gradients_on_per_owner() -> None:
    """Gradient mode is remembered for the first argument that needed it (its decoder's
    rule), not for every later one (a reviewer: one SiLU decoder switched a tanh one)."""
    modes: list[bool] = []

    @nested_forward_mode
    def second(act: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        modes.append(torch.is_grad_enabled())
        one = torch.ones_like(x)
        return torch.func.jvp(lambda p: torch.func.jvp(act, (p,), (one,))[1], (x,), (one,))[1]

    silu, tanh = torch.nn.SiLU(), torch.nn.Tanh()
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    with torch.no_grad():
        with pytest.warns(PerformanceWarning, match="SiLU: its second-order"):
            second(silu, x)  # fails without gradients, then runs with them (said once)
        assert modes == [False, True]
        second(silu, x)  # straight to gradients
        second(tanh, x)  # tanh has its rule without them
    assert modes == [False, True, True, False]
