"""Christoffel symbols against closed forms (sphere, conformal metrics) and plain autograd."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import ExplicitMetric, as_metric, christoffel_symbols
from latentgeo.testing import PoincareDisk, StereographicSphere, tolerance


def conformal_christoffel(grad_phi: torch.Tensor) -> torch.Tensor:
    """``Γ^k_ij = δ_ik ∂_jφ + δ_jk ∂_iφ − δ_ij ∂_kφ`` for ``G = e^{2φ} I``; ``(N, d, d, d)``."""
    d = grad_phi.shape[-1]
    eye = torch.eye(d, dtype=grad_phi.dtype)
    g = grad_phi
    return (
        torch.einsum("ki,nj->nkij", eye, g)
        + torch.einsum("kj,ni->nkij", eye, g)
        - torch.einsum("ij,nk->nkij", eye, g)
    )


def test_sphere_decoder_matches_closed_form(dtype: torch.dtype) -> None:
    z = torch.randn(7, 2, dtype=dtype)
    gamma = christoffel_symbols(StereographicSphere(), z)
    # G = 4 / (1 + |z|²)² I: φ = log 2 − log(1 + |z|²)
    expected = conformal_christoffel(-2.0 * z / (1.0 + (z * z).sum(-1, keepdim=True)))
    rtol, atol = tolerance(dtype, ops=20)
    torch.testing.assert_close(gamma, expected, rtol=rtol, atol=atol)


def test_poincare_disk_matches_closed_form(dtype: torch.dtype) -> None:
    z = 0.4 * torch.randn(5, 3, dtype=dtype).clamp(-1, 1)
    gamma = christoffel_symbols(PoincareDisk(), z)
    expected = conformal_christoffel(2.0 * z / (1.0 - (z * z).sum(-1, keepdim=True)))
    rtol, atol = tolerance(dtype, ops=20)
    torch.testing.assert_close(gamma, expected, rtol=rtol, atol=atol)


def test_general_metric_matches_autograd_reference() -> None:
    dtype = torch.float64
    a = torch.randn(3, 3, dtype=dtype)

    def tensor_fn(z: torch.Tensor) -> torch.Tensor:
        m = a + torch.sin(z)[..., None, :] * z[..., :, None]
        return m.mT @ m + torch.eye(3, dtype=dtype)

    z = torch.randn(4, 3, dtype=dtype)
    gamma = christoffel_symbols(ExplicitMetric(tensor_fn), z)
    for n in range(z.shape[0]):  # the textbook formula, one point at a time
        dg = torch.autograd.functional.jacobian(tensor_fn, z[n])  # [a, b, c] = ∂_c G_ab
        first = 0.5 * (dg.permute(0, 2, 1) + dg - dg.permute(2, 0, 1))  # [l, i, j]
        expected = torch.einsum("kl,lij->kij", torch.linalg.inv(tensor_fn(z[n])), first)
        torch.testing.assert_close(gamma[n], expected, rtol=1e-10, atol=1e-12)


def test_symmetric_in_lower_indices_and_batch_shape() -> None:
    z = torch.randn(2, 3, 2, dtype=torch.float64)
    gamma = christoffel_symbols(as_metric(StereographicSphere()), z)
    assert gamma.shape == (2, 3, 2, 2, 2)
    torch.testing.assert_close(gamma, gamma.transpose(-1, -2))


def test_flat_metric_has_zero_symbols() -> None:
    a = torch.randn(5, 2, dtype=torch.float64)
    gamma = christoffel_symbols(lambda z: z @ a.T, torch.randn(6, 2, dtype=torch.float64))
    assert gamma.abs().max() < 1e-12


def test_singular_metric_gives_nan() -> None:
    metric = ExplicitMetric(lambda z: torch.zeros(*z.shape, z.shape[-1], dtype=z.dtype))
    gamma = christoffel_symbols(metric, torch.zeros(2, 2, dtype=torch.float64))
    assert torch.isnan(gamma).all()


def test_bad_input_errors() -> None:
    disk = PoincareDisk()
    with pytest.raises(ValueError, match="NaN"):
        christoffel_symbols(disk, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(TypeError, match="floating"):
        christoffel_symbols(disk, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="last dimension"):
        christoffel_symbols(
            ExplicitMetric(PoincareDisk.conformal_tensor, latent_dim=2), torch.zeros(3)
        )
