"""Curvature against exact geometries: sphere (+1), hyperbolic space (−1), flat (0), paraboloid."""

from __future__ import annotations

import pytest
import torch

from latentgeo.exceptions import PerformanceWarning
from latentgeo.geometry import curvature_map, riemann_tensor, scalar_curvature, sectional_curvature
from latentgeo.metrics import LocalPCAMetric, as_metric
from latentgeo.testing import Paraboloid, PoincareDisk, StereographicSphere, tolerance

from .geometries import explicit_sphere, flat_pullback, mlp_metric


def tol(dtype: torch.dtype) -> float:
    return 1e-8 if dtype == torch.float64 else 2e-3


@pytest.mark.parametrize("d", [2, 3, 16])
def test_sphere_and_hyperbolic_space(d: int, dtype: torch.dtype) -> None:
    z = 0.3 * torch.randn(64, d, dtype=dtype)
    u, v = torch.randn(2, 64, d, dtype=dtype)
    one = torch.ones(64, dtype=dtype)
    torch.testing.assert_close(sectional_curvature(StereographicSphere(), 3 * z, u, v), one,
                               rtol=0, atol=tol(dtype))  # fmt: skip
    torch.testing.assert_close(sectional_curvature(explicit_sphere(), 3 * z, u, v), one,
                               rtol=0, atol=tol(dtype))  # fmt: skip
    torch.testing.assert_close(sectional_curvature(PoincareDisk(), z / d**0.5, u, v), -one,
                               rtol=0, atol=tol(dtype))  # fmt: skip


def test_flat_metrics_have_zero_curvature(dtype: torch.dtype) -> None:
    z = torch.randn(64, 4, dtype=dtype)
    u, v = torch.randn(2, 64, 4, dtype=dtype)
    flat = flat_pullback(4, dtype)
    assert float(sectional_curvature(flat, z, u, v).abs().max()) < tol(dtype)
    assert float(scalar_curvature(flat, z).abs().max()) < tol(dtype)
    assert float(riemann_tensor(flat, z[:4]).abs().max()) < tol(dtype)


def test_paraboloid_closed_forms(dtype: torch.dtype) -> None:
    """Graph of |z|²: K = 4 / (1 + 4|z|²)² for d = 2; for d = 3 the Gauss equation gives
    R(u,v,u,v) = 4 (|u|²|v|² − (u·v)²) / (1 + 4|z|²) in Euclidean dot products."""
    z2 = torch.randn(64, 2, dtype=dtype)
    k2 = curvature_map(Paraboloid(), z2, quantity="gaussian")
    torch.testing.assert_close(k2, 4 / (1 + 4 * (z2 * z2).sum(-1)) ** 2, rtol=tol(dtype), atol=0)
    z, u, v = torch.randn(3, 64, 3, dtype=dtype)
    g = Paraboloid.metric_tensor(z)
    gram = torch.einsum("ni,nij,nj->n", u, g, u) * torch.einsum("ni,nij,nj->n", v, g, v)
    gram = gram - torch.einsum("ni,nij,nj->n", u, g, v) ** 2
    eucl = (u * u).sum(-1) * (v * v).sum(-1) - (u * v).sum(-1) ** 2
    expected = 4 * eucl / (1 + 4 * (z * z).sum(-1)) / gram
    torch.testing.assert_close(sectional_curvature(Paraboloid(), z, u, v), expected,
                               rtol=tol(dtype), atol=tol(dtype))  # fmt: skip


@pytest.mark.parametrize("kind", ["mlp", "local-pca"])
def test_riemann_tensor_and_both_forms_agree(kind: str, dtype: torch.dtype) -> None:
    metric = (
        mlp_metric(3, dtype)
        if kind == "mlp"
        else LocalPCAMetric(torch.randn(40, 3, dtype=dtype), sigma=0.8, rho=0.05)
    )
    z = 0.5 * torch.randn(64, 3, dtype=dtype)
    u, v = torch.randn(2, 64, 3, dtype=dtype)
    r = riemann_tensor(metric, z)
    g = metric.metric_tensor(z)
    num = torch.einsum("nabcd,na,nb,nc,nd->n", r, u, v, u, v)
    gram = torch.einsum("ni,nij,nj->n", u, g, u) * torch.einsum("ni,nij,nj->n", v, g, v)
    expected = num / (gram - torch.einsum("ni,nij,nj->n", u, g, v) ** 2)
    rtol, atol = tolerance(dtype, ops=2000)
    for form in ("christoffel", "acceleration"):
        got = sectional_curvature(metric, z, u, v, form=form)  # type: ignore[arg-type]
        scale = atol * float(expected.abs().max())
        torch.testing.assert_close(got, expected, rtol=rtol, atol=scale)
    # the symmetries of the Riemann tensor
    scale = atol * float(r.abs().max())
    torch.testing.assert_close(r, -r.transpose(1, 2), rtol=rtol, atol=scale)
    torch.testing.assert_close(r, r.permute(0, 3, 4, 1, 2), rtol=rtol, atol=scale)


