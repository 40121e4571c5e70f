"""The interpreter: compositions of rules against torch.func.jvp, and distribution decoders.

Each case is a small module built around a few traced calls; the propagator must
give the same tangents as ``torch.func.jvp`` *without* using its generic
(jvp) fallback, so a rule that silently stopped matching would fail here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Normal
from torch.func import jvp

from latentgeo.metrics import PullbackMetric, as_metric
from latentgeo.metrics.embeddings import DecoderEmbedding
from latentgeo.metrics.forward import TangentPropagator
from latentgeo.metrics.forward.interpreter import Interpreter
from latentgeo.metrics.jacobians import push_tangents

W = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
ROW = torch.randn(3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _h(z: Tensor) -> Tensor:
    """A non-linear (N, 3) feature of z (N, 2), positive, so that log/sqrt are defined."""
    return torch.cat([z, (z * z).sum(-1, keepdim=True)], -1).exp()


CASES: dict[str, Callable[[Tensor], Tensor]] = {
    "sum_dim": lambda z: _h(z).sum(-1),
    "sum_pos_dim_keepdim": lambda z: _h(z).sum(1, keepdim=True),
    "sum_tuple": lambda z: _h(z)[:, :, None].expand(-1, -1, 2).sum((1, 2)),
    "sum_all": lambda z: torch.sum(_h(z)) * torch.ones(z.shape[0], dtype=z.dtype),
    "mean": lambda z: torch.mean(_h(z), dim=-1, keepdim=True),
    "unsqueeze_squeeze": lambda z: _h(z).unsqueeze(1).squeeze(1).unsqueeze(-1).flatten(1),
    "view_reshape": lambda z: _h(z).view(z.shape[0], 3, 1).reshape(-1, 3),
    "transpose_permute": lambda z: _h(z)[:, :, None].transpose(1, 2).permute(0, 2, 1).flatten(1),
    "getitem_basic": lambda z: _h(z)[:, 1:] + _h(z)[..., 0, None] + _h(z)[:, None, 2].flatten(1),
    "cat_with_constant": lambda z: torch.cat([_h(z), torch.ones_like(z), z], dim=1),
    "stack": lambda z: torch.stack([_h(z), 2 * _h(z)], dim=-1).flatten(1),
    "broadcast_tensors": lambda z: torch.cat(torch.broadcast_tensors(_h(z), ROW), -1),
    "expand": lambda z: _h(z)[:, None].expand(-1, 2, -1).flatten(1),
    "div_by_tangent": lambda z: _h(z) / (1.0 + _h(z)[:, :1]),
    "scalar_div": lambda z: 2.0 / _h(z),
    "pow": lambda z: _h(z) ** 3 + _h(z).pow(0.5) + _h(z) ** 2,
    "broadcast_lower_dim": lambda z: _h(z)[0] * _h(z) + _h(z)[0],
    "softplus": lambda z: F.softplus(_h(z) - 2.0, beta=2.0, threshold=3.0),
    "clamp": lambda z: torch.clamp(_h(z), min=1.2, max=4.0) + _h(z).clamp_min(1.5),
    "unary": lambda z: (
        torch.sqrt(_h(z))
        + torch.log(_h(z))
        + torch.atan(_h(z))
        + torch.rsqrt(_h(z))
        + torch.log1p(_h(z))
        + torch.expm1(-_h(z))
        + torch.square(_h(z))
        + torch.abs(_h(z) - 2.0)
    ),
    "functional_activations": lambda z: (
        F.elu(_h(z) - 2.0, alpha=0.5) + F.leaky_relu(_h(z) - 2.0, 0.2) + F.silu(_h(z))
    ),
    "methods": lambda z: _h(z).add(z.sum(-1, keepdim=True)).mul(2.0).sub(1.0).div(3.0).tanh(),
    "matmul_linear": lambda z: F.linear(_h(z), W) + _h(z) @ W.T,
}


class Case(nn.Module):
    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, z: Tensor) -> Tensor:
        return self.fn(z)


@pytest.mark.parametrize("name", list(CASES))
def test_rule_matches_jvp_without_fallback(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = Case(CASES[name])
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    tangents = torch.randn(3, 5, 2, dtype=torch.float64)
    prop = TangentPropagator(module)

    def no_fallback(*args: object, **kwargs: object) -> Tensor:
        raise AssertionError(f"{name}: the generic jvp fallback was used")

    monkeypatch.setattr(Interpreter, "_generic", no_fallback)
    out, pushed = prop(z, tangents)
    reference = torch.stack([jvp(module, (z,), (t,))[1] for t in tangents])
    torch.testing.assert_close(out, module(z))
    torch.testing.assert_close(pushed, reference, rtol=1e-12, atol=1e-12)


def test_primal_values_equal_the_module() -> None:
    module = Case(CASES["broadcast_tensors"])
    z = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(TangentPropagator(module).values(z), module(z))


class NormalDecoder(nn.Module):
    """A user-style decoder returning a Normal: traceable only through its embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(2, 8), nn.Tanh())
        self.mean = nn.Linear(8, 5)
        self.std = nn.Linear(8, 5)

    def forward(self, z: Tensor) -> Normal:
        h = self.trunk(z)
        return Normal(self.mean(h), F.softplus(self.std(h)) + 1e-3)


