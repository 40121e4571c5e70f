"""Property-based tests (hypothesis) of the metric identities on random decoders and points."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn

from latentgeo.metrics import Metric, PullbackMetric, as_metric
from latentgeo.testing import tolerance

from .reference import GaussianMLP, mlp

dims = st.integers(min_value=1, max_value=4)
outs = st.integers(min_value=1, max_value=7)
batches = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
kinds = st.sampled_from(["mlp", "gaussian", "ensemble"])


def _decoder(kind: str, d: int, m: int, gen: torch.Generator) -> nn.Module | list[nn.Module]:
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
    if kind == "mlp":
        return mlp(d, m).double()
    if kind == "gaussian":
        return GaussianMLP(d, m).double()
    return [mlp(d, m).double(), GaussianMLP(d, m).double()]


def _setup(kind: str, d: int, m: int, n: int, seed: int) -> tuple[Metric, Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    metric = as_metric(_decoder(kind, d, m, gen))
    z = 2 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    u = torch.randn(n, d, generator=gen, dtype=torch.float64)
    v = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return metric, z, u, v


TOL = tolerance(torch.float64, ops=100)


@given(kinds, dims, outs, batches, seeds)
def test_metric_tensor_is_symmetric_psd(kind: str, d: int, m: int, n: int, seed: int) -> None:
    metric, z, _, _ = _setup(kind, d, m, n, seed)
    g = metric.metric_tensor(z)
    assert g.shape == (n, d, d)
    torch.testing.assert_close(g, g.mT, rtol=TOL[0], atol=TOL[1])
    eig = torch.linalg.eigvalsh(g)
    assert (eig >= -TOL[1] * (1 + eig.abs().max())).all()


@given(kinds, dims, outs, batches, seeds)
def test_squared_norm_and_inner_agree_with_tensor(
    kind: str, d: int, m: int, n: int, seed: int
) -> None:
    metric, z, u, v = _setup(kind, d, m, n, seed)
    g = metric.metric_tensor(z)
    quad = torch.einsum("ni,nij,nj->n", v, g, v)
    scale = 1 + quad.abs()
    torch.testing.assert_close(
        metric.squared_norm(z, v) / scale, quad / scale, rtol=TOL[0], atol=TOL[1]
    )
    bil = torch.einsum("ni,nij,nj->n", u, g, v)
    scale = 1 + bil.abs() + quad.abs()
    torch.testing.assert_close(metric.inner(z, u, v) / scale, bil / scale, rtol=TOL[0], atol=TOL[1])
    torch.testing.assert_close(
        metric.inner(z, u, v), metric.inner(z, v, u), rtol=TOL[0], atol=TOL[1]
    )


@given(kinds, dims, outs, batches, seeds, st.floats(-3, 3), st.floats(-3, 3))
def test_inner_is_bilinear(
    kind: str, d: int, m: int, n: int, seed: int, a: float, b: float
) -> None:
    metric, z, u, v = _setup(kind, d, m, n, seed)
    w = torch.randn_like(u)
    lhs = metric.inner(z, a * u + b * w, v)
    rhs = a * metric.inner(z, u, v) + b * metric.inner(z, w, v)
    scale = 1 + lhs.abs().max()
    torch.testing.assert_close(lhs / scale, rhs / scale, rtol=TOL[0], atol=TOL[1])


@given(dims, outs, batches, seeds)
def test_linear_decoder_gives_ata(d: int, m: int, n: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, d, generator=gen, dtype=torch.float64)
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    g = PullbackMetric(lambda x: x @ a.T).metric_tensor(z)
    torch.testing.assert_close(g, (a.T @ a).expand(n, d, d))


@given(kinds, dims, outs, batches, seeds)
def test_invariant_under_orthogonal_map_of_output(
    kind: str, d: int, m: int, n: int, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    decoder = _decoder("mlp" if kind == "ensemble" else kind, d, m, gen)
    assert isinstance(decoder, nn.Module)
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=torch.float64))
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    if kind == "gaussian":
        assert isinstance(decoder, GaussianMLP)

        def rotated(x: Tensor) -> Tensor:  # rotate the embedding (μ, σ) as one vector
            return torch.cat([decoder.mu(x), decoder.sigma(x)], -1) @ torch.block_diag(q, q).T
    else:

        def rotated(x: Tensor) -> Tensor:
            return decoder(x) @ q.T  # type: ignore[no-any-return]

    torch.testing.assert_close(
        as_metric(rotated).metric_tensor(z),
        as_metric(decoder).metric_tensor(z),
        rtol=TOL[0],
        atol=TOL[1],
    )


@given(kinds, dims, outs, batches, seeds)
def test_change_of_variables(kind: str, d: int, m: int, n: int, seed: int) -> None:
    """For z = B w, the metric in w coordinates is Bᵀ G_z(B w) B."""
    metric, _, _, _ = _setup(kind, d, m, n, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    b = torch.randn(d, d, generator=gen, dtype=torch.float64)
    w = torch.randn(n, d, generator=gen, dtype=torch.float64)
    # the same decoder (same seed), reparametrised by z = B w
    decoder = _decoder(kind, d, m, torch.Generator().manual_seed(seed))
    reparam: object
    if isinstance(decoder, list):
        reparam = [lambda x, f=f: f(x @ b.T) for f in decoder]
    else:
        reparam = lambda x: decoder(x @ b.T)  # noqa: E731
    g_w = as_metric(reparam).metric_tensor(w)
    g_z = metric.metric_tensor(w @ b.T)
    expected = b.T @ g_z @ b
    scale = 1 + expected.abs().amax((-1, -2), keepdim=True)
    torch.testing.assert_close(g_w / scale, expected / scale, rtol=TOL[0], atol=TOL[1])


@given(kinds, dims, outs, seeds)
def test_leading_batch_shapes_are_preserved(kind: str, d: int, m: int, seed: int) -> None:
    metric, _, _, _ = _setup(kind, d, m, 1, seed)
    z = torch.randn(2, 3, d, dtype=torch.float64)
    flat = metric.metric_tensor(z.reshape(6, d)).reshape(2, 3, d, d)
    torch.testing.assert_close(metric.metric_tensor(z), flat)
    assert metric.squared_norm(z, z).shape == (2, 3)
