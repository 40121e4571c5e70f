"""The per-module trace cache: traced once, redone when it must be, never keeps modules alive."""

from __future__ import annotations

import gc
import weakref
from typing import cast

import pytest
import torch
from torch import fx, nn

from latentgeo.metrics import as_metric
from latentgeo.metrics.embeddings import DecoderEmbedding
from latentgeo.metrics.forward import forget, taylor_propagator, traced_graph


def count_traces(monkeypatch: pytest.MonkeyPatch) -> list[nn.Module]:
    """The modules ``torch.fx`` traces from now on (in this test)."""
    calls: list[nn.Module] = []
    original = fx.symbolic_trace

    def counting(module: nn.Module) -> fx.GraphModule:
        calls.append(module)
        return original(module)

    monkeypatch.setattr(fx, "symbolic_trace", counting)
    return calls


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3))


def test_traced_once_per_module(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    calls = count_traces(monkeypatch)
    first = traced_graph(net)
    assert traced_graph(net) is first and len(calls) == 1
    as_metric(net).metric_tensor(torch.zeros(2))  # building and using a metric: no new trace
    assert len(calls) == 1
    net.train(False)  # the training mode may change what is traced
    assert traced_graph(net) is not first and len(calls) == 2
    forget(net)
    traced_graph(net)
    assert len(calls) == 3
    # wrappers of the same decoder share the decoder's trace
    traced_graph(DecoderEmbedding(net))
    traced_graph(DecoderEmbedding(net))
    assert len(calls) == 4


def test_wrappers_with_other_outputs_get_their_own_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a user: ``as_metric(dec, output=...)`` reused the trace of the first metric
    built on ``dec``, whatever its output, so a pythae model's Fisher–Rao metric came out
    as its decoder's ``JᵀJ``. Each output is its own trace; alternating retraces nothing."""
    from torch.distributions import Bernoulli

    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid()).double()
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    jac = torch.func.vmap(torch.func.jacrev(net))(z)  # (5, 3, 2)
    p = net(z).detach()  # the Bernoulli Fisher metric is Jᵀ diag(1 / (p (1 − p))) J
    expected = {
        "plain": jac.mT @ jac,
        "scaled": 9.0 * jac.mT @ jac,
        "fisher": jac.mT @ (jac / (p * (1 - p))[..., None]),
    }
    outputs = {
        "plain": None,
        "scaled": lambda out: 3.0 * out,
        "fisher": lambda out: Bernoulli(probs=out),
    }
    calls = count_traces(monkeypatch)
    for order in (["plain", "scaled", "fisher"], ["fisher", "plain", "scaled", "fisher"]):
        for name in order:
            got = as_metric(net, output=outputs[name]).metric_tensor(z)
            torch.testing.assert_close(got, expected[name], rtol=1e-10, atol=1e-12)
    assert len(calls) == 3  # one trace per output, shared on the second round


def test_cache_does_not_keep_modules_alive() -> None:
    net = _net()
    as_metric(net).squared_norm(torch.zeros(2), torch.ones(2))
    assert taylor_propagator(net) is not None
    ref = weakref.ref(net)
    del net
    gc.collect()
    assert ref() is None


def _metric_with_an_output_holding_its_decoder() -> weakref.ref[nn.Module]:
    net = _net()
    scale = lambda out: out * cast(nn.Linear, net[2]).bias.exp().sum()  # noqa: E731 (holds net)
    as_metric(net, output=scale).metric_tensor(torch.zeros(1, 2))
    return weakref.ref(net)


def test_an_output_that_holds_the_decoder_does_not_keep_it_alive() -> None:
    """The trace of ``as_metric(dec, output=f)`` depends on ``f``; an ``f`` that refers to
    the decoder (a learnt scale, say) must not keep the weakly cached decoder alive."""
    ref = _metric_with_an_output_holding_its_decoder()
    gc.collect()
    assert ref() is None


def test_forget_drops_the_traces_of_the_wrappers_too(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _net()
    double = lambda out: 2.0 * out  # noqa: E731
    metric = as_metric(net, output=double)
    metric.metric_tensor(torch.zeros(1, 2))
    calls = count_traces(monkeypatch)
    as_metric(net, output=double).metric_tensor(torch.zeros(1, 2))
    assert calls == []  # the same decoder and output: the cached trace
    forget(net)  # the decoder, not the wrapper the user never sees
    as_metric(net, output=double).metric_tensor(torch.zeros(1, 2))
    assert len(calls) == 1


def test_untraceable_is_cached_as_none() -> None:
    class TwoInputs(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a + b

    assert traced_graph(TwoInputs()) is None
    assert traced_graph(lambda z: z) is None


def test_independent_normal_decoders_are_traced_and_the_class_is_restored() -> None:
    from torch.distributions import Independent, Normal

    from latentgeo.metrics import PullbackMetric

    init = Independent.__init__

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 5))

        def forward(self, z: torch.Tensor) -> Independent:
            return Independent(Normal(self.mean(z), torch.exp(0.1 * z[:, :1])), 1)

    decoder = Wrapped().double()
    metric = as_metric(decoder)
    assert Independent.__init__ is init
    assert isinstance(metric, PullbackMetric) and metric._get_propagator() is not None
    z = torch.randn(3, 2, dtype=torch.float64)
    plain = PullbackMetric(lambda x: DecoderEmbedding(decoder)(x))  # never traced
    torch.testing.assert_close(metric.metric_tensor(z), plain.metric_tensor(z))

    class Failing(nn.Module):
        def forward(self, z: torch.Tensor) -> Independent:
            if z.sum() > 0:  # cannot be traced: the class must still be restored
                return Independent(Normal(z, 1.0), 1)
            return Independent(Normal(-z, 1.0), 1)

    assert traced_graph(Failing()) is None and Independent.__init__ is init
