"""curve_length / curve_energy: estimators agree on fine grids, exact cases, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.curves import CubicSpline, DiscreteCurve, curve_energy, curve_length
from latentgeo.metrics import ExplicitMetric
from latentgeo.models import EnsembleDecoder
from latentgeo.testing import LinearMap, PoincareDisk, StereographicSphere


def _wiggly(b: int = 4, d: int = 2) -> CubicSpline:
    z0, z1 = torch.randn(b, d, dtype=torch.float64), torch.randn(b, d, dtype=torch.float64)
    curve = CubicSpline(z0, z1, num_knots=4)
    with torch.no_grad():
        curve.inner.add_(0.3 * torch.randn_like(curve.inner))
    return curve


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 5)).double()


def test_straight_line_under_a_linear_decoder() -> None:
    a = torch.randn(5, 3, dtype=torch.float64)
    dec = LinearMap(a)
    z0, z1 = torch.randn(3, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    curve = CubicSpline(z0, z1)
    exact = dec.distance(z0, z1)
    for est in ("metric", "chord"):
        torch.testing.assert_close(curve_length(dec, curve, estimator=est).detach(), exact)
        torch.testing.assert_close(curve_energy(dec, curve, estimator=est).detach(), exact**2)


def test_metric_and_chord_agree_on_fine_grids() -> None:
    curve = _wiggly()
    dec = _mlp(0)
    metric_len = curve_length(dec, curve, num_points=2048).detach()
    chord_len = curve_length(dec, curve, estimator="chord", num_points=4001).detach()
    torch.testing.assert_close(chord_len, metric_len, rtol=1e-6, atol=0)
    assert bool((chord_len <= metric_len * (1 + 1e-10)).all())  # chords are never longer
    metric_e = curve_energy(dec, curve, num_points=2048).detach()
    chord_e = curve_energy(dec, curve, estimator="chord", num_points=4001).detach()
    torch.testing.assert_close(chord_e, metric_e, rtol=1e-5, atol=0)
    assert bool((chord_e <= metric_e * (1 + 1e-10)).all())
    # length² ≤ energy (Cauchy–Schwarz), equality only at constant speed
    assert bool((metric_len**2 <= metric_e * (1 + 1e-12)).all())


def test_quadrature_converges_on_the_sphere() -> None:
    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    curve = CubicSpline(z0, -z0, num_knots=3)  # the line through 0: half a great circle
    for n in (16, 64):
        torch.testing.assert_close(
            curve_length(sphere, curve, num_points=n).detach(),
            torch.tensor([torch.pi], dtype=torch.float64),
        )


def test_ensemble_estimators() -> None:
    members = [_mlp(1), _mlp(2), _mlp(3)]
    ens = EnsembleDecoder(members)
    curve = _wiggly()
    metric_e = curve_energy(ens, curve, num_points=512).detach()
    chord_e = curve_energy(ens, curve, estimator="chord", num_points=4001).detach()
    torch.testing.assert_close(chord_e, metric_e, rtol=1e-5, atol=0)
    gen = torch.Generator().manual_seed(3)
    sampled = curve_energy(ens, curve, estimator="sampled", num_points=400, generator=gen)
    gen = torch.Generator().manual_seed(3)
    again = curve_energy(ens, curve, estimator="sampled", num_points=400, generator=gen)
    torch.testing.assert_close(sampled, again)
    # biased high: members' disagreement adds to every segment
    assert bool((sampled.detach() > metric_e).all())
    # with identical members the sampled form is the chord form
    same = EnsembleDecoder([members[0]] * 3)
    torch.testing.assert_close(
        curve_energy(same, curve, estimator="sampled", num_points=300).detach(),
        curve_energy(members[0], curve, estimator="chord", num_points=300).detach(),
    )


def test_gradients_flow_to_the_curve() -> None:
    curve = _wiggly()
    curve_energy(_mlp(0), curve).sum().backward()
    assert curve.inner.grad is not None and bool(torch.isfinite(curve.inner.grad).all())


def test_discrete_curve_length_is_exact_for_constant_metrics() -> None:
    curve = DiscreteCurve(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), num_points=3)
    with torch.no_grad():
        curve.inner.copy_(torch.tensor([[[3.0, 0.0]]]))
    torch.testing.assert_close(curve_length(lambda z: z, curve).detach(), torch.tensor([7.0]))


def test_errors() -> None:
    curve = _wiggly()
    with pytest.raises(ValueError, match="estimator"):
        curve_length(_mlp(0), curve, estimator="nope")
    with pytest.raises(TypeError, match="pull-back"):
        curve_length(PoincareDisk(), curve, estimator="chord")
    with pytest.raises(TypeError, match="ensemble"):
        curve_length(_mlp(0), curve, estimator="sampled")
    with pytest.raises(ValueError, match="num_points"):
        curve_length(_mlp(0), curve, num_points=1)
    with pytest.raises(TypeError, match="Curve"):
        curve_length(_mlp(0), torch.zeros(3, 2))
    wrong_dim = ExplicitMetric(lambda z: torch.eye(3, dtype=z.dtype), latent_dim=3)
    with pytest.raises(ValueError, match="latent dimension"):
        curve_length(wrong_dim, curve)


def test_chords_through_the_final_linear_layer_equal_the_direct_chords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """‖W Δh‖² = Δhᵀ (WᵀW) Δh: the shortcut gives the plain chords and their gradients."""
    from latentgeo.curves.length import chord_differences
    from latentgeo.metrics import as_metric

    torch.manual_seed(5)
    decoders = [nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 9)).double() for _ in "abc"]
    x = torch.randn(4, 7, 2, dtype=torch.float64, requires_grad=True)

    def direct(dec: nn.Module) -> torch.Tensor:
        out = dec(x)
        return ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)

    expected = sum(direct(d) for d in decoders) / 3
    (g_expected,) = torch.autograd.grad(expected.sum(), x)
    metric = as_metric(EnsembleDecoder(decoders))

    def no_output(*args: object) -> torch.Tensor:
        raise AssertionError("the decoder's output was computed")

    for member in metric.metrics():
        monkeypatch.setattr(member, "flat_embedding", no_output)
    chords = chord_differences(metric, x)
    (g_chords,) = torch.autograd.grad(chords.sum(), x)
    torch.testing.assert_close(chords, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_chords, g_expected, rtol=1e-10, atol=1e-12)


class _GaussianHeads(nn.Module):
    """A user-style decoder: a trunk, a linear mean head and a softplus std head."""

    def __init__(self, constant_scale: bool = False) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(2, 4), nn.Tanh())
        self.mean = nn.Linear(4, 9)
        self.std = nn.Linear(4, 9)
        self.scale = nn.Parameter(torch.rand(9) + 0.5)
        self.constant_scale = constant_scale

    def forward(self, z: torch.Tensor) -> torch.distributions.Normal:
        h = self.trunk(z)
        if self.constant_scale:  # broadcast (9,) -> (N, 9): the parts are not the output
            return torch.distributions.Normal(self.mean(h), self.scale)
        return torch.distributions.Normal(self.mean(h), nn.functional.softplus(self.std(h)))


@pytest.mark.parametrize("constant_scale", [False, True])
def test_chords_of_a_gaussian_decoder_part_by_part(constant_scale: bool) -> None:
    """‖Δ(μ, σ)‖² = Δhᵀ(WᵀW)Δh + ‖Δσ‖² when μ is a linear head; checked, and refused when
    broadcasting makes the parts differ from the output."""
    from latentgeo.curves.length import chord_differences
    from latentgeo.metrics import as_metric
    from latentgeo.metrics.embeddings import DecoderEmbedding

    torch.manual_seed(3)
    decoder = _GaussianHeads(constant_scale).double()
    metric = as_metric(decoder)
    x = torch.randn(3, 6, 2, dtype=torch.float64, requires_grad=True)
    out = DecoderEmbedding(decoder)(x.reshape(-1, 2)).reshape(3, 6, -1)
    expected = ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)
    (g_expected,) = torch.autograd.grad(expected.sum(), x)
    chords = chord_differences(metric, x)
    (g_chords,) = torch.autograd.grad(chords.sum(), x)
    torch.testing.assert_close(chords, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_chords, g_expected, rtol=1e-10, atol=1e-12)
    assert metric._parts_ok is (not constant_scale)


@pytest.mark.parametrize("kind", ["inplace", "tanh_"])
def test_chords_of_in_place_decoders(kind: str) -> None:
    """In-place calls are traced as eager execution sees them on the chord path too (a final
    ``sigmoid_`` on a linear layer's output must not be skipped as a final linear layer)."""
    from latentgeo.curves.length import chord_differences
    from latentgeo.metrics import as_metric

    from ..metrics.reference import InplaceDecoder, TanhInplace

    torch.manual_seed(2)
    decoder = (InplaceDecoder if kind == "inplace" else TanhInplace)().double()
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    out = decoder(x.reshape(-1, 2)).reshape(3, 7, -1)
    expected = ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)
    chords = chord_differences(as_metric(decoder), x)
    torch.testing.assert_close(chords, expected, rtol=1e-12, atol=1e-14)


