"""The cone of metrics, ExplicitMetric and input validation."""

from __future__ import annotations

import pytest
import torch

from latentgeo.metrics import ExplicitMetric, Metric, ScaledMetric, SumMetric, as_metric
from latentgeo.testing import PoincareDisk
from latentgeo.testing.kinds import METRIC_KINDS, make_metric

from .reference import mlp


def _constant(mat: torch.Tensor) -> ExplicitMetric:
    return ExplicitMetric(lambda z: mat.expand(*z.shape[:-1], *mat.shape), latent_dim=2)


def test_sum_and_scale_are_metrics() -> None:
    a = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.eye(2, dtype=torch.float64)
    g = _constant(a) + 0.5 * _constant(b)
    assert isinstance(g, SumMetric)
    z = torch.zeros(4, 2, dtype=torch.float64)
    v = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(g.metric_tensor(z), (a + 0.5 * b).expand(4, 2, 2))
    torch.testing.assert_close(g.squared_norm(z, v), torch.einsum("ni,ij,nj->n", v, a + 0.5 * b, v))
    torch.testing.assert_close(
        (_constant(a) * 3).inner(z, v, 2 * v), 6 * torch.einsum("ni,ij,nj->n", v, a, v)
    )


def test_sum_of_pullback_and_explicit() -> None:
    decoder = mlp(2, 3).double()
    g = as_metric(decoder) + PoincareDisk()
    z = 0.3 * torch.rand(5, 2, dtype=torch.float64)
    expected = as_metric(decoder).metric_tensor(z) + PoincareDisk().metric_tensor(z)
    torch.testing.assert_close(g.metric_tensor(z), expected)


