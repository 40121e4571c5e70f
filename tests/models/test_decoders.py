"""Decoders: shapes, distributions, metrics against autograd, torch.func compatibility."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Normal
from torch.func import jvp, vmap

from latentgeo.metrics import as_metric
from latentgeo.models import (
    MLP,
    BernoulliDecoder,
    EnsembleDecoder,
    GaussianDecoder,
    RBFPrecision,
)
from latentgeo.testing import assert_close


def _jac(f, z: torch.Tensor) -> torch.Tensor:
    """(N, m, d) per-point Jacobians of a map (1, d) -> (1, m) by reverse-mode autograd."""
    return torch.stack(
        [torch.autograd.functional.jacobian(lambda x: f(x[None]).reshape(-1), zi) for zi in z]
    )


def _fitted_rbf(d: int, m: int, dtype: torch.dtype) -> RBFPrecision:
    rbf = RBFPrecision(d, m, num_centres=5).to(dtype)
    rbf.fit_centres(torch.randn(50, d, dtype=dtype))
    with torch.no_grad():
        rbf.raw_weight.normal_()
    return rbf


@pytest.mark.parametrize("scale_kind", ["rbf", "net", "constant"])
def test_gaussian_expected_metric_matches_autograd(scale_kind: str, dtype: torch.dtype) -> None:
    d, m = 2, 5
    mean = MLP(d, m, hidden=(8,)).to(dtype)
    if scale_kind == "rbf":
        scale: torch.nn.Module | float = _fitted_rbf(d, m, dtype)
    elif scale_kind == "net":
        scale = MLP(d, m, hidden=(8,), output_activation="softplus").to(dtype)
    else:
        scale = 0.3
    dec = GaussianDecoder(mean, scale)
    z = torch.randn(6, d, dtype=dtype)
    out = dec(z)
    assert isinstance(out, Normal) and out.mean.shape == (6, m)
    j_mu = _jac(lambda x: dec(x).loc, z)
    j_sigma = _jac(lambda x: dec(x).scale, z)
    expected = j_mu.mT @ j_mu + j_sigma.mT @ j_sigma
    assert_close(as_metric(dec).metric_tensor(z), expected, ops=10)


def test_bernoulli_decoder_and_fisher_rao(dtype: torch.dtype) -> None:
    dec = BernoulliDecoder(MLP(2, 4, hidden=(8,))).to(dtype)
    z = torch.randn(5, 2, dtype=dtype)
    out = dec(z)
    assert isinstance(out, Bernoulli)
    # Fisher–Rao of Bernoulli: Σ_k ∇p_k ∇p_kᵀ / (p_k (1 - p_k))
    jp = _jac(lambda x: dec(x).probs, z)
    p = out.probs
    expected = torch.einsum("nkd,nk,nke->nde", jp, 1.0 / (p * (1 - p)), jp)
    assert_close(as_metric(dec).metric_tensor(z), expected, ops=10)


def _decoders() -> dict[str, torch.nn.Module]:
    rbf = _fitted_rbf(2, 3, torch.float32)
    return {
        "mlp": MLP(2, 3, hidden=(8,)),
        "gaussian_rbf": GaussianDecoder(MLP(2, 3, hidden=(8,)), rbf),
        "bernoulli": BernoulliDecoder(MLP(2, 3, hidden=(8,))),
        "ensemble": EnsembleDecoder([MLP(2, 3, hidden=(8,)) for _ in range(3)]),
    }


@pytest.mark.parametrize("name", ["mlp", "gaussian_rbf", "bernoulli", "ensemble"])
def test_decoders_are_batch_separable_and_traceable(name: str) -> None:
    dec = _decoders()[name]
    g = as_metric(dec)
    z = torch.randn(7, 2)
    v = torch.randn(7, 2)
    # rows are independent: one point at a time gives the same metric
    full = g.metric_tensor(z)
    single = torch.cat([g.metric_tensor(z[i : i + 1]) for i in range(7)])
    torch.testing.assert_close(full, single, rtol=1e-5, atol=1e-6)
    # squared_norm (a jvp) agrees with the tensor (jacfwd under vmap)
    torch.testing.assert_close(
        g.squared_norm(z, v), torch.einsum("ni,nij,nj->n", v, full, v), rtol=1e-4, atol=1e-5
    )

    # and the decoder itself runs under torch.func.vmap(jvp) without falling back
    def first(x: torch.Tensor) -> torch.Tensor:
        out = dec(x)
        return out if isinstance(out, torch.Tensor) else out.mean

    basis = torch.eye(2).unsqueeze(1).expand(2, 7, 2)
    cols = vmap(lambda t: jvp(first, (z,), (t,))[1])(basis)
    assert cols.shape[0] == 2


def test_bad_arguments_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="in_dim"):
        MLP(0, 3)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, 3, activation="swishy")
    with pytest.raises(ValueError, match="scale"):
        GaussianDecoder(MLP(2, 3), -1.0)
    with pytest.raises(TypeError, match="scale"):
        GaussianDecoder(MLP(2, 3), "big")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="logits"):
        BernoulliDecoder(lambda z: z)  # type: ignore[arg-type]
