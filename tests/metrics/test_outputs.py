"""Decoders returning containers (dict, dataclass, named tuple) through every adapter."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli

from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric, as_metric
from latentgeo.metrics.outputs import UnsupportedOutput, describe_output, select_output

from .reference import autograd_jacobian

torch.set_num_threads(1)


@dataclasses.dataclass
class Out:
    reconstruction: Tensor
    note: str = "hello"


class Pair(NamedTuple):
    reconstruction: Tensor
    count: int


class DictDecoder(nn.Module):
    """A decoder returning a dict with one tensor (and a non-tensor entry)."""

    def __init__(self, d: int = 3, m: int = 7) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, m))

    def forward(self, z: Tensor) -> dict[str, Any]:
        return {"reconstruction": self.net(z), "meta": 1}


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 7)).double()


def _fast_metric(decoder: Callable[..., Any], **options: Any) -> PullbackMetric:
    """``as_metric`` that fails on any PerformanceWarning, checked to run on the engine."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        metric = as_metric(decoder, **options)
    assert isinstance(metric, PullbackMetric)
    assert metric._first is not None and metric._second is not None  # the traced engine
    return metric


ADAPTERS: dict[str, Callable[[nn.Module], tuple[Callable[..., Any], dict[str, Any]]]] = {
    "dict": lambda net: (lambda z: {"reconstruction": net(z), "meta": 1}, {}),
    "dict-key": lambda net: (lambda z: {"a": net(z), "b": net(z) * 2}, {"output": "a"}),
    "dataclass": lambda net: (lambda z: Out(net(z)), {}),
    "dataclass-attr": lambda net: (lambda z: Out(net(z)), {"output": "reconstruction"}),
    "namedtuple": lambda net: (lambda z: Pair(net(z), 3), {}),
    "tuple-index": lambda net: (lambda z: (net(z), net(z) + 1), {"output": 0}),
    "callable": lambda net: (lambda z: {"x": net(z), "y": z}, {"output": lambda o: o["x"]}),
    "module": lambda net: (DictDecoder().double(), {}),
}


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_every_adapter_matches_autograd_on_the_fast_path(kind: str) -> None:
    torch.manual_seed(0)
    net = _net()
    decoder, options = ADAPTERS[kind](net)
    if isinstance(decoder, DictDecoder):
        net = decoder.net
    metric = _fast_metric(decoder, **options)
    assert metric.latent_dim == 3  # inferred from the first Linear, and probed
    z = torch.randn(6, 3, dtype=torch.float64)
    jac = autograd_jacobian(net, z)
    expected = jac.mT @ jac
    torch.testing.assert_close(metric.metric_tensor(z), expected, rtol=1e-10, atol=1e-10)
    v = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(
        metric.squared_norm(z, v), torch.einsum("ni,nij,nj->n", v, expected, v), rtol=1e-10, atol=0
    )
    # second order (the geodesic ODE) runs on the engine too, and agrees with torch.func
    terms = metric.geodesic_terms(z, v)
    reference = PullbackMetric(lambda x: net(x))  # a plain function: no trace, torch.func
    assert reference._first is None
    ref = reference.geodesic_terms(z, v)
    torch.testing.assert_close(terms.g, ref.g, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(terms.b, ref.b, rtol=1e-10, atol=1e-10)


def test_bernoulli_through_a_callable_adapter() -> None:
    net = _net()
    metric = _fast_metric(
        lambda z: {"r": torch.sigmoid(net(z))}, output=lambda o: Bernoulli(probs=o["r"])
    )
    z = torch.randn(4, 3, dtype=torch.float64)
    jac = autograd_jacobian(lambda x: torch.sigmoid(net(x)), z)
    p = torch.sigmoid(net(z))
    expected = jac.mT @ (jac / (p * (1 - p)).unsqueeze(-1))
    torch.testing.assert_close(metric.metric_tensor(z), expected, rtol=1e-9, atol=1e-10)


def test_ambiguous_output_fails_at_as_metric_listing_what_was_returned() -> None:
    net = _net()
    listed = r"dict with 'mu': Tensor \(1, 7\), 'lv'.*output='mu'"
    with pytest.raises(UnsupportedOutput, match=listed):
        as_metric(lambda z: {"mu": net(z), "lv": net(z)})
    with pytest.raises(TypeError, match="no Tensor or distribution"):
        as_metric(lambda z: {"n": 1, "s": "x"}, latent_dim=3)
    with pytest.raises(TypeError, match=r"output='missing'.*has no such entry"):
        as_metric(lambda z: {"mu": net(z)}, output="missing")
    with pytest.raises(TypeError, match="output must be"):
        as_metric(net, output=2.5)  # type: ignore[arg-type]


def test_a_plain_tuple_is_picked_by_the_position_the_message_suggests() -> None:
    # it suggested output='0', which then failed with the same suggestion
    net = _net()
    with pytest.raises(UnsupportedOutput, match=r"a position \(output=0\), or") as caught:
        as_metric(lambda z: (net(z), net(z)))
    assert "output='0'" not in str(caught.value)
    with pytest.raises(UnsupportedOutput, match=r"output='0'.*no such entry.*\(output=0\)"):
        as_metric(lambda z: (net(z), net(z)), output="0")
    assert as_metric(lambda z: (net(z), 2 * net(z)), output=0).latent_dim == 3


def test_unsupported_output_fails_at_construction_without_a_latent_size() -> None:
    # no latent size to probe with: the output is found by tracing
    with pytest.raises(UnsupportedOutput, match=r"returned str.*output="):
        as_metric(lambda z: "a string")


def test_wrong_latent_dim_fails_at_once() -> None:
    decoder = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 784))
    message = r"decoder Sequential expects latent dimension 16 .*got latent_dim=8"
    with pytest.raises(ValueError, match=message):
        as_metric(decoder, latent_dim=8)
    metric = as_metric(decoder)
    assert metric.latent_dim == 16
    with pytest.raises(ValueError, match=r"last dimension d=16"):
        metric.metric_tensor(torch.zeros(2, 8))


