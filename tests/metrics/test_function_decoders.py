"""Plain function decoders run on the traced engine, like the equivalent module."""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch import Tensor, nn

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric, as_metric
from latentgeo.metrics.embeddings import captured_modules
from latentgeo.solvers import exp_map

torch.set_num_threads(1)

NET = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 9)).double()


def global_decoder(z: Tensor) -> Tensor:
    return torch.sigmoid(NET(z))


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.Tanh())
        self.head = nn.Linear(16, 9)

    def decode(self, z: Tensor) -> Tensor:
        return self.head(self.body(z))


def _quiet(decoder: object) -> PullbackMetric:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        metric = as_metric(decoder)
    assert isinstance(metric, PullbackMetric)
    return metric


def test_captured_modules_are_found() -> None:
    model = Model()
    assert captured_modules(model.decode) == [model]
    assert captured_modules(global_decoder) == [NET]
    assert captured_modules(functools.partial(lambda z, net: net(z), net=NET)) == [NET]
    assert captured_modules(lambda z: 2 * z) == []


@pytest.mark.parametrize("kind", ["closure", "global", "method", "tensors"])
def test_function_decoder_takes_the_engine_and_matches_the_module(kind: str) -> None:
    model = Model().double()
    w1, w2 = NET[0].weight, NET[2].weight
    decoder, module = {
        "closure": (lambda z: torch.sigmoid(NET(z)), nn.Sequential(NET, nn.Sigmoid())),
        "global": (global_decoder, nn.Sequential(NET, nn.Sigmoid())),
        "method": (model.decode, nn.Sequential(model.body, model.head)),
        "tensors": (lambda z: torch.tanh(z @ w1.T) @ w2.T, nn.Sequential(NET[0], NET[1], NET[2])),
    }[kind]
    metric = _quiet(decoder)
    assert metric._first is not None and metric._second is not None  # traced, both orders
    reference = as_metric(module)
    z = torch.randn(6, 2, dtype=torch.float64)
    v = torch.randn(6, 2, dtype=torch.float64)
    if kind == "tensors":  # no bias in the hand-written form
        reference = as_metric(lambda x: torch.tanh(x @ w1.T) @ w2.T)
    torch.testing.assert_close(
        metric.metric_tensor(z), reference.metric_tensor(z), rtol=1e-12, atol=1e-12
    )
    got = exp_map(metric, z, v)
    torch.testing.assert_close(got, exp_map(reference, z, v), rtol=1e-9, atol=1e-10)


def test_untraceable_function_says_why_once() -> None:
    def branchy(z: Tensor) -> Tensor:
        return NET(z) if bool(z.sum() > 0) else -NET(z)

    with pytest.warns(
        PerformanceWarning, match=r"branchy: no traced fast path \(torch\.fx cannot trace"
    ) as caught:
        metric = as_metric(branchy)
    assert len([w for w in caught if issubclass(w.category, PerformanceWarning)]) == 1
    z = torch.randn(3, 2, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)  # said once, not again
        assert as_metric(branchy).metric_tensor(z).shape == (3, 2, 2)
        assert metric.metric_tensor(z).shape == (3, 2, 2)


def test_function_calling_a_module_in_training_mode_is_refused() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"Dropout.*eval\(\)"):
        as_metric(lambda z: net(z))