def test_normal_decoder_is_traced_and_matches_torch_func() -> None:
    decoder = NormalDecoder().double()
    validate = Distribution._validate_args
    metric = as_metric(decoder)
    assert isinstance(metric, PullbackMetric) and isinstance(metric.embed, DecoderEmbedding)
    assert metric._get_propagator() is not None  # the distribution did not stop the trace
    assert Distribution._validate_args == validate  # tracing restored the global setting
    z = torch.randn(6, 2, dtype=torch.float64)
    v = torch.randn(6, 2, dtype=torch.float64)
    embed = DecoderEmbedding(decoder)
    basis = torch.eye(2, dtype=torch.float64)[:, None].expand(2, 6, 2)
    jac = push_tangents(embed, z, basis)  # torch.func, never traced
    torch.testing.assert_close(metric.metric_tensor(z), torch.einsum("inm,jnm->nij", jac, jac))
    reference = push_tangents(embed, z, v[None])[0]
    torch.testing.assert_close(metric.squared_norm(z, v), (reference**2).sum(-1))
    torch.testing.assert_close(metric.flat_embedding(z), embed(z))
    assert metric._get_propagator() is not None  # and no run-time failure disabled it


class _CatMLP(nn.Module):
    """Lists of tensors as arguments (``torch.cat``), for the recursive jet look-ups."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 8).double()
        self.head = nn.Linear(16, 30).double()

    def forward(self, z: Tensor) -> Tensor:
        h = torch.tanh(self.inner(z))
        return self.head(torch.cat([h, h * h], -1))


def _made_by_a_pass(obj: object) -> bool:
    """A tensor, or an object or function of latentgeo's own (a jet, a closure, its env)."""
    if isinstance(obj, torch.Tensor):
        return True
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return isinstance(module, str) and module.startswith("latentgeo")


@pytest.mark.parametrize("make", [_CatMLP, lambda: nn.Sequential(nn.Linear(2, 8), nn.Tanh())])
def test_passes_leave_no_reference_cycles(make: Callable[[], nn.Module]) -> None:
    """No pass leaves garbage for the cycle collector: a cycle through the pass's values
    kept every call's tensors alive until a collection, the heap growing meanwhile (the
    page faults cost ``metric_tensor`` at d = 2 about a third of its time)."""
    import gc

    metric = as_metric(make().double())
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    calls = [
        lambda: metric.metric_tensor(z),
        lambda: metric.squared_norm(z, z),
        lambda: metric.geodesic_terms(z, z),
        lambda: metric.chords(z[None]),
    ]
    for call in calls:
        call()  # first calls measure footprints, trace...: not what is checked
    was_enabled = gc.isenabled()
    gc.disable()
    for _ in range(10):  # freeing a cycle can free others (earlier tests' cached traces)
        if gc.collect() == 0:
            break
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for call in calls:
            call()
        gc.collect()
        # only what a pass made: other threads (an earlier test's executor, a progress bar's
        # monitor) may leave their own garbage meanwhile
        ours = [o for o in gc.garbage if _made_by_a_pass(o)]
        assert not ours, [type(o).__name__ for o in ours][:20]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
