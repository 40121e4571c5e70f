"""Energy methods as objects: the same results as their string aliases, options checked."""

from __future__ import annotations

import pytest
import torch

from latentgeo.solvers import (
    DiscreteEnergy,
    EnergyMethod,
    EnergyOptions,
    GeodesicMethod,
    NeuralEnergy,
    SplineEnergy,
    Status,
    available_methods,
    connecting_geodesic,
)
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()


def _pairs(n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    z0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return z0, z1


def _same(a, b) -> None:
    assert torch.equal(a.length, b.length) and torch.equal(a.energy, b.energy)
    assert torch.equal(a.iterations, b.iterations) and a.status == b.status
    assert a.method == b.method
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    assert torch.equal(a.curve(t), b.curve(t))


@pytest.mark.parametrize(
    ("name", "make", "options"),
    [
        ("spline", SplineEnergy, {"num_knots": 6, "max_iter": 500}),
        ("spline", SplineEnergy, {"num_knots": 3, "estimator": "metric", "refine": False}),
        ("discrete", DiscreteEnergy, {"num_points": 16, "history": 3}),
    ],
)
def test_a_method_object_equals_its_name_and_keywords(name, make, options) -> None:
    z0, z1 = _pairs()
    by_name = connecting_geodesic(SPHERE, z0, z1, method=name, **options)
    by_object = connecting_geodesic(SPHERE, z0, z1, method=make(**options))
    _same(by_name, by_object)
    assert by_object.method == name and by_object.all_converged


def test_neural_method_object_equals_its_name() -> None:
    z0, z1 = _pairs(2)
    options = {"hidden": (8,), "max_iter": 30}
    gen_a, gen_b = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    by_name = connecting_geodesic(SPHERE, z0, z1, method="neural", generator=gen_a, **options)
    method = NeuralEnergy(generator=gen_b, **options)
    _same(by_name, connecting_geodesic(SPHERE, z0, z1, method=method))
    assert method.options.generator is gen_b  # it also draws the networks' weights


def test_neural_started_from_the_spline_converges_at_once() -> None:
    """``init="spline"`` on a tanh MLP decoder 8 -> 64 -> 32: the networks fitted to the
    spline method's geodesics pass the same stationarity test within a few iterations
    (from the line they take dozens), at the same lengths; by name or object, to the bit."""
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 32)
    ).double()
    gen = torch.Generator().manual_seed(4)
    z0 = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    z1 = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    line = connecting_geodesic(decoder, z0, z1, method="neural", generator=gen)
    method = NeuralEnergy(init="spline", generator=torch.Generator().manual_seed(0))
    warm = connecting_geodesic(decoder, z0, z1, method=method)
    assert line.all_converged and warm.all_converged
    assert bool(warm.info["start_converged"].all())
    assert int(warm.iterations.max()) <= 5 < int(line.iterations.min())
    assert torch.allclose(warm.length, line.length, rtol=1e-5, atol=0)
    by_name = connecting_geodesic(
        decoder, z0, z1, method="neural", init="spline", generator=torch.Generator().manual_seed(0)
    )
    _same(by_name, warm)
    assert "init='spline'" in repr(method) and "_spline" not in repr(method)
    with pytest.raises(ValueError, match="init must be 'line' or 'spline', got 'graph'"):
        NeuralEnergy(init="graph")  # type: ignore[arg-type]


def test_neural_started_from_the_spline_is_honest_where_it_cannot_follow_it() -> None:
    """Sphere pairs: a network that fits a spline start poorly may stall, and says so; every
    pair it calls converged is at the exact distance."""
    z0, z1 = _pairs(4)
    exact = SPHERE.distance(z0, z1)
    warm = connecting_geodesic(SPHERE, z0, z1, method="neural", init="spline")
    ok = warm.converged
    assert bool(ok.any())
    assert torch.allclose(warm.length[ok], exact[ok], rtol=2e-6, atol=0)
    assert all((s is Status.CONVERGED) == bool(c) for s, c in zip(warm.status, ok, strict=True))


def test_neural_defaults_to_64_points_unless_told() -> None:
    assert NeuralEnergy().options.num_points == 64
    assert NeuralEnergy(num_points=12).options.num_points == 12
    assert NeuralEnergy(options=EnergyOptions(num_points=10)).options.num_points == 10


def test_options_object_and_keywords() -> None:
    base = EnergyOptions(max_iter=40, history=3)
    method = SplineEnergy(num_knots=4, options=base, max_iter=7)
    assert method.options == EnergyOptions(max_iter=7, history=3)
    assert SplineEnergy(options=base).options is base
    z0, z1 = _pairs()
    _same(
        connecting_geodesic(SPHERE, z0, z1, method="spline", num_knots=4, max_iter=7, history=3),
        connecting_geodesic(SPHERE, z0, z1, method=method),
    )


def test_bad_settings_are_refused_when_the_method_is_built() -> None:
    with pytest.raises(ValueError, match="num_knots must be an int >= 0"):
        SplineEnergy(num_knots=-1)
    with pytest.raises(ValueError, match="num_points must be an int >= 2"):
        DiscreteEnergy(num_points=1)
    with pytest.raises(ValueError, match="history must be an int >= 1"):
        SplineEnergy(history=0)
    with pytest.raises(TypeError, match=r"SplineEnergy got unknown option\(s\) \['max_iters'\]"):
        SplineEnergy(max_iters=3)


def test_unknown_options_to_a_named_method_are_named() -> None:
    z0, z1 = _pairs()
    for name, cls in (("spline", "SplineEnergy"), ("discrete", "DiscreteEnergy")):
        with pytest.raises(TypeError, match=rf"{cls} got unknown option\(s\) \['max_iters'\]"):
            connecting_geodesic(SPHERE, z0, z1, method=name, max_iters=3)
    with pytest.raises(TypeError, match="NeuralEnergy got unknown option"):
        connecting_geodesic(SPHERE, z0, z1, method="neural", num_knots=3)


def test_method_objects_compare_hash_and_print() -> None:
    assert SplineEnergy(num_knots=6) == SplineEnergy()
    assert SplineEnergy(num_knots=5) != SplineEnergy()
    assert SplineEnergy(max_iter=3) != SplineEnergy()
    assert DiscreteEnergy() != SplineEnergy()
    assert len({SplineEnergy(), SplineEnergy(), DiscreteEnergy()}) == 2
    assert repr(SplineEnergy(num_knots=4)).startswith(
        "SplineEnergy(num_knots=4, options=EnergyOptions(estimator=None"
    )
    assert isinstance(SplineEnergy(), GeodesicMethod)
    with pytest.raises(TypeError):
        EnergyMethod(None, {})  # type: ignore[abstract]
    assert {"spline", "discrete", "neural"} <= set(available_methods())