def test_riemann_tensor_of_one_point_of_a_conv_decoder() -> None:
    """A transposed-convolution decoder (which ``vmap`` cannot trace, so each coordinate's
    derivative is taken on a replicated batch) at a single point: the replicated batch
    was a view with a zero stride, which forward mode refused; the row of a larger
    batch is the answer."""
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(3, 8 * 7 * 7), torch.nn.Tanh(), torch.nn.Unflatten(1, (8, 7, 7)),
        torch.nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),
    ).double().eval()  # fmt: skip
    metric = as_metric(decoder)
    z = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(riemann_tensor(metric, z[:1])[0], riemann_tensor(metric, z)[0])


def test_scalar_curvature(dtype: torch.dtype) -> None:
    z = 0.3 * torch.randn(64, 4, dtype=dtype)
    twelve = torch.full((64,), 12.0, dtype=dtype)  # d(d − 1) for d = 4
    torch.testing.assert_close(scalar_curvature(StereographicSphere(), z), twelve,
                               rtol=0, atol=20 * tol(dtype))  # fmt: skip
    torch.testing.assert_close(scalar_curvature(PoincareDisk(), 0.5 * z), -twelve,
                               rtol=0, atol=20 * tol(dtype))  # fmt: skip
    # against the contraction of the Riemann tensor, for a generic metric
    metric = mlp_metric(3, dtype)
    z3 = z[:8, :3]
    r = riemann_tensor(metric, z3)
    ginv = torch.linalg.inv(metric.metric_tensor(z3))
    contracted = torch.einsum("nabcd,nac,nbd->n", r, ginv, ginv)
    rtol, atol = tolerance(dtype, ops=2000)
    torch.testing.assert_close(scalar_curvature(metric, z3, chunk_size=3), contracted,
                               rtol=rtol, atol=atol * float(contracted.abs().max()))  # fmt: skip


