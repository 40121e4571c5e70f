"""diag(J_hᵀ J_h): reverse mode (c products) against forward mode (one per input) and autograd;
Hutchinson's estimate unbiased with the stated variance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from latentgeo.metrics.feature_diagonal import (
    exact_feature_diagonal,
    feature_jacobian,
    hutchinson_feature_diagonal,
    rademacher_probes,
    sequential_rows,
)

from .reference import autograd_jacobian, mlp


def small_cnn(features: int = 6) -> nn.Module:
    """A CNN classifier on flat 28×28 images (two strided convolutions and a linear layer)."""
    return (
        nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 3, 3, stride=2, padding=1),
            nn.ELU(),
            nn.Conv2d(3, 4, 3, stride=2, padding=1),
            nn.ELU(),
            nn.Flatten(),
            nn.Linear(4 * 7 * 7, features),
        )
        .double()
        .requires_grad_(False)
    )


def frozen_mlp(d: int, m: int) -> nn.Module:
    """A float64 tanh MLP whose parameters need no gradient (results are plain tensors)."""
    return mlp(d, m).double().requires_grad_(False)


def test_reverse_equals_forward_and_autograd_on_a_cnn() -> None:
    cnn = small_cnn()
    x = torch.randn(3, 784, dtype=torch.float64)
    reverse = exact_feature_diagonal(cnn, x, mode="reverse")  # 6 products
    forward = exact_feature_diagonal(cnn, x, mode="forward")  # 784 products
    jac = autograd_jacobian(cnn, x)  # (N, c, m)
    reference = (jac * jac).sum(1)
    scale = reference.abs().max()
    assert float((reverse - forward).abs().max() / scale) < 1e-10
    assert float((reverse - reference).abs().max() / scale) < 1e-10
    assert float(reverse.min()) >= 0.0


def test_feature_jacobian_is_the_jacobian_either_way() -> None:
    """J_h (N, c, m), which FeatureMetric reuses for J_h J_μ, by c reverse products and by m
    forward ones, against autograd (float64, 1e-10)."""
    cnn = small_cnn()
    x = torch.randn(2, 784, dtype=torch.float64)
    reference = autograd_jacobian(cnn, x)
    scale = reference.abs().max()
    for mode in ("reverse", "forward", None):
        jac = feature_jacobian(cnn, x, mode=mode)  # type: ignore[arg-type]
        assert jac.shape == (2, 6, 784)
        assert float((jac - reference).abs().max() / scale) < 1e-10


def test_mode_none_takes_the_narrower_side() -> None:
    x = torch.randn(4, 5, dtype=torch.float64)
    for feature in (frozen_mlp(5, 2), frozen_mlp(5, 9)):  # narrower, wider
        jac = autograd_jacobian(feature, x)
        torch.testing.assert_close(exact_feature_diagonal(feature, x), (jac * jac).sum(1))
    with pytest.raises(ValueError, match="mode must be"):
        exact_feature_diagonal(frozen_mlp(5, 2), x, mode="sideways")  # type: ignore[arg-type]


def test_probes_are_rademacher_and_seeded() -> None:
    u = rademacher_probes(3, 50, 4, seed=7, dtype=torch.float32, device=torch.device("cpu"))
    assert u.shape == (3, 50, 4) and u.dtype == torch.float32
    assert set(u.unique().tolist()) == {-1.0, 1.0}
    again = rademacher_probes(3, 50, 4, seed=7, dtype=torch.float32, device=torch.device("cpu"))
    other = rademacher_probes(3, 50, 4, seed=8, dtype=torch.float32, device=torch.device("cpu"))
    assert torch.equal(u, again) and not torch.equal(u, other)


def _single_probe_estimates(feature: nn.Module, x: Tensor, samples: int) -> Tensor:
    """``samples`` independent one-probe estimates at each row of ``x``: ``(samples, N, m)``."""
    n, m = x.shape
    c = feature(x[:1]).shape[-1]
    rep = x.unsqueeze(0).expand(samples, n, m).reshape(samples * n, m)
    u = rademacher_probes(1, samples * n, c, seed=3, dtype=x.dtype, device=x.device)
    return hutchinson_feature_diagonal(feature, rep, u).reshape(samples, n, m)


def test_hutchinson_is_unbiased_with_the_stated_variance() -> None:
    feature = frozen_mlp(6, 4)
    x = torch.randn(3, 6, dtype=torch.float64)
    jac = autograd_jacobian(feature, x)  # (N, c, m)
    exact = (jac * jac).sum(1)
    stated_var = 2.0 * (exact**2 - (jac**4).sum(1))  # one probe, per entry
    samples = 4000
    est = _single_probe_estimates(feature, x, samples)
    stderr = (stated_var / samples).sqrt()
    z_scores = (est.mean(0) - exact) / stderr
    assert float(z_scores.abs().max()) < 4.5  # 18 entries: |z| > 4.5 has p ≈ 1e-4
    # the empirical variance agrees with the stated one (loose: a variance of 4000 draws)
    ratio = est.var(0) / stated_var
    assert float(ratio.min()) > 0.8 and float(ratio.max()) < 1.2


def test_hutchinson_weighted_sum_variance() -> None:
    """The squared norm's term Σ_i w_i diag_i has variance (2/s)(‖A‖_F² − Σ A_kk²),
    A = J diag(w) Jᵀ."""
    feature = frozen_mlp(5, 3)
    x = torch.randn(2, 5, dtype=torch.float64)
    w = torch.rand(2, 5, dtype=torch.float64)
    jac = autograd_jacobian(feature, x)
    a = jac @ (w.unsqueeze(-1) * jac.mT)  # (N, c, c)
    stated_var = 2.0 * ((a**2).sum((-1, -2)) - (a.diagonal(dim1=-2, dim2=-1) ** 2).sum(-1))
    samples = 4000
    sums = (_single_probe_estimates(feature, x, samples) * w).sum(-1)  # (samples, N)
    exact = ((jac * jac).sum(1) * w).sum(-1)
    z_scores = (sums.mean(0) - exact) / (stated_var / samples).sqrt()
    assert float(z_scores.abs().max()) < 4.5
    ratio = sums.var(0) / stated_var
    assert float(ratio.min()) > 0.8 and float(ratio.max()) < 1.2


def test_hutchinson_is_exact_for_one_feature_and_averages_probes() -> None:
    feature = frozen_mlp(4, 1)
    x = torch.randn(5, 4, dtype=torch.float64)
    u = rademacher_probes(3, 5, 1, seed=0, dtype=x.dtype, device=x.device)
    torch.testing.assert_close(
        hutchinson_feature_diagonal(feature, x, u), exact_feature_diagonal(feature, x)
    )
    wide = frozen_mlp(4, 3)
    u = rademacher_probes(4, 5, 3, seed=1, dtype=x.dtype, device=x.device)
    each = torch.stack([hutchinson_feature_diagonal(wide, x, u[j : j + 1]) for j in range(4)])
    torch.testing.assert_close(hutchinson_feature_diagonal(wide, x, u), each.mean(0))


def test_hutchinson_checks_the_probes_shape() -> None:
    feature = frozen_mlp(4, 3)
    x = torch.randn(5, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"probes must have shape \(s, 5, 3\)"):
        hutchinson_feature_diagonal(feature, x, torch.ones(2, 5, 4, dtype=torch.float64))


def test_stated_standard_error_shrinks_with_probes() -> None:
    """More probes: the mean of s one-probe estimates, so the variance divides by s."""
    feature = frozen_mlp(6, 4)
    x = torch.randn(2, 6, dtype=torch.float64)
    est = _single_probe_estimates(feature, x, 4000).reshape(1000, 4, 2, 6).mean(1)
    jac = autograd_jacobian(feature, x)
    exact = (jac * jac).sum(1)
    stated_var = 2.0 * (exact**2 - (jac**4).sum(1)) / 4
    ratio = est.var(0) / stated_var
    assert math.isfinite(float(ratio.max()))
    assert float(ratio.min()) > 0.7 and float(ratio.max()) < 1.3


def _layered_maps() -> list[tuple[nn.Module, tuple[int, ...]]]:
    """Sequential feature maps with every hand-written rule, and their input shapes."""
    conv2d = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        nn.SiLU(),
        nn.Conv2d(4, 6, (2, 3), stride=(1, 2), padding=(0, 1), dilation=(2, 1), groups=2),
        nn.Dropout(0.3).eval(),
        nn.Softplus(),
        nn.Flatten(),
        nn.Unflatten(1, (6, 16)),
        nn.Linear(16, 3),  # on the last axis of (N, 6, 16)
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(18, 5),
        nn.Identity(),
    )
    conv1d = nn.Sequential(
        nn.Conv1d(1, 3, 4, stride=3), nn.GELU(), nn.Flatten(), nn.Linear(24, 4), nn.ELU()
    )
    return [(conv2d, (2, 12, 13)), (conv1d, (1, 27))]  # output padding 1 and 2


@pytest.mark.parametrize("index", [0, 1])
def test_sequential_rows_are_the_jacobian_and_differentiate_like_it(index: int) -> None:
    """Hand-pulled rows (strides, dilation, groups, odd sizes, output padding, activations,
    reshapes, a Linear on a middle axis) against autograd, and the gradient of a weighted
    diag(J_hᵀJ_h) (second derivatives) against torch.func's rows, float64 at 1e-10."""
    module, shape = _layered_maps()[index]
    module = module.double()
    m = math.prod(shape)

    def flat(x: Tensor) -> Tensor:
        return module(x.reshape(-1, *shape)).reshape(x.shape[0], -1)

    x = torch.randn(3, m, dtype=torch.float64, requires_grad=True)
    rows = sequential_rows(module, x, shape, below=m)
    assert rows is not None
    reference = autograd_jacobian(flat, x.detach())  # (N, c, m)
    scale = reference.abs().max()
    assert float((rows.permute(1, 0, 2) - reference).abs().max().detach() / scale) < 1e-10
    w = torch.rand(3, m, dtype=torch.float64)
    got = torch.autograd.grad((w * (rows * rows).sum(0)).sum(), x)[0]
    expected = feature_jacobian(flat, x, mode="reverse")
    ref = torch.autograd.grad((w * (expected * expected).sum(1)).sum(), x)[0]
    assert float((got - ref).abs().max() / ref.abs().max()) < 1e-10


