"""Preparing a trace: in-place calls made functional, aliasing refused, liveness, rules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.metrics.forward import TangentPropagator, traced_graph
from latentgeo.metrics.forward.graph import prepare
from latentgeo.metrics.forward.layers import TrainingModeError


class Residual(nn.Module):
    """``x += y`` and ``x.mul_(y)`` on values read again afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 4)

    def forward(self, z: Tensor) -> Tensor:
        h = self.a(z)
        g = self.b(h)
        h.mul_(g)  # later reads of h see h * g
        h.add_(1.0)
        F.relu(g, inplace=True)
        return h + g + torch.zeros_like(h)


def _program(module: nn.Module):  # type: ignore[no-untyped-def]
    trace = traced_graph(module)
    assert trace is not None
    return prepare(module, trace)


def test_later_reads_see_the_written_value_and_inputs_stay_untouched() -> None:
    module = Residual().double()
    program = _program(module)
    assert program.aliasing is None and program.unsupported == []
    inplace = [n.name for n, step in program.steps.items() if step.inplace]
    assert inplace == ["mul_", "add_", "relu"]
    z = torch.randn(3, 2, dtype=torch.float64)
    tangents = torch.randn(2, 3, 2, dtype=torch.float64)
    out, pushed = TangentPropagator(module)(z, tangents)
    torch.testing.assert_close(out, module(z))
    reference = torch.stack([jvp(module, (z,), (t,))[1] for t in tangents])
    torch.testing.assert_close(pushed, reference)


def test_writes_into_shared_memory_read_later_are_refused() -> None:
    class ViewRead(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            h = z * 2.0
            v = h.view(-1)
            h.tanh_()
            return v.reshape(z.shape) + h

    class ViewWrite(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            h = z * 2.0
            h[:, :1].tanh_()
            return h

    class ViewNotRead(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            h = (z * 2.0).reshape(-1, 1, 2)
            h.tanh_()  # a view, but what it views is never read again
            return h.flatten(1)

    assert "shares and reads later" in str(_program(ViewRead()).aliasing)
    assert "shares and reads later" in str(_program(ViewWrite()).aliasing)
    assert _program(ViewNotRead()).aliasing is None


def test_liveness_and_calls_without_rules() -> None:
    class Mixed(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            ones = torch.ones_like(z)  # no tangent: not listed
            return torch.cumsum(z, -1) + ones + torch.atan2(z, ones) + torch.cumsum(z, 0)

    program = _program(Mixed())
    assert program.unsupported == ["torch.cumsum (no rule)", "torch.atan2 (no rule)"]


def test_functional_dropout_in_training_mode_is_an_error() -> None:
    class Drop(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            return F.dropout(z, 0.5)  # training=True by default

    with pytest.raises(TrainingModeError, match="training=True"):
        _program(Drop())
