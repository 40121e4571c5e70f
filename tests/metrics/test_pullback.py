"""PullbackMetric against plain autograd Jacobians and exact geometries."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import latentgeo
from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric, as_metric
from latentgeo.metrics.forward import fast_path_report
from latentgeo.metrics.pullback_parts import final_linear_piece
from latentgeo.testing import LinearMap, Paraboloid, StereographicSphere, tolerance

from .reference import (
    GaussianMLP,
    InplaceDecoder,
    TanhInplace,
    autograd_jacobian,
    conv_decoder,
    mlp,
)


def test_metric_tensor_matches_autograd(dtype: torch.dtype) -> None:
    decoder = mlp(3, 7).to(dtype)
    metric = PullbackMetric(decoder)
    z = torch.randn(6, 3, dtype=dtype)
    jac = autograd_jacobian(decoder, z)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(metric.jacobian(z), jac, rtol=rtol, atol=atol)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, rtol=rtol, atol=atol)


def test_squared_norm_is_one_jvp(dtype: torch.dtype) -> None:
    decoder = mlp(4, 9).to(dtype)
    metric = PullbackMetric(decoder)
    z, v = torch.randn(5, 4, dtype=dtype), torch.randn(5, 4, dtype=dtype)
    jac = autograd_jacobian(decoder, z)
    expected = ((jac @ v.unsqueeze(-1)).squeeze(-1) ** 2).sum(-1)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(metric.squared_norm(z, v), expected, rtol=rtol, atol=atol)
    torch.testing.assert_close(metric.norm(z, v), expected.sqrt(), rtol=rtol, atol=atol)


def test_narrow_map_uses_reverse_mode_and_agrees(dtype: torch.dtype) -> None:
    decoder = mlp(5, 2).to(dtype)  # m < d: reverse mode after the first call
    metric = PullbackMetric(decoder)
    z = torch.randn(4, 5, dtype=dtype)
    first = metric.metric_tensor(z)
    second = metric.metric_tensor(z)
    jac = autograd_jacobian(decoder, z)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(first, jac.mT @ jac, rtol=rtol, atol=atol)
    torch.testing.assert_close(second, jac.mT @ jac, rtol=rtol, atol=atol)


def test_image_shaped_output_is_flattened() -> None:
    lin = torch.nn.Linear(2, 12, dtype=torch.float64)
    metric = PullbackMetric(lambda z: lin(z).reshape(-1, 1, 3, 4))
    z = torch.randn(3, 2, dtype=torch.float64)
    expected = (lin.weight.T @ lin.weight).expand(3, 2, 2)
    torch.testing.assert_close(metric.metric_tensor(z), expected)


@pytest.mark.parametrize("chunk_size", [1, 2, 1000])
def test_chunking_gives_same_result(chunk_size: int) -> None:
    decoder = mlp(2, 5).double()
    z, v = torch.randn(7, 2, dtype=torch.float64), torch.randn(7, 2, dtype=torch.float64)
    full = PullbackMetric(decoder)
    chunked = PullbackMetric(decoder, chunk_size=chunk_size)
    torch.testing.assert_close(chunked.metric_tensor(z), full.metric_tensor(z))
    torch.testing.assert_close(chunked.squared_norm(z, v), full.squared_norm(z, v))
    torch.testing.assert_close(chunked.inner(z, v, 2 * v), full.inner(z, v, 2 * v))


def test_batch_shapes_are_preserved() -> None:
    metric = as_metric(mlp(3, 4).double())
    z = torch.randn(2, 5, 3, dtype=torch.float64)
    v = torch.randn(2, 5, 3, dtype=torch.float64)
    assert metric.metric_tensor(z).shape == (2, 5, 3, 3)
    assert metric.squared_norm(z, v).shape == (2, 5)
    assert metric.inner(z, v, v).shape == (2, 5)
    assert metric.metric_tensor(z[0, 0]).shape == (3, 3)
    assert metric.squared_norm(z[0, 0], v[0, 0]).shape == ()
    # broadcasting one tangent over many points
    assert metric.squared_norm(z, v[0, 0]).shape == (2, 5)


def test_sphere_metric_is_conformal(dtype: torch.dtype) -> None:
    sphere = StereographicSphere()
    z = 2 * torch.randn(16, 3, dtype=dtype)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(
        as_metric(sphere).metric_tensor(z), sphere.metric_tensor(z), rtol=rtol, atol=atol
    )


def test_paraboloid_metric(dtype: torch.dtype) -> None:
    surface = Paraboloid()
    z = torch.randn(16, 2, dtype=dtype)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(
        as_metric(surface).metric_tensor(z), surface.metric_tensor(z), rtol=rtol, atol=atol
    )


def test_linear_map_gives_ata(dtype: torch.dtype) -> None:
    a = torch.randn(6, 3, dtype=dtype)
    z = torch.randn(4, 3, dtype=dtype)
    rtol, atol = tolerance(dtype, ops=10)
    torch.testing.assert_close(
        as_metric(LinearMap(a)).metric_tensor(z), (a.T @ a).expand(4, 3, 3), rtol=rtol, atol=atol
    )


def test_gradients_flow_through_squared_norm() -> None:
    """Solvers differentiate energies w.r.t. curve points: compare with autograd."""
    decoder = mlp(2, 5).double()
    metric = PullbackMetric(decoder)
    z = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    metric.squared_norm(z, v).sum().backward()
    assert z.grad is not None and v.grad is not None

    def reference(zz: torch.Tensor, vv: torch.Tensor) -> torch.Tensor:
        jv = torch.autograd.functional.jvp(decoder, zz, vv, create_graph=True)[1]
        return (jv**2).sum()

    gz, gv = torch.autograd.grad(reference(z, v), (z, v))
    torch.testing.assert_close(z.grad, gz)
    torch.testing.assert_close(v.grad, gv)


def test_dtype_mismatch_is_explained() -> None:
    metric = PullbackMetric(mlp(2, 3))  # float32 parameters
    with pytest.raises(TypeError, match="dtype"):
        metric.metric_tensor(torch.zeros(1, 2, dtype=torch.float64))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="embed"):
        PullbackMetric(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        PullbackMetric(mlp(2, 3), chunk_size=0)


def _widening_decoder(d: int, hidden: int, m: int) -> torch.nn.Module:
    """Ends with a linear layer wider than its input: the metric skips that product."""
    return torch.nn.Sequential(
        torch.nn.Linear(d, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, m)
    )


def test_final_linear_shortcut_matches_autograd(dtype: torch.dtype) -> None:
    decoder = _widening_decoder(3, 5, 40).to(dtype)
    metric = PullbackMetric(decoder, chunk_size=4)
    prop = metric._get_propagator()
    assert prop is not None and prop.final_linear is decoder[2]
    z, v = torch.randn(9, 3, dtype=dtype), torch.randn(9, 3, dtype=dtype)
    jac = autograd_jacobian(decoder, z)
    rtol, atol = tolerance(dtype, ops=100)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, rtol=rtol, atol=atol)
    expected = ((jac @ v.unsqueeze(-1)).squeeze(-1) ** 2).sum(-1)
    torch.testing.assert_close(metric.squared_norm(z, v), expected, rtol=rtol, atol=atol)


def test_final_linear_shortcut_gradients() -> None:
    """Energies are differentiated w.r.t. curve points and decoder weights through it."""
    decoder = _widening_decoder(2, 4, 30).double()
    metric = PullbackMetric(decoder)
    z = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    v = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    params = list(decoder.parameters())
    # the last bias does not enter J: the shortcut never touches it (gradient 0)
    fast = torch.autograd.grad(metric.squared_norm(z, v).sum(), [z, v, *params], allow_unused=True)

    def reference() -> torch.Tensor:
        jv = torch.func.jvp(decoder, (z,), (v,))[1]
        return (jv**2).sum()

    slow = torch.autograd.grad(reference(), [z, v, *params], allow_unused=True)
    for a, b, p in zip(fast, slow, [z, v, *params], strict=True):
        zero = torch.zeros_like(p)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b)


def test_no_shortcut_when_the_last_layer_narrows_or_is_not_linear() -> None:
    narrowing = PullbackMetric(_widening_decoder(2, 8, 3))
    prop = narrowing._get_propagator()
    assert final_linear_piece(prop, torch.zeros(1, 2), torch.ones(1, 1, 2)) is None
    activated = PullbackMetric(torch.nn.Sequential(torch.nn.Linear(2, 9), torch.nn.Sigmoid()))
    prop = activated._get_propagator()
    assert prop is not None and prop.final_linear is None
    with pytest.raises(ValueError, match=r"does not return the output of an nn\.Linear"):
        prop.push_to_final_linear(torch.zeros(1, 2), torch.ones(1, 1, 2))


def test_gaussian_decoder_metric_part_by_part(dtype: torch.dtype) -> None:
    """With a linear mean head ``μ = W h + b``, ``G = J_hᵀ(WᵀW)J_h + J_σᵀJ_σ``: the mean head
    is never evaluated, and ``metric_tensor``, ``squared_norm``, ``inner`` match autograd."""
    torch.manual_seed(4)
    decoder = GaussianMLP(3, 40, hidden=8).to(dtype)
    metric = as_metric(decoder)
    z, u, v = (torch.randn(7, 3, dtype=dtype) for _ in range(3))
    jac = autograd_jacobian(lambda x: torch.cat([decoder.mu(x), decoder.sigma(x)], -1), z)
    metric.metric_tensor(z[:2])  # the one-time check of the parts evaluates the whole output
    assert metric._parts_ok
    calls: list[int] = []
    decoder.mean.register_forward_hook(lambda *args: calls.append(1))
    g = metric.metric_tensor(z)
    sq, inner = metric.squared_norm(z, v), metric.inner(z, u, v)
    assert calls == [] and metric._get_propagator() is not None
    rtol, atol = tolerance(dtype, ops=100)
    torch.testing.assert_close(g, jac.mT @ jac, rtol=rtol, atol=atol)
    ju, jv = (jac @ u[..., None])[..., 0], (jac @ v[..., None])[..., 0]
    torch.testing.assert_close(sq, (jv * jv).sum(-1), rtol=rtol, atol=atol)
    torch.testing.assert_close(inner, (ju * jv).sum(-1), rtol=rtol, atol=atol)


def test_gaussian_decoder_with_a_broadcast_scale_is_not_split() -> None:
    """A scale that broadcasts (a parameter of shape (m,)) makes the parts differ from the
    output: refused by the one-time check, and the metric is still exact."""

    class ConstantScale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh())
            self.mean = torch.nn.Linear(4, 12)
            self.scale = torch.nn.Parameter(torch.rand(12) + 0.5)

        def forward(self, z: torch.Tensor) -> torch.distributions.Normal:
            return torch.distributions.Normal(self.mean(self.body(z)), self.scale)

    decoder = ConstantScale().double()
    metric = as_metric(decoder)
    z, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    jac = autograd_jacobian(lambda x: decoder.mean(decoder.body(x)), z)  # σ is constant
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac)
    expected = ((jac @ v[..., None])[..., 0] ** 2).sum(-1)
    torch.testing.assert_close(metric.squared_norm(z, v), expected)
    assert metric._parts_ok is False


IN_PLACE = {
    "inplace": lambda: InplaceDecoder(),
    "tanh_": lambda: TanhInplace(),
    "conv-inplace": lambda: conv_decoder(inplace=True),
}


@pytest.mark.parametrize("kind", list(IN_PLACE))
def test_in_place_decoders_give_the_autograd_metric(kind: str) -> None:
    """In-place calls are traced as eager execution sees them (metric, norms, inner products):
    equal to autograd Jacobians to 1e-10, on the traced fast path, and the decoder's own
    input is never written into."""
    torch.manual_seed(6)
    decoder = IN_PLACE[kind]().double().requires_grad_(False)
    d = 3 if kind.startswith("conv") else 2
    assert fast_path_report(decoder).usable and fast_path_report(decoder).unsupported == ()
    metric = as_metric(decoder)
    assert metric._get_propagator() is not None
    z, u, v = (torch.randn(6, d, dtype=torch.float64) for _ in range(3))
    z_before = z.clone()
    jac = autograd_jacobian(decoder, z)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, **tol)
    ju, jv = (jac @ u[..., None])[..., 0], (jac @ v[..., None])[..., 0]
    torch.testing.assert_close(metric.squared_norm(z, v), (jv * jv).sum(-1), **tol)
    torch.testing.assert_close(metric.inner(z, u, v), (ju * jv).sum(-1), **tol)
    torch.testing.assert_close(metric.flat_embedding(z), decoder(z).reshape(6, -1), **tol)
    assert torch.equal(z, z_before)


def test_in_place_write_into_a_view_read_later_takes_the_exact_generic_path() -> None:
    """``h[:, :3].tanh_()`` changes ``h``, which is read afterwards: the engine cannot make it
    functional, says so once, and the generic torch.func path gives the eager metric."""

    class ViewWrite(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(2, 6)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            h = self.a(z)
            h[:, :3].tanh_()
            return h * h

    decoder = ViewWrite().double().requires_grad_(False)
    with pytest.warns(PerformanceWarning, match="writes into memory that"):
        metric = as_metric(decoder)
    assert metric._get_propagator() is None
    z = torch.randn(4, 2, dtype=torch.float64)
    jac = autograd_jacobian(decoder, z)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, rtol=1e-10, atol=1e-10)


def test_conv_vae_decoder_is_fully_traced_and_exact(dtype: torch.dtype) -> None:
    """Linear → Unflatten → ConvTranspose2d → BatchNorm2d → GELU → ... → Sigmoid: every layer has
    a rule (no warning: warnings are errors here), and the metric is autograd's."""
    decoder = conv_decoder().to(dtype).requires_grad_(False)
    assert fast_path_report(decoder).unsupported == ()
    metric = as_metric(decoder)
    z, v = torch.randn(5, 3, dtype=dtype), torch.randn(5, 3, dtype=dtype)
    jac = autograd_jacobian(decoder, z)
    rtol, atol = tolerance(dtype, ops=1000)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, rtol=rtol, atol=atol)
    jv = (jac @ v[..., None])[..., 0]
    torch.testing.assert_close(metric.squared_norm(z, v), (jv * jv).sum(-1), rtol=rtol, atol=atol)


