"""The numeric checks of :mod:`latentgeo._options`, and every numeric option of the public
curve, solver and analysis entry points checked with them at the call: a bad value (zero where
it must be positive, negative, NaN, infinite, a string, a fraction for a count) raises a
``ValueError`` or ``TypeError`` that names the option.

The options are enumerated from the signatures (a keyword whose default is a number, or
whose annotation is ``int``/``float``, optional or not), from the methods registered with
``connecting_geodesic`` and from :class:`~latentgeo.solvers.EnergyOptions`: a new option
that is not in :data:`RANGES` fails :func:`test_every_numeric_option_has_a_range`, so it
cannot slip through unchecked.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from latentgeo import analysis, curves, solvers
from latentgeo._options import (
    check_bool,
    check_int,
    check_number,
    check_optional_int,
    check_optional_number,
)
from latentgeo.curves import CubicSpline
from latentgeo.metrics import as_metric
from latentgeo.solvers.connecting import _METHODS

DT = torch.float64
NUMERIC = {"int", "float", "int | None", "float | None"}

# what each option accepts: ("int", least) or ("real", "positive" | "nonnegative" | "finite")
INT = {k: ("int", k) for k in (0, 1, 2, 3)}
POS, NONNEG, FINITE = ("real", "positive"), ("real", "nonnegative"), ("real", "finite")

ENERGY: dict[str, tuple[str, Any] | None] = {
    "max_iter": INT[0],
    "tol": POS,
    "num_points": INT[1],
    "nodes": INT[1],
    "refine_tol": NONNEG,
    "max_knots": INT[0],
    "lr": POS,
    "patience": INT[1],
    "history": INT[1],
    "precondition_every": INT[1],
}

# the options of the entry points, by entry point; None: exempt (the reason beside it)
EXP_MAP: dict[str, tuple[str, Any] | None] = {
    "t": FINITE,
    "rtol": POS,
    "atol": NONNEG,
    "steps": INT[1],
    "max_steps": INT[1],
    "num_points": INT[2],
}
RANGES: dict[str, dict[str, tuple[str, Any] | None]] = {
    "curves.CubicSpline": {"num_knots": INT[0]},
    "curves.CubicSpline.fit": {"ridge": NONNEG},
    "curves.DiscreteCurve": {"num_points": INT[2]},
    "curves.constant_speed": {"min_pieces": INT[1], "nodes": INT[1]},
    "curves.curve_energy": {"num_points": INT[1]},
    "curves.curve_length": {"num_points": INT[1]},
    "solvers.DiscreteEnergy": {"num_points": INT[2]},
    "solvers.SplineEnergy": {"num_knots": INT[0]},
    "solvers.exp_map": {**EXP_MAP, "memory_budget": POS},
    "solvers.exp_map_result": {**EXP_MAP, "memory_budget": POS},
    "solvers.log_map": {
        "rtol": POS,
        "atol": NONNEG,
        "max_iter": INT[1],
        "max_steps": INT[1],
        "memory_budget": POS,
    },
    "solvers.connecting_geodesic": {"memory_budget": POS},
    "solvers.log_map_result": {
        "rtol": POS,
        "atol": NONNEG,
        "max_iter": INT[1],
        "max_steps": INT[1],
        "memory_budget": POS,
    },
    "solvers.geodesic_curve": {
        "num_points": INT[2],
        "rtol": POS,
        "atol": NONNEG,
        "steps": INT[1],
        "max_steps": INT[1],
    },
    "solvers.EnergyOptions": ENERGY,
    "solvers.minimize_energy": ENERGY,
    "method.spline": ENERGY,  # the energy solver's options, passed on by the methods
    "method.discrete": ENERGY,
    "method.bvp": {
        "num_nodes": INT[2],
        "tol": POS,
        "bc_tol": POS,
        "max_nodes": INT[2],
        "num_knots": INT[2],
    },
    "method.graph": {"k": INT[1], "segment_nodes": INT[1], "num_knots": INT[0], "samples": INT[2]},
    "method.shooting": {
        "rtol": POS,
        "atol": NONNEG,
        "max_iter": INT[1],
        "max_steps": INT[1],
        "num_points": INT[2],
    },
    "analysis.coefficient_of_variation": {"ddof": INT[0]},
    "analysis.converged_note": {"converged": INT[0], "total": INT[0]},
    "analysis.convergence_warning": {"converged": INT[0], "total": INT[0]},
    "analysis.distance_matrix": {
        "tile": INT[1],
        "workers": INT[1],
        "neighbours": INT[1],
        "threads": INT[1],
        "retries": INT[0],
        "timeout": POS,
    },
    "analysis.geodesic_distances": {"chunk_size": INT[1]},
    "analysis.geodesic_kmeans": {
        "k": INT[1],
        "num_restarts": INT[1],
        "max_iter": INT[1],
        "chunk_size": INT[1],
    },
    "analysis.iter_geodesics": {"chunk_size": INT[1]},
    "analysis.kmedoids": {"k": INT[1], "num_restarts": INT[1], "max_iter": INT[1]},
    "analysis.metric_inverse_sqrt": {"eps": NONNEG},
    "analysis.michelis_pairs": {"num_pairs": INT[1], "latent_dim": INT[1], "step_size": POS},
    "analysis.monte_carlo_relative_improvement": {
        "num_pairs": INT[1],
        "latent_dim": INT[1],
        "step_size": POS,
        "num_points": INT[2],
        "chunk_size": INT[1],
    },
    "analysis.nearest_neighbour_spacing": {"chunk_size": INT[1]},
    "analysis.off_data_fraction": {"factor": POS, "spacing": POS, "chunk_size": INT[1]},
    "analysis.pairwise_geodesic_distances": {"chunk_size": INT[1]},
    "analysis.relative_improvement": {
        "num_points": INT[2],
        "chunk_size": INT[1],
        "score_points": INT[2],
    },
    "analysis.pairwise_geodesics": {"chunk_size": INT[1], "max_repeats": INT[1]},
    "analysis.round_robin": {"n": INT[2]},
    "analysis.riemannian_random_walk": {"num_steps": INT[0], "step_size": POS, "eps": NONNEG},
    "analysis.straight_line_length": {"num_points": INT[2]},
}

# results and records (what entry points return, not what users call with options)
OUTPUTS = {
    "RetrainingComparison",
    "DistanceMatrixResult",
    "IntegrationResult",
    "JobProgress",
    "KMeansResult",
    "PairedTTest",
}


# ------------------------------------------------------------------ enumeration
def _numeric(p: inspect.Parameter) -> bool:
    if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
        return False
    default = p.default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return True
    return str(p.annotation) in NUMERIC


def _callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    for prefix, module in (("curves", curves), ("solvers", solvers), ("analysis", analysis)):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if name in OUTPUTS:
                    continue
                yield f"{prefix}.{name}", obj
                for attr, member in vars(obj).items():
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{prefix}.{name}.{attr}", member
            elif callable(obj):
                yield f"{prefix}.{name}", obj
    for name, fn in _METHODS.items():
        yield f"method.{name}", fn


def enumerated() -> dict[str, set[str]]:
    """``{entry point: its numeric options}`` read from the code."""
    found: dict[str, set[str]] = {}
    for key, fn in _callables():
        if dataclasses.is_dataclass(fn):
            names = {f.name for f in dataclasses.fields(fn) if str(f.type) in NUMERIC}
        else:
            target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
            names = {p.name for p in inspect.signature(target).parameters.values() if _numeric(p)}
        if names:
            found[key] = names
    return found


def test_every_numeric_option_has_a_range() -> None:
    found = enumerated()
    missing = {k: sorted(v - set(RANGES.get(k, {}))) for k, v in found.items()}
    assert {k: v for k, v in missing.items() if v} == {}, "add these options to RANGES"
    gone = {k: sorted(set(v) - found.get(k, set())) for k, v in RANGES.items() if v is not ENERGY}
    assert {k: v for k, v in gone.items() if v} == {}, "RANGES names options that do not exist"


# ------------------------------------------------------------------ the calls
def _metric() -> Any:
    return as_metric(lambda z: torch.cat([z, z.sin()], -1))


def _z(n: int = 3) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, 2 * n, dtype=DT).reshape(n, 2)


def _spline() -> CubicSpline:
    return CubicSpline(_z(2), _z(2) + 1.0)


def _call(key: str, option: str, value: object) -> None:
    """Call the entry point ``key`` with valid arguments and ``option=value``."""
    g, z, kw = _metric(), _z(), {option: value}
    name = key.split(".", 1)[1]
    if key.startswith("method."):
        extra: dict[str, Any] = {"points": _z(8)} if name == "graph" else {}
        solvers.connecting_geodesic(g, z, z + 1.0, method=name, **extra, **kw)
    elif key == "solvers.EnergyOptions":
        solvers.EnergyOptions(**kw)
    elif key == "solvers.minimize_energy":
        solvers.minimize_energy(g, _spline(), **kw)
    elif key == "curves.CubicSpline":
        CubicSpline(z, z + 1.0, **kw)
    elif key == "curves.CubicSpline.fit":
        t = torch.linspace(0.0, 1.0, 5, dtype=DT)
        _spline().fit(t, z[:2, None] + t[None, :, None], **kw)
    elif key == "curves.DiscreteCurve":
        curves.DiscreteCurve(z, z + 1.0, **kw)
    elif key in ("curves.constant_speed", "curves.curve_energy", "curves.curve_length"):
        getattr(curves, name)(g, _spline(), **kw)
    elif key in ("solvers.DiscreteEnergy", "solvers.SplineEnergy"):
        getattr(solvers, name)(**kw)
    elif key in ("solvers.exp_map", "solvers.exp_map_result", "solvers.geodesic_curve"):
        getattr(solvers, name)(g, z, torch.ones_like(z), **kw)
    elif key.startswith("solvers."):  # the log maps
        getattr(solvers, name)(g, z, z + 0.1, **kw)
    else:
        _call_analysis(name, g, z, kw)


def _call_analysis(name: str, g: Any, z: torch.Tensor, kw: dict[str, Any]) -> None:
    fn = getattr(analysis, name)
    if name == "coefficient_of_variation":
        fn(torch.rand(4, 3, dtype=DT), **kw)
    elif name in ("converged_note", "convergence_warning"):
        fn(**{"converged": 0, "total": 2, **kw})
    elif name == "distance_matrix":
        fn("no-such-checkpoint.pt", z, **kw)
    elif name in ("geodesic_distances", "iter_geodesics"):
        out = fn(g, z, z + 1.0, **kw)
        if inspect.isgenerator(out):
            next(out)
    elif name == "geodesic_kmeans":
        fn(g, z, **{"k": 2, **kw})
    elif name == "kmedoids":
        fn(torch.rand(4, 4, dtype=DT), **{"k": 2, **kw})
    elif name == "metric_inverse_sqrt":
        fn(torch.eye(2, dtype=DT)[None], **kw)
    elif name in ("michelis_pairs", "monte_carlo_relative_improvement"):
        fn(g, **{"num_pairs": 2, "latent_dim": 2, "dtype": DT, **kw})
    elif name == "nearest_neighbour_spacing":
        fn(z, **kw)
    elif name == "off_data_fraction":
        fn(z, z, **kw)
    elif name in ("pairwise_geodesic_distances", "pairwise_geodesics"):
        fn(g, z, **kw)
    elif name == "round_robin":
        fn(**kw)
    elif name in ("relative_improvement", "straight_line_length"):
        fn(g, z, z + 1.0, **kw)
    elif name == "riemannian_random_walk":
        fn(g, z, **{"num_steps": 2, "step_size": 0.1, **kw})
    else:
        raise AssertionError(f"no call for analysis.{name}: add one")


def _bad(kind: tuple[str, Any]) -> list[object]:
    if kind[0] == "int":
        least = kind[1]
        return [least - 1, -1, 2.5, float("nan"), "3", True][(0 if least > 0 else 1) :]
    nan, inf = float("nan"), float("inf")
    return {
        "positive": [0, 0.0, -1.0, nan, inf, "1"],
        "nonnegative": [-1.0, nan, inf, "1"],
        "finite": [nan, inf, "1"],
    }[kind[1]]


CASES = [
    pytest.param(key, option, value, id=f"{key}-{option}={value!r}")
    for key, options in RANGES.items()
    for option, kind in options.items()
    if kind is not None
    for value in _bad(kind)
]


@pytest.mark.parametrize(("key", "option", "value"), CASES)
def test_a_bad_value_is_refused_at_the_call_naming_the_option(
    key: str, option: str, value: object
) -> None:
    with pytest.raises((ValueError, TypeError)) as err:
        _call(key, option, value)
    assert option in str(err.value), f"{key}({option}={value!r}): {err.value}"


def test_the_bad_values_are_bad() -> None:
    # a sanity check of the table itself: every kind's first bad value is just out of range
    assert _bad(INT[1])[0] == 0 and _bad(INT[0])[0] == -1 and _bad(POS)[0] == 0
    assert all(not (isinstance(v, float) and math.isfinite(v) and v >= 0) for v in _bad(NONNEG))


@pytest.mark.parametrize(
    ("call", "want"),
    [
        (lambda: check_number(2, "rtol"), 2.0),
        (lambda: check_number(0, "atol", positive=False), 0.0),
        (lambda: check_optional_number(None, "rtol"), None),
        (lambda: check_int(1, "max_iter"), 1),
        (lambda: check_int(0, "k", minimum=0), 0),
        (lambda: check_optional_int(None, "latent_dim"), None),
    ],
)
def test_the_checks_return_what_they_accept(call: Any, want: object) -> None:
    got = call()
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: check_number(0, "rtol"), r"rtol must be a finite number > 0, got 0"),
        (lambda: check_number(-1e-9, "atol", positive=False), r"atol must be a finite number >= 0"),
        (lambda: check_number(float("inf"), "tol"), "tol must be a finite number"),
        (lambda: check_number(True, "tol"), "got True"),
        (lambda: check_int(2.0, "max_iter"), r"max_iter must be an int >= 1, got 2\.0"),
        (lambda: check_int(False, "k", minimum=0), "got False"),
        (lambda: check_optional_int(0, "latent_dim"), "latent_dim must be an int >= 1"),
    ],
)
def test_the_checks_name_the_option_and_its_range(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_check_bool_accepts_only_a_bool() -> None:
    assert check_bool(False, "progress") is False
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="progress must be a bool"):
            check_bool(bad, "progress")
