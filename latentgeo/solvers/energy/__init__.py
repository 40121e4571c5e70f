r"""Geodesics by energy minimisation, all B pairs in one optimisation.

:func:`minimize_energy` shortens a batch of curves (any
:class:`~latentgeo.curves.Curve`) by minimising each curve's energy
``E[γ] = ∫ γ̇ᵀ G(γ) γ̇ dt``; minimisers of the energy are geodesics at constant
speed. The B curves' parameters are independent blocks and every pair's
energy depends on its own block only, so the default optimiser is a
*per-pair* L-BFGS, batched: one tensor of parameters ``(B, p)``, one energy
evaluation per step for all active pairs, but every pair has its own
curvature history, its own Armijo line search and its own stopping test. A
pair that has converged is frozen and no longer evaluated. Solving B pairs
together therefore gives the same curves as solving each alone. (A
``torch.optim.LBFGS`` on the summed energy would couple the pairs through one
shared line search and history.)

For splines and polylines the L-BFGS is preconditioned, per pair, by the
energy's Hessian with the metric frozen (banded, solved by a batched
Cholesky): exact for constant metrics, and it absorbs the metric's change of
scale along the curve, which is what makes far latent excursions (a geodesic
through the pole of a stereographic sphere) ill-conditioned. Measured on the
stereographic sphere (8 random pairs, float64): per-pair Adam (lr 0.05 ×
|z1 − z0|) needs 53–500 steps and leaves a 2e-2 relative error on the hardest
pair; the preconditioned L-BFGS converges in 5–70 iterations to 2e-6.

The energy minimised is the chord energy ``(N − 1) Σ ‖φ(γᵢ₊₁) − φ(γᵢ)‖²``
for pull-back metrics (decoders and ensembles: no Jacobian, one forward and
one backward pass), and the Gauss–Legendre metric energy otherwise; the
reported lengths are always Gauss–Legendre quadratures of the metric.
Splines are then refined by knot insertion where they move fastest, pair by
pair, until their length settles. Memory is bounded by evaluating the energy
in chunks of pairs.

The package, one job per module:

* :mod:`~latentgeo.solvers.energy.options`: :class:`EnergyOptions`, every
  option checked once.
* :mod:`~latentgeo.solvers.energy.problem`: the curves' parameters packed as
  ``(B, p)``, the per-pair energies and the basis rows of linear curves.
* :mod:`~latentgeo.solvers.energy.preconditioner`: the frozen-metric Hessian.
* :mod:`~latentgeo.solvers.energy.lbfgs`, :mod:`~latentgeo.solvers.energy.line_search`,
  :mod:`~latentgeo.solvers.energy.adam`: the optimisers.
* :mod:`~latentgeo.solvers.energy.refinement`: settling levels, inserting knots;
  :mod:`~latentgeo.solvers.energy.messages`: what a pair that did not settle is told.
* :mod:`~latentgeo.solvers.energy.report`: reported lengths and the result.
* :mod:`~latentgeo.solvers.energy.levels`: the level loop (optimise, settle,
  refine), in groups of pairs whose carried L-BFGS memory fits the budget.
* :mod:`~latentgeo.solvers.energy.solve`: :func:`minimize_energy`.
* :mod:`~latentgeo.solvers.energy.methods`: :class:`SplineEnergy`,
  :class:`DiscreteEnergy`, :class:`NeuralEnergy`, registered as ``"spline"``,
  ``"discrete"`` and ``"neural"``.
"""

from latentgeo.solvers.energy.methods import (
    DiscreteEnergy,
    EnergyMethod,
    NeuralEnergy,
    SplineEnergy,
)
from latentgeo.solvers.energy.options import EnergyOptions
from latentgeo.solvers.energy.solve import minimize_energy

__all__ = [
    "DiscreteEnergy",
    "EnergyMethod",
    "EnergyOptions",
    "NeuralEnergy",
    "SplineEnergy",
    "minimize_energy",
]