def test_calls_without_a_rule_are_named_once_when_the_metric_is_built() -> None:
    class Unusual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(2, 4)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            h = self.a(z)
            return torch.atan2(h, 1.0 + h * h) + torch.cumsum(h, -1)

    decoder = Unusual().double()
    with pytest.warns(PerformanceWarning) as caught:
        metric = as_metric(decoder)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "torch.atan2" in text and "torch.cumsum" in text and "Linear" not in text
    as_metric(decoder)  # once per decoder: no second warning (warnings are errors here)
    z = torch.randn(3, 2, dtype=torch.float64)
    jac = autograd_jacobian(decoder, z)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac)


def test_what_the_engine_cannot_run_switches_to_the_generic_path_once_and_says_so() -> None:
    """A call without a rule taking a tuple of tensors cannot take the per-node generic path:
    the metric says so, uses torch.func from then on, and stays exact."""

    class TupleArgument(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(2, 6)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.dstack(torch.chunk(torch.tanh(self.a(z)), 2, -1)).flatten(1)

    decoder = TupleArgument().double()
    with pytest.warns(PerformanceWarning, match=r"torch\.dstack"):
        metric = as_metric(decoder)
    z = torch.randn(3, 2, dtype=torch.float64)
    jac = autograd_jacobian(decoder, z)
    with pytest.warns(PerformanceWarning, match="uses torch.func from now on"):
        g = metric.metric_tensor(z)
    torch.testing.assert_close(g, jac.mT @ jac)
    assert metric._get_propagator() is None
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac)  # no second warning