def _indefinite() -> ExplicitMetric:
    """``G = diag(1, −1)``: ``vᵀ G v = v₁² − v₂²``, negative along ``e₂``."""

    def tensor(z: torch.Tensor) -> torch.Tensor:
        one = torch.ones_like(z[..., 0])
        return torch.diag_embed(torch.stack([one, -one], -1))

    return ExplicitMetric(tensor)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_indefinite_metric_gives_no_length_instead_of_a_clamped_one(dtype: torch.dtype) -> None:
    z0 = torch.zeros(3, 2, dtype=dtype)
    z1 = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]], dtype=dtype)
    for curve in (CubicSpline(z0, z1), DiscreteCurve(z0, z1, num_points=5)):
        length = curve_length(_indefinite(), curve)
        assert length[0].item() == pytest.approx(2.0, rel=1e-5)
        assert torch.isnan(length[1])  # −1 along the whole segment: was clamped to 0 before
        assert length[2].item() == pytest.approx(0.75**0.5, rel=1e-5)  # 1 − 0.25 > 0: valid


def test_rounding_negatives_of_a_semidefinite_metric_are_zero_not_invalid() -> None:
    from latentgeo.curves.length import invalid_squared_norm_rows, lengths_from_squared_norms

    sq = torch.tensor([[1.0, -1e-17, 1.0], [1.0, -1e-3, 1.0], [1.0, float("inf"), 1.0]]).double()
    assert invalid_squared_norm_rows(sq).tolist() == [False, True, True]
    w = torch.full((1, 3), 1 / 3, dtype=torch.float64)
    length = lengths_from_squared_norms(sq, w)
    assert length[0].item() == pytest.approx(2 / 3) and torch.isnan(length[1:]).all()
    assert invalid_squared_norm_rows(torch.zeros(2, 4)).tolist() == [False, False]


def test_a_curve_of_another_dtype_than_the_decoder_fails_at_the_entry() -> None:
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    curve = DiscreteCurve(torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2).double())
    for estimator in ("metric", "chord"):
        with pytest.raises(TypeError, match=r"dtype torch\.float64 but the decoder's parameters"):
            curve_length(net, curve, estimator=estimator)