def test_nested_sums_flatten() -> None:
    one = _constant(torch.eye(2))
    g = one + one + one
    assert isinstance(g, SumMetric) and len(g.metrics()) == 3


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_non_positive_scale_is_rejected(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        ScaledMetric(_constant(torch.eye(2)), scale)


def test_scaling_by_non_number_is_not_supported() -> None:
    with pytest.raises(TypeError):
        _ = _constant(torch.eye(2)) * "a"  # type: ignore[operator]


def test_metric_is_abstract() -> None:
    with pytest.raises(TypeError):
        Metric()  # type: ignore[abstract]


@pytest.mark.parametrize(
    ("z", "message"),
    [
        (torch.tensor([[float("nan"), 0.0]]), "z contains NaN or Inf"),
        (torch.tensor([[float("inf"), 0.0]]), "z contains NaN or Inf"),
        (torch.zeros(3, 4), r"z must have last dimension d=2"),
        (torch.zeros(0, 2), "z must not be empty"),
        (torch.tensor(1.0), "z must have shape"),
    ],
)
def test_bad_points_raise_value_error(z: torch.Tensor, message: str) -> None:
    metric = PoincareDisk()
    metric.latent_dim = 2
    with pytest.raises(ValueError, match=message):
        metric.metric_tensor(z)


def test_bad_tangents_raise() -> None:
    metric = as_metric(mlp(2, 3))
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="v must have last dimension d=2"):
        metric.squared_norm(z, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"v of shape \(3, 2\) does not broadcast"):
        metric.squared_norm(z, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="u contains NaN"):
        metric.inner(z, torch.full((4, 2), float("nan")), z)
    with pytest.raises(TypeError, match=r"v has dtype torch\.float64"):
        metric.squared_norm(z, torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating dtype"):
        metric.squared_norm(z, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"z must be a torch\.Tensor"):
        metric.metric_tensor([[0.0, 0.0]])  # type: ignore[arg-type]


def test_metric_methods_check_points_then_each_tangent_by_name() -> None:
    """``Metric``'s own public methods (not a pull-back's overrides) check ``z`` and then
    each tangent, named as the argument; ``validate=False`` skips the checks."""
    metric = _constant(torch.eye(2)) + _constant(torch.eye(2))
    z, ok = torch.zeros(4, 2), torch.ones(4, 2)
    with pytest.raises(ValueError, match="z must have last dimension d=2"):
        metric.inner(torch.zeros(4, 3), ok, ok)
    with pytest.raises(ValueError, match="u contains NaN"):
        metric.inner(z, torch.full((4, 2), float("nan")), ok)
    with pytest.raises(ValueError, match=r"v of shape \(3, 2\) does not broadcast"):
        metric.inner(z, ok, torch.ones(3, 2))
    with pytest.raises(TypeError, match=r"v has dtype torch\.float64"):
        metric.squared_norm(z, ok.double())
    with pytest.raises(ValueError, match="z contains NaN"):
        metric.metric_tensor(torch.full((4, 2), float("nan")))
    torch.testing.assert_close(metric.inner(z, ok, 2 * ok), torch.full((4,), 8.0))
    torch.testing.assert_close(metric.squared_norm(z, ok, validate=False), torch.full((4,), 4.0))


def test_what_solvers_ask_is_answered_by_the_cone() -> None:
    """``is_pullback``, ``flat_embedding``, ``chords`` and ``geodesic_terms`` of sums,
    scalings and ensembles combine their members' answers."""
    from latentgeo.metrics import MeanMetric, christoffel_terms

    torch.manual_seed(2)
    f, h = mlp(2, 3).double(), mlp(2, 4).double()
    pf, ph = as_metric(f), as_metric(h)
    z = torch.randn(5, 2, dtype=torch.float64)
    v = torch.randn(5, 2, dtype=torch.float64)
    pos = torch.randn(2, 6, 2, dtype=torch.float64)
    for metric, members, weights in (
        (pf + 2.0 * ph, [pf, ph], [1.0, 2.0]),
        (MeanMetric([pf, ph]), [pf, ph], [0.5, 0.5]),
    ):
        assert metric.is_pullback
        assert metric.flat_embedding(z).shape == (5, 7)
        embed = metric.flat_embedding
        jac = torch.func.vmap(torch.func.jacfwd(lambda x, f=embed: f(x[None])[0]))(z)
        torch.testing.assert_close(jac.mT @ jac, metric.metric_tensor(z))
        chords = sum(w * m.chords(pos) for w, m in zip(weights, members, strict=True))
        torch.testing.assert_close(metric.chords(pos), chords)
        terms = metric.geodesic_terms(z, v)
        reference = christoffel_terms(metric, z, v)
        torch.testing.assert_close(terms.g, reference.g)
        torch.testing.assert_close(terms.b, reference.b)
    mixed = pf + PoincareDisk()
    assert not mixed.is_pullback and not (3.0 * PoincareDisk()).is_pullback
    with pytest.raises(TypeError, match="pull-back"):
        mixed.chords(pos)
    with pytest.raises(TypeError, match="pull-back"):
        (2.0 * PoincareDisk()).flat_embedding(z)
    with pytest.raises(TypeError, match="ensemble"):
        pf.sampled_chords(pos)
    # a sum with an explicit term: the pull-back part by its fast form, the rest by Christoffel
    terms = mixed.geodesic_terms(0.3 * z, v)
    reference = christoffel_terms(mixed, 0.3 * z, v)
    torch.testing.assert_close(terms.b, reference.b)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("kind", METRIC_KINDS)
def test_geodesic_terms_along_several_velocities_are_those_of_each(
    kind: str, shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every metric kind (the default repeats the points; pull-backs, their sums,
    scalings and ensembles measure ``J`` once, ``shared``, in chunks of two points):
    ``G`` and each velocity's ``b`` as :meth:`geodesic_terms` gives them alone."""
    from latentgeo.metrics import PullbackMetric, pullback

    monkeypatch.setattr(pullback, "SHARED_JACOBIAN_WORK", 0 if shared else 10**12)
    metric = make_metric(kind, 2, seed=1)
    for m in [metric, *getattr(metric, "metrics", list)()]:
        if isinstance(m, PullbackMetric):
            m.chunk_size = 2
    gen = torch.Generator().manual_seed(0)
    z = 0.4 * torch.rand(5, 2, generator=gen, dtype=torch.float64)
    v = torch.randn(3, 5, 2, generator=gen, dtype=torch.float64)
    along = metric.geodesic_terms_along(z, v)
    assert along.g.shape == (5, 2, 2) and along.b.shape == (3, 5, 2)
    for i in range(3):
        alone = metric.geodesic_terms(z, v[i])
        torch.testing.assert_close(along.g, alone.g, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(along.b[i], alone.b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["pullback", "sum", "scaled", "ensemble"])
def test_a_subclass_that_overrides_geodesic_terms_keeps_them_along_several_velocities(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subclass that changes :meth:`geodesic_terms` alone gets its own terms from
    :meth:`geodesic_terms_along` too (the faster form of its parent would bypass them)."""
    from latentgeo.metrics import pullback

    monkeypatch.setattr(pullback, "SHARED_JACOBIAN_WORK", 0)  # the faster form, if used
    metric = make_metric(kind, 2, seed=1)

    class Doubled(type(metric)):  # type: ignore[misc]
        def geodesic_terms(self, z: torch.Tensor, v: torch.Tensor):  # type: ignore[no-untyped-def]
            return super().geodesic_terms(z, v).scaled(2.0)

    metric.__class__ = Doubled
    z = 0.3 * torch.ones(3, 2, dtype=torch.float64)
    v = torch.randn(2, 3, 2, dtype=torch.float64)
    along = metric.geodesic_terms_along(z, v)
    for i in range(2):
        torch.testing.assert_close(along.b[i], metric.geodesic_terms(z, v[i]).b)
