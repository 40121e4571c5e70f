"""EnergyOptions: every option checked once, by name and allowed range, wherever it enters."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import torch

from latentgeo.curves import CubicSpline
from latentgeo.metrics import as_metric
from latentgeo.solvers import EnergyOptions, connecting_geodesic, minimize_energy
from latentgeo.solvers.energy.options import explicit_options, with_options
from latentgeo.testing import StereographicSphere

SPHERE = StereographicSphere()

# every numeric option: (the nearest bad value, the nearest allowed value)
EDGES: dict[str, tuple[float, float]] = {
    "max_iter": (-1, 0),
    "tol": (0.0, 1e-300),
    "num_points": (0, 1),
    "nodes": (0, 1),
    "refine_tol": (-1e-12, 0.0),
    "max_knots": (-1, 0),
    "lr": (0.0, 1e-12),
    "patience": (0, 1),
    "history": (0, 1),
    "precondition_every": (0, 1),
}


def _numeric_fields() -> dict[str, type]:
    """The fields of EnergyOptions typed int or float (optionally None), by their hints."""
    hints = typing.get_type_hints(EnergyOptions)
    out = {}
    for field in dataclasses.fields(EnergyOptions):
        kinds = set(typing.get_args(hints[field.name])) or {hints[field.name]}
        numeric = kinds & {int, float}
        if numeric:
            out[field.name] = numeric.pop()
    return out


def _bad_values(name: str, kind: type) -> list[object]:
    values: list[object] = [EDGES[name][0], -5, "3", True]
    if kind is int:
        values.append(2.5)
    else:
        values += [math.nan, math.inf, -math.inf]
    return values


def test_every_numeric_option_has_its_edges_listed() -> None:
    # a new numeric option must join EDGES (and so be checked below)
    assert set(_numeric_fields()) == set(EDGES)


@pytest.mark.parametrize("name", sorted(EDGES))
def test_a_bad_numeric_option_is_refused_naming_it(name: str) -> None:
    kind = _numeric_fields()[name]
    for bad in _bad_values(name, kind):
        with pytest.raises(ValueError, match=rf"^{name} must be .*(>= |> )"):
            EnergyOptions(**{name: bad})
    good = EnergyOptions(**{name: EDGES[name][1]})
    assert getattr(good, name) == EDGES[name][1]


@pytest.mark.parametrize("name", sorted(EDGES))
def test_entry_points_refuse_it_before_any_work(name: str) -> None:
    z0 = torch.zeros(1, 2, dtype=torch.float64)
    z1 = torch.ones(1, 2, dtype=torch.float64)
    bad = EDGES[name][0]
    with pytest.raises(ValueError, match=f"^{name} must be"):
        minimize_energy(as_metric(SPHERE), CubicSpline(z0, z1), **{name: bad})
    with pytest.raises(ValueError, match=f"^{name} must be"):
        connecting_geodesic(SPHERE, z0, z1, method="spline", **{name: bad})


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"estimator": "x"}, ValueError, "estimator must be one of"),
        ({"optimizer": "sgd"}, ValueError, "optimizer must be"),
        ({"estimator": "sampled"}, ValueError, "optimizer='adam'"),
        ({"refine": 1}, ValueError, "refine must be True, False or None"),
        ({"reparametrize": None}, ValueError, "reparametrize must be True or False"),
        ({"progress": "yes"}, ValueError, "progress must be True or False"),
        ({"generator": 0}, TypeError, "generator must be a torch.Generator"),
    ],
)
def test_other_bad_options(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        EnergyOptions(**options)


def test_options_are_frozen_and_keyword_only() -> None:
    opts = EnergyOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.max_iter = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        EnergyOptions("metric")  # type: ignore[misc]


def test_keywords_that_differ_from_the_defaults_override_options() -> None:
    default = EnergyOptions()
    assert (
        explicit_options({"max_iter": default.max_iter, "tol": None, "refine_tol": None}, "f") == {}
    )
    history = float(default.history)
    assert explicit_options({"max_iter": 7, "lr": 0.05, "history": history}, "f") == {
        "max_iter": 7,
        "history": history,  # not the default's type: kept, so that it is checked (and refused)
    }
    with pytest.raises(TypeError, match="f got unknown option"):
        explicit_options({"max_iters": 7}, "f")
    base = EnergyOptions(max_iter=3, history=2)
    assert with_options(base, {"max_iter": default.max_iter}, "f") is base
    assert with_options(base, {"max_iter": 9}, "f") == EnergyOptions(max_iter=9, history=2)
    with pytest.raises(TypeError, match="options must be an EnergyOptions"):
        with_options({"max_iter": 3}, {}, "f")  # type: ignore[arg-type]


def test_minimize_energy_with_options_equals_keywords() -> None:
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    z1 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    metric = as_metric(SPHERE)
    keywords = minimize_energy(metric, CubicSpline(z0, z1), max_iter=6, history=3, tol=1e-7)
    options = EnergyOptions(max_iter=6, history=3, tol=1e-7)
    packed = minimize_energy(metric, CubicSpline(z0, z1), options=options)
    assert torch.equal(keywords.length, packed.length)
    assert torch.equal(keywords.iterations, packed.iterations)
    # a keyword next to options overrides it
    one = minimize_energy(metric, CubicSpline(z0, z1), options=options, max_iter=1)
    assert one.iterations.tolist() == [1, 1, 1] and one.status == ["max_iter"] * 3
