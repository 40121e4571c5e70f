"""Every metric keeps the dtype and device of its input (CUDA variants skip without a GPU)."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import (
    FeatureMetric,
    Metric,
    as_metric,
    condition_number,
    log_volume_element,
    volume_element,
)
from latentgeo.models import EnsembleDecoder
from latentgeo.testing import PoincareDisk, StereographicSphere, tolerance

from .reference import GaussianMLP, mlp


def _metrics(dtype: torch.dtype, device: torch.device) -> dict[str, object]:
    return {
        "pullback": as_metric(mlp(2, 5)).to(device, dtype),
        "gaussian": as_metric(GaussianMLP(2, 5)).to(device, dtype),
        "ensemble": as_metric(EnsembleDecoder([mlp(2, 5), GaussianMLP(2, 5)])).to(device, dtype),
        "feature": FeatureMetric(GaussianMLP(2, 5), mlp(5, 2)).to(device, dtype),
        "explicit": PoincareDisk(),
        "sum": (as_metric(StereographicSphere()) + 2.0 * PoincareDisk()),
    }


def test_dtype_and_device_are_preserved(dtype: torch.dtype, device: torch.device) -> None:
    z = 0.3 * torch.rand(4, 3, 2, dtype=dtype, device=device)
    v = torch.randn(4, 3, 2, dtype=dtype, device=device)
    for name, metric in _metrics(dtype, device).items():
        assert isinstance(metric, Metric), name
        g = metric.metric_tensor(z)  # type: ignore[attr-defined]
        sq = metric.squared_norm(z, v)  # type: ignore[attr-defined]
        for out in (g, sq, volume_element(metric, z), log_volume_element(metric, z)):  # type: ignore[arg-type]
            assert out.dtype == dtype and out.device.type == device.type, name
        assert g.shape == (4, 3, 2, 2) and sq.shape == (4, 3), name
        cond = condition_number(metric, z)  # type: ignore[arg-type]
        assert cond.device.type == device.type


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    # only meaningful on an accelerator: the CPU result is the reference
    device = torch.device("cuda")
    z = torch.randn(8, 2, dtype=torch.float64)
    for name, metric in _metrics(torch.float64, torch.device("cpu")).items():
        on_cpu = metric.metric_tensor(z)  # type: ignore[attr-defined]
        moved = metric.to(device)  # type: ignore[attr-defined]
        on_device = moved.metric_tensor(z.to(device)).cpu()
        rtol, atol = tolerance(torch.float64, ops=10)
        torch.testing.assert_close(on_device, on_cpu, rtol=rtol, atol=atol, msg=name)