def test_sequential_rows_declines_what_it_has_no_rule_for() -> None:
    x = torch.randn(2, 8, dtype=torch.float64)
    assert sequential_rows(lambda t: t, x, below=8) is None  # type: ignore[arg-type]
    assert sequential_rows(nn.Sequential(nn.LayerNorm(8)).double(), x, below=8) is None
    assert sequential_rows(nn.Sequential(nn.ReLU(inplace=True)), x, below=8) is None
    assert sequential_rows(nn.Sequential(nn.Dropout(0.5)), x, below=8) is None  # training
    assert sequential_rows(nn.Sequential(nn.Flatten(0)), x, below=8) is None  # mixes points
    assert sequential_rows(nn.Sequential(nn.Flatten(-2)), x, below=8) is None  # the same
    wide = nn.Sequential(nn.Linear(8, 8)).double()
    assert sequential_rows(wide, x, below=8) is None  # c >= m: forward mode is cheaper
    assert sequential_rows(wide, x, below=9) is not None


def test_sequential_rows_pull_back_given_cotangents() -> None:
    """Shared covectors ``u`` (Hutchinson's probes) instead of the unit vectors: ``uᵀ J_h``."""
    module, shape = _layered_maps()[0]
    module = module.double()
    m = math.prod(shape)
    x = torch.randn(3, m, dtype=torch.float64)
    jac = sequential_rows(module, x, shape, below=m)
    assert jac is not None
    u = rademacher_probes(4, 1, 5, seed=2, dtype=x.dtype, device=x.device)[:, 0]
    rows = sequential_rows(module, x, shape, below=1, cotangents=u)  # below is not tested
    assert rows is not None and rows.shape == (4, 3, m)
    torch.testing.assert_close(rows, torch.einsum("kc,cnm->knm", u, jac), rtol=0, atol=1e-12)
    shared = rademacher_probes(4, 1, 5, seed=2, dtype=x.dtype, device=x.device)
    flat = lambda t: module(t.reshape(-1, *shape)).reshape(t.shape[0], -1)  # noqa: E731
    torch.testing.assert_close(
        hutchinson_feature_diagonal(flat, x, shared), (rows * rows).mean(0), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(
        hutchinson_feature_diagonal(flat, x, shared.expand(4, 3, 5)), (rows * rows).mean(0)
    )
    with pytest.raises(ValueError, match=r"cotangents must have shape \(K, 5\)"):
        sequential_rows(module, x, shape, below=m, cotangents=u[:, :4])
