"""The energy solver's options as one typed object, checked once where they enter.

:class:`EnergyOptions` holds every option of
:func:`~latentgeo.solvers.minimize_energy` and of the ``"spline"``,
``"discrete"`` and ``"neural"`` methods; building one validates it, so a bad
value is refused before any work, with a ``ValueError`` that names the option
and its allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from numbers import Real
from typing import Any

import torch

from latentgeo.curves.length import ESTIMATORS

__all__ = ["OPTIMIZERS", "EnergyOptions", "explicit_options", "with_options"]

#: the optimisers ``minimize_energy`` runs
OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_TOL = 1e-5
DEFAULT_REFINE_TOL = 1e-4
# keywords whose ``None`` means "the default" (the keyword signatures allow it)
_NONE_MEANS_DEFAULT = frozenset({"tol", "refine_tol"})


@dataclass(frozen=True, kw_only=True)
class EnergyOptions:
    """Options of the energy solver, validated when built.

    What ``converged`` means with these options: the pair's curve is a
    stationary point of the energy (a geodesic) to the tolerances stated here:
    the optimiser met ``tol`` and, for refined splines, the last full
    refinement of the knots changed the curve's length by less than
    ``refine_tol / 2`` relative. A geodesic found this way is locally shortest
    at best, not necessarily the shortest curve: on the sphere, from the
    straight line between points on a line through the origin, it is the
    longer great-circle arc (length ``2π − d``). On 768 random pairs of the
    stereographic sphere the converged ones (757; the other 11 reached
    ``max_knots``) were off by 1e-8 (median; 9e-8 in float32) and 2.2e-5
    (worst, both dtypes), and on the Poincaré disk by at most 1.3e-6
    (``tests/solvers/test_connecting.py``).

    Attributes:
        estimator: the energy minimised: ``"metric"`` (Gauss–Legendre
            quadrature of ``γ̇ᵀ G γ̇``, any metric), ``"chord"`` (embedding
            differences, pull-backs; no Jacobian) or ``"sampled"`` (ensembles,
            stochastic; only with ``optimizer="adam"``). ``None``: ``"chord"``
            for pull-backs (decoders, ensembles), ``"metric"`` otherwise.
        optimizer: ``"lbfgs"`` (per-pair L-BFGS) or ``"adam"`` (per-pair Adam).
        max_iter: most iterations per pair, all refinement levels together
            (``>= 0``; 0 reports the initial curves). Pairs stop at their own
            tolerance, so the budget is spent only by the slow ones: on the
            RBF-precision VAE of ``benchmarks/geodesics.py`` the median pair
            takes about 100 iterations and the slowest converge after 2000–3000.
        tol: relative energy tolerance per pair (``> 0``): the optimiser stops a pair
            when its last step lowered the energy by less than ``tol`` relative and
            the next is predicted to lower it by less.
        num_points: least number of energy evaluation points per curve
            (``>= 1``; ``None``: ``nodes`` per span for ``"metric"``, 24 and at
            least two per span for the chord estimators).
        nodes: Gauss–Legendre nodes per span for ``"metric"`` (``>= 1``).
        refine: insert knots until the length settles (``None``: for splines).
        refine_tol: a pair is done when a full refinement changed its length by
            at most ``refine_tol / 2`` relative (``>= 0``; the energy's relative
            change at constant speed, ``E = L²``; the length is measured, as the
            speed of the parametrisation, which evens out from level to level,
            changes the energy and not the length). A pair that cannot be
            refined within ``max_knots`` before that is not converged
            (``max_iter``, with a message). 0 refines as far as ``max_knots``
            allows and reports the pairs converged at ``tol``.
        max_knots: most interior knots a spline may grow to (``>= 0``). A
            refinement inserts one knot per span (6 → 13 → 27 → 55 → 111 ...)
            and is not made if it would exceed ``max_knots`` (at the default
            256, 223 knots is the last level). 256, not 64: on the 435 pairs of
            the RBF-precision VAE of ``benchmarks/geodesics.py`` 140 settle
            within 64 knots, 324 within 256 and 351 within 1024, for 1.65× and
            2.97× the CPU time at 64 (the same process, one thread); the pairs
            that settle only within 1024 were up to 1.4e-3 off that length at
            256, up to 9.3e-2 at 64. Easy pairs settle early and cost nothing
            more.
        lr: Adam's learning rate relative to ``|z1 − z0|_∞`` (``> 0``).
        patience: Adam stops a pair after this many steps without progress
            (``>= 1``).
        history: L-BFGS memory, in curvature pairs (``>= 1``). Thirty, not the
            textbook five: on an RBF-precision decoder the energy's curvature
            is learnt slowly. On the 435 pairs of ``benchmarks/geodesics.py``
            (defaults, 2026-12-03) five needed twice the iterations (median 213
            against 100, 335 against 320 CPU-s) for the same 324 converged
            pairs; at the former 64 knots five left 135 of them at the budget.
        precondition_every: recompute the L-BFGS preconditioner every this many
            iterations, for the pairs whose curve moved since theirs (``>= 1``).
        reparametrize: return the curves reparametrised to constant speed.
        generator: random generator for ``estimator="sampled"`` (and a neural
            curve's initial weights).
        progress: show a tqdm progress bar.

    Raises:
        ValueError: an option outside its allowed range, naming it.
        TypeError: ``generator`` is not a ``torch.Generator``.

    Example:
        >>> EnergyOptions(max_iter=100).max_iter
        100
        >>> EnergyOptions(history=0)
        Traceback (most recent call last):
        ...
        ValueError: history must be an int >= 1, got 0
    """

    estimator: str | None = None
    optimizer: str = "lbfgs"
    max_iter: int = 3000
    tol: float = DEFAULT_TOL
    num_points: int | None = None
    nodes: int = 4
    refine: bool | None = None
    refine_tol: float = DEFAULT_REFINE_TOL
    max_knots: int = 256
    lr: float = 0.05
    patience: int = 20
    history: int = 30
    precondition_every: int = 10
    reparametrize: bool = True
    generator: torch.Generator | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.estimator is not None and self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.estimator == "sampled" and self.optimizer == "lbfgs":
            raise ValueError("estimator='sampled' is stochastic: use optimizer='adam'")
        _check_int("max_iter", self.max_iter, least=0)
        _check_real("tol", self.tol, positive=True)
        if self.num_points is not None:
            _check_int("num_points", self.num_points, least=1)
        _check_int("nodes", self.nodes, least=1)
        _check_real("refine_tol", self.refine_tol, positive=False)
        _check_int("max_knots", self.max_knots, least=0)
        _check_real("lr", self.lr, positive=True)
        _check_int("patience", self.patience, least=1)
        _check_int("history", self.history, least=1)
        _check_int("precondition_every", self.precondition_every, least=1)
        for name in ("refine", "reparametrize", "progress"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (name == "refine" and value is None)):
                allowed = "True, False or None" if name == "refine" else "True or False"
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(self.generator).__name__}"
            )


_FIELDS = {f.name: f.default for f in fields(EnergyOptions)}


def explicit_options(keywords: Mapping[str, object], owner: str) -> dict[str, Any]:
    """The keywords that differ from :class:`EnergyOptions`' defaults.

    ``None`` for ``tol`` or ``refine_tol`` means the default (the keyword
    signatures allow it); a value counts as a default only when it has the
    default's type, so ``max_iter=500.0`` is still checked (and refused).

    Raises:
        TypeError: a keyword that is no energy option, naming ``owner``.
    """
    unknown = sorted(set(keywords) - set(_FIELDS))
    if unknown:
        raise TypeError(
            f"{owner} got unknown option(s) {unknown}; the energy options are {sorted(_FIELDS)}"
        )
    out = {}
    for name, value in keywords.items():
        default = _FIELDS[name]
        if value is None and name in _NONE_MEANS_DEFAULT:
            continue
        if value is default or (type(value) is type(default) and value == default):
            continue
        out[name] = value
    return out


def with_options(
    base: EnergyOptions | None, keywords: Mapping[str, object], owner: str
) -> EnergyOptions:
    """``base`` (default: :class:`EnergyOptions()`) with the keywords that differ from the
    defaults put in; validated.

    Raises:
        TypeError: ``base`` is not an :class:`EnergyOptions`, or a keyword is no option.
        ValueError: an option outside its allowed range.
    """
    if base is not None and not isinstance(base, EnergyOptions):
        raise TypeError(f"options must be an EnergyOptions or None, got {type(base).__name__}")
    given = explicit_options(keywords, owner)
    if base is None:
        return EnergyOptions(**given)
    return replace(base, **given) if given else base


def _check_int(name: str, value: object, *, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


def _check_real(name: str, value: object, *, positive: bool) -> None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):  # type: ignore[operator]
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