def test_wrong_latent_dim_of_an_untraceable_decoder_fails_in_the_probe() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 5)

        def forward(self, z: Tensor) -> Tensor:
            return self.lin(z) if z.sum() > 0 else -self.lin(z)

    with pytest.warns(PerformanceWarning, match="no traced fast path"):
        assert as_metric(Branchy(), latent_dim=4).latent_dim == 4
    message = r"Branchy fails on a latent point of dimension 3.*latent_dim"
    with pytest.raises(ValueError, match=message):
        as_metric(Branchy(), latent_dim=3)
    with pytest.raises(ValueError, match="latent_dim must be a positive int"):
        as_metric(Branchy(), latent_dim=0)


def test_probe_does_not_touch_a_module_in_training_mode() -> None:
    decoder = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    before = decoder[1].running_mean.clone()
    with pytest.raises(ValueError, match=r"decoder\.eval\(\)"):
        as_metric(decoder)
    assert torch.equal(decoder[1].running_mean, before) and decoder[1].num_batches_tracked == 0


def test_metric_and_ensemble_accept_the_options() -> None:
    net = _net()
    metric = as_metric(net)
    assert as_metric(metric, latent_dim=3) is metric
    with pytest.raises(ValueError, match="latent dimension 3"):
        as_metric(metric, latent_dim=2)
    with pytest.raises(TypeError, match="is a metric"):
        as_metric(metric, output="x")
    pair = as_metric([lambda z: {"r": net(z)}, lambda z: {"r": -net(z)}], output="r")
    z = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(pair.metric_tensor(z), metric.metric_tensor(z))


def test_select_and_describe() -> None:
    t = torch.zeros(2, 3)
    assert select_output(t) is t
    assert select_output(Pair(t, 1)) is t
    assert select_output({"a": t}, "a") is t
    assert describe_output(Out(t)) == "Out with 'reconstruction': Tensor (2, 3), 'note': str"
    with pytest.raises(UnsupportedOutput, match="position"):
        select_output((t, t), 5)