def test_flat_embedding_takes_the_trace_for_faster_forwards_only_on_the_cpu() -> None:
    """A transposed convolution's faster forward is a CPU one: on another device (here
    ``meta``) the decoder itself computes the chords (the trace would only add overhead)."""
    traced = []
    for device in ("cpu", "meta"):
        decoder = torch.nn.Sequential(
            torch.nn.Linear(2, 8 * 3 * 3),
            torch.nn.Unflatten(1, (8, 3, 3)),
            torch.nn.ConvTranspose2d(8, 2, 3, stride=2),
        ).to(device)
        metric = PullbackMetric(decoder)
        prop = metric._get_propagator()
        assert prop is not None and prop.faster_values
        values = prop.values

        def counting(z: torch.Tensor, values: Any = values) -> torch.Tensor:
            traced.append(z.device.type)
            return values(z)

        prop.values = counting
        z = torch.randn(4, 2, device=device)
        out = metric.flat_embedding(z)
        assert out.shape == (4, 2 * 7 * 7)
        if device == "cpu":
            torch.testing.assert_close(out, decoder(z).reshape(4, -1))
    assert traced == ["cpu"]


@pytest.mark.parametrize(
    ("name", "d", "points", "shared"),
    [
        ("sphere", 2, 512, False),  # no matrix products: never worth a second pass
        ("mlp", 16, 16, True),  # 2 · 16 · 16 · 1.1e5 = 5.7e7 operations saved
        ("mlp", 16, 4, False),  # 1.4e7: less than the second pass costs
        ("mlp", 2, 256, True),  # 1.1e8
    ],
)
def test_the_jacobian_is_shared_where_it_saves_work(
    name: str, d: int, points: int, shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:meth:`PullbackMetric.geodesic_terms_along` weighs the tangent rows it would save by
    one point's floating-point operations (counted once) against
    :data:`~latentgeo.metrics.pullback.SHARED_JACOBIAN_WORK`; either way, the terms are
    those of each velocity."""
    torch.manual_seed(0)
    module = (
        StereographicSphere()
        if name == "sphere"
        else torch.nn.Sequential(
            torch.nn.Linear(d, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
            torch.nn.Linear(64, 784),
        ).double()
    )  # fmt: skip
    metric = as_metric(module)
    kinds: list[str] = []
    terms = PullbackMetric._terms

    def spy(self: PullbackMetric, z: torch.Tensor, v: torch.Tensor, kind: str) -> Any:
        kinds.append(kind)
        return terms(self, z, v, kind)

    monkeypatch.setattr(PullbackMetric, "_terms", spy)
    z = 0.3 * torch.randn(points, d, dtype=torch.float64)
    v = torch.randn(3, points, d, dtype=torch.float64)
    along = metric.geodesic_terms_along(z, v)
    assert kinds == (["geodesic_terms x3"] if shared else ["geodesic_terms"])
    alone = metric.geodesic_terms(z, v[2])
    torch.testing.assert_close(along.b[2], alone.b, rtol=1e-10, atol=1e-12)


@torch.no_grad()
def test_chords_of_a_decoder_without_a_final_linear_layer_are_chunked() -> None:
    """The chord estimator decoded every point at once where no final linear layer lets it
    work in the hidden space (an audit: 4 curves of 4096 points of a conv decoder held
    5 GB under a 100 MiB budget); now in chunks of the budget, with the same chords."""
    from latentgeo._chunked import measure_peak

    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(2, 4 * 7 * 7), torch.nn.Tanh(), torch.nn.Unflatten(1, (4, 7, 7)),
        torch.nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1), torch.nn.Flatten(),
    ).double().eval()  # fmt: skip
    pos = torch.randn(2, 400, 2, dtype=torch.float64)
    with latentgeo.memory_budget(1 << 30):
        whole, whole_peak = measure_peak(lambda: PullbackMetric(decoder).chords(pos))
    with latentgeo.memory_budget(1 << 17):
        small, small_peak = measure_peak(lambda: PullbackMetric(decoder).chords(pos))
    torch.testing.assert_close(small, whole, rtol=1e-12, atol=0)
    assert small_peak < whole_peak / 10  # 0.34 MB against 7.9 (the probe's 32 points: 0.3)
