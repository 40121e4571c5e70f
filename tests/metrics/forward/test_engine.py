"""What a module gets from the engine, known before anything runs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from latentgeo.metrics.forward import FastPathReport, Propagator, fast_path_report


def test_reports() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    assert fast_path_report(net) == FastPathReport(True, None, ())
    assert fast_path_report(lambda z: z) == FastPathReport(False, "not an nn.Module", ())

    class Branchy(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            return z if z.sum() > 0 else -z

    report = fast_path_report(Branchy())
    assert not report.usable and "TraceError" in str(report.reason)

    class Pair(nn.Module):
        def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
            return z, 2 * z

    assert "container" in str(fast_path_report(Pair()).reason)

    class Unruled(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            return torch.cumsum(z, -1)

    assert fast_path_report(Unruled()).unsupported == ("torch.cumsum (no rule)",)


def test_propagator_refuses_what_it_cannot_run() -> None:
    class Pair(nn.Module):
        def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
            return z, 2 * z

    with pytest.raises(ValueError, match="no traced fast path: it returns a container"):
        Propagator(Pair())
    prop = Propagator(nn.Sequential(nn.Linear(2, 3), nn.Tanh()))
    assert prop.final_linear is None and prop.parts is None
    with pytest.raises(ValueError, match=r"does not return the output of an nn\.Linear"):
        prop.final_input_node()
