"""``metric.to(...)``, ``.double()``: a metric over a copy; the user's module never changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.metrics import PullbackMetric, RHVAEMetric, as_metric

torch.set_num_threads(1)


def _decoder() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 5)).eval()


@pytest.mark.parametrize("convert", ["to", "double"])
def test_to_converts_a_copy_and_leaves_the_users_module_alone(convert: str) -> None:
    torch.manual_seed(0)
    decoder = _decoder()
    decoder[1].running_mean.normal_()
    state = {k: v.clone() for k, v in decoder.state_dict().items()}
    metric = as_metric(decoder)
    z = torch.randn(3, 2, dtype=torch.float64)
    moved = metric.to(torch.float64) if convert == "to" else metric.double()
    assert moved is not metric and isinstance(moved, PullbackMetric)
    # the user's module: same dtype, same buffers and parameters, same mode
    assert all(
        v.dtype == torch.float32 for v in decoder.state_dict().values() if v.is_floating_point()
    )
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not decoder.training
    # the copy computes the float64 metric of the same decoder, on the fast path
    assert moved._first is not None
    reference = as_metric(_copy_in_float64(decoder))
    torch.testing.assert_close(moved.metric_tensor(z), reference.metric_tensor(z))
    # and the original metric still works in float32
    assert metric.metric_tensor(z.float()).dtype == torch.float32


def _copy_in_float64(decoder: nn.Module) -> nn.Module:
    twin = _decoder().double()
    twin.load_state_dict(
        {k: v.double() if v.is_floating_point() else v for k, v in decoder.state_dict().items()}
    )
    return twin.eval()


def test_to_copies_explicit_metrics_buffers() -> None:
    c, f = torch.zeros(1, 2), torch.eye(2).expand(1, 2, 2)
    metric = RHVAEMetric(c, f, temperature=1.0, regularization=0.1)
    moved = metric.double()
    assert moved.centroids.dtype == torch.float64 and metric.centroids.dtype == torch.float32


def test_function_decoders_calling_modules_refuse_to_convert() -> None:
    net = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"\.double\(\).*function calling modules"):
        as_metric(lambda z: net(z)).double()
    assert net.weight.dtype == torch.float32
    assert (
        as_metric(lambda z: 2 * z)
        .double()
        .metric_tensor(torch.zeros(1, 2, dtype=torch.float64))
        .dtype
        == torch.float64
    )