def test_scalar_curvature_chunks_planes_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are counts of planes sized by the memory budget, not of points: under a
    small budget a point's planes are split across chunks (an audit: 5 GB for four
    points of a d = 16 conv decoder, all in one chunk), with the same curvatures."""
    from latentgeo._chunked import measure_peak
    from latentgeo.geometry import curvature

    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(4, 6 * 7 * 7), torch.nn.Tanh(), torch.nn.Unflatten(1, (6, 7, 7)),
        torch.nn.ConvTranspose2d(6, 1, 4, stride=2, padding=1),
    ).double().eval()  # fmt: skip
    z = torch.randn(9, 4, dtype=torch.float64)  # 6 planes a point, 54 rows
    whole, whole_peak = measure_peak(lambda: scalar_curvature(decoder, z, chunk_size=9))
    small, small_peak = measure_peak(lambda: scalar_curvature(decoder, z, memory_budget=2**21))
    torch.testing.assert_close(small, whole, rtol=1e-12, atol=0)
    assert small_peak <= 2**21 < whole_peak / 4  # within the budget; one chunk is not
    sizes: list[int] = []
    rows = curvature._sectional_rows

    def counted(metric, z, u, v, form, jet=None):  # type: ignore[no-untyped-def]
        sizes.append(z.shape[0])
        return rows(metric, z, u, v, form, jet)

    monkeypatch.setattr(curvature, "_sectional_rows", counted)
    # the Christoffel form's jet, per chunk, for the planes' own points
    sphere = scalar_curvature(StereographicSphere(), 0.3 * z, memory_budget=16 * 2**10)
    torch.testing.assert_close(sphere, torch.full((9,), 12.0, dtype=torch.float64))
    assert sizes[:2] == [1, 2]  # the probe: one plane and two (a plane weighs 12 points)
    assert max(sizes[2:]) < 6 and sum(sizes[2:]) == 54  # then chunks of less than a point
    with pytest.raises(ValueError, match="chunk_size"):
        scalar_curvature(StereographicSphere(), z, chunk_size=0)
    with pytest.raises(ValueError, match="memory_budget"):
        scalar_curvature(StereographicSphere(), z, memory_budget=0)


def test_riemann_tensor_in_chunks_of_points() -> None:
    torch.manual_seed(0)
    metric = mlp_metric(3, torch.float64)
    z = torch.randn(40, 3, dtype=torch.float64)
    whole = riemann_tensor(metric, z)
    # 40 points ran at once, unmeasured and silent, over a 1-byte budget: now one a chunk, said
    with pytest.warns(PerformanceWarning, match="more than the memory budget of 1 bytes"):
        small = riemann_tensor(metric, z, memory_budget=1)
    torch.testing.assert_close(small, whole, rtol=1e-12, atol=1e-12)


def test_curvature_map_on_a_grid() -> None:
    from latentgeo.viz import latent_grid

    grid = latent_grid((-1.0, 1.0, -1.0, 1.0), 8, dtype=torch.float64)
    k = curvature_map(as_metric(StereographicSphere()), grid, quantity="gaussian")
    assert k.shape == (8, 8) and not k.requires_grad
    torch.testing.assert_close(k, torch.ones(8, 8, dtype=torch.float64))


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # torch's, mish
@pytest.mark.parametrize("activation", [torch.nn.SiLU, torch.nn.Mish])
def test_silu_and_mish_decoders_under_no_grad(activation: type[torch.nn.Module]) -> None:
    """The second-order forward products behind curvature fail in PyTorch under
    ``torch.no_grad`` for SiLU and Mish (an audit: ``curvature_map`` raised
    NotImplementedError on every SiLU decoder); now the same numbers as with gradients,
    and none of them keeps a graph."""
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(3, 16), activation(inplace=True), torch.nn.Linear(16, 10)
    ).double()
    z = torch.randn(4, 3, dtype=torch.float64)
    u, w = torch.randn(2, 4, 3, dtype=torch.float64)
    expected = scalar_curvature(decoder, z, differentiable=True).detach()  # gradients on
    gradients_on = pytest.warns(PerformanceWarning, match="run with gradients on")
    with torch.no_grad(), gradients_on:
        got = scalar_curvature(decoder, z)
        sectional = sectional_curvature(decoder, z, u, w)
        riemann = riemann_tensor(decoder, z[:2])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    reference = riemann_tensor(decoder, z[:2], differentiable=True).detach()
    torch.testing.assert_close(riemann, reference)
    torch.testing.assert_close(
        sectional, sectional_curvature(decoder, z, u, w, differentiable=True).detach()
    )
    assert not (got.requires_grad or sectional.requires_grad or riemann.requires_grad)
    grid = curvature_map(decoder, z[:, :3].reshape(2, 2, 3), quantity="scalar")
    torch.testing.assert_close(grid.reshape(-1), expected, rtol=1e-12, atol=0)


def test_a_graph_only_where_an_input_asks_for_one() -> None:
    """The decoder's parameters require grad, the points do not: no graph is kept (an
    audit: 4 GB a point at d = 50, 12 GB for three); points that require grad get
    gradients (central differences) and so do the parameters."""
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(2, 12), torch.nn.Tanh(), torch.nn.Linear(12, 5)
    ).double()
    z = torch.randn(3, 2, dtype=torch.float64)
    u, v = torch.randn(2, 3, 2, dtype=torch.float64)
    assert not scalar_curvature(decoder, z).requires_grad
    assert not sectional_curvature(decoder, z, u, v).requires_grad
    assert not riemann_tensor(decoder, z).requires_grad
    zg = z.clone().requires_grad_()
    s = scalar_curvature(decoder, zg)
    (grad,) = torch.autograd.grad(s.sum(), zg)
    h = 1e-5
    for i in range(2):
        step = torch.zeros_like(z)
        step[:, i] = h
        fd = (scalar_curvature(decoder, z + step) - scalar_curvature(decoder, z - step)) / (2 * h)
        torch.testing.assert_close(grad[:, i], fd, rtol=1e-6, atol=1e-8)
    k = sectional_curvature(decoder, zg, u, v).sum()
    assert torch.autograd.grad(k, decoder[0].weight)[0].abs().sum() > 0
    # a curvature penalty trained into the decoder asks for the graph (a reviewer)
    penalty = scalar_curvature(decoder, z, differentiable=True).square().mean()
    (wgrad,) = torch.autograd.grad(penalty, decoder[0].weight)
    h, dw = 1e-6, torch.zeros_like(decoder[0].weight)
    dw[0, 0] = h
    with torch.no_grad():
        decoder[0].weight += dw
        up = scalar_curvature(decoder, z).square().mean()
        decoder[0].weight -= 2 * dw
        down = scalar_curvature(decoder, z).square().mean()
        decoder[0].weight += dw
    torch.testing.assert_close(wgrad[0, 0], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)
    assert not scalar_curvature(decoder, zg, differentiable=False).requires_grad
    with pytest.raises(TypeError, match="differentiable must be None, True or False"):
        scalar_curvature(decoder, z, differentiable="yes")  # type: ignore[arg-type]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="d >= 2"):
        scalar_curvature(PoincareDisk(), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="quantity"):
        curvature_map(PoincareDisk(), torch.zeros(3, 2), quantity="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs d = 2"):
        curvature_map(PoincareDisk(), torch.zeros(3, 3), quantity="gaussian")
    with pytest.raises(ValueError, match="u contains NaN"):
        sectional_curvature(PoincareDisk(), torch.zeros(2), torch.tensor([1.0, float("nan")]),
                            torch.ones(2))  # fmt: skip
    parallel = sectional_curvature(PoincareDisk(), torch.zeros(1, 2), torch.ones(1, 2),
                                   2 * torch.ones(1, 2))  # fmt: skip
    assert bool(torch.isnan(parallel).all())
