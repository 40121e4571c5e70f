"""The L-BFGS preconditioner: the inverse of the energy's Hessian with the metric frozen.

For a curve linear in its free control points ``P`` (splines, polylines),

.. math:: K = Σ_q w_q (∂γ̇_q/∂P)ᵀ G(γ_q) ∂γ̇_q/∂P,

and ``2 K`` is the energy's Hessian with the metric frozen at the current
curve: exact for a constant metric, and it carries the local scale of the
metric along the curve, the main source of ill-conditioning (a geodesic
through the pole of a stereographic sphere makes a far latent excursion).
``K`` is banded; it is assembled per pair from the local basis at two
Gauss–Legendre nodes per span and inverted by a batched Cholesky. The metric,
the whole cost of ``K`` on a real decoder (``d`` Jacobian-vector products per
point), is evaluated at every node, or (``per_span=True``) once per span, at
the midpoint of its two nodes, and held for both: the velocity
basis at two nodes keeps ``K`` positive definite, and a preconditioner only
has to carry the metric's scale along the curve, which varies little within a
span once the curve has as many knots as it needs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo._chunked import TARGET, run_chunked
from latentgeo.curves import gather_rows
from latentgeo.memory import current_memory_budget
from latentgeo.solvers.energy.problem import Objective

__all__ = [
    "frozen_metric_hessian",
    "frozen_metric_preconditioner",
    "pair_bytes",
    "pairs_per_chunk",
]


def frozen_metric_preconditioner(
    objective: Objective, x: Tensor, idx: Tensor, *, per_span: bool = False
) -> Tensor | None:
    """Inverses ``(A, p, p)`` of ``2 K`` for the pairs ``idx`` with parameters ``x`` ``(A, p)``,
    in chunks of pairs sized by the memory budget (from the size of the matrices, see
    :func:`pairs_per_chunk`); ``None`` for curves that are not linear in their parameters.

    The inverse is formed (from the Cholesky factor) because the optimiser
    applies it to a new vector every iteration: a batched product is far
    cheaper than a batched triangular solve, and as accurate (``cond · eps``
    either way). Pairs whose matrix is not positive definite get NaN.

    Args:
        objective: the energies (a curve linear in its parameters, else ``None``).
        x: the pairs' parameters ``(A, p)``.
        idx: their rows in the objective's batch ``(A,)``.
        per_span: the metric at one point per span, held for its two nodes (half
            the cost); ``False`` (default): at every node (``2 K`` is then exactly
            the energy's Hessian with the metric frozen at those nodes).
    """
    if objective.span_basis is None:
        return None
    points, n = objective.span_basis.index.shape[1] // (2 if per_span else 1), idx.numel()
    filled: list[Tensor] = []  # several chunks: each written into one (A, p, p), no copies

    def chunk(sl: slice) -> Tensor | None:
        inverse = _inverse_stiffness(objective, x[sl], idx[sl], per_span)
        if sl.stop - sl.start == n:
            return inverse
        if not filled:
            filled.append(x.new_empty(n, x.shape[1], x.shape[1]))
        filled[0][sl] = inverse
        return None

    parts = run_chunked(
        chunk,
        n,
        owner=objective.metric,
        key=("preconditioner", objective.packing.shapes[0], points, per_span, x.dtype),
        device=x.device,
        chunk_size=pairs_per_chunk(objective, x),
    )
    return filled[0] if filled else parts[-1]


def pairs_per_chunk(objective: Objective, x: Tensor) -> int:
    """Pairs per chunk of the preconditioner, from the exact size of its tensors (no
    probe): per pair, the nodes' metric and stiffness terms ``T (k² + 2) d²``, the
    stiffness ``n² d²`` and four ``p × p`` matrices (Hessian, its symmetric part, the
    Cholesky factor, the inverse), in :data:`~latentgeo._chunked.TARGET` of the budget.
    The metric itself is evaluated in chunks sized by its own footprint."""
    return max(1, int(TARGET * current_memory_budget(x.device) // pair_bytes(objective, x)))


def pair_bytes(objective: Objective, x: Tensor) -> int:
    """Bytes of one pair's preconditioner work (see :func:`pairs_per_chunk`)."""
    assert objective.span_basis is not None
    (n_inner, d), (_, nodes, k) = objective.packing.shapes[0], objective.span_basis.index.shape
    p, n = n_inner * d, n_inner + 2
    return x.element_size() * (nodes * (k * k + 2) * d * d + n * n * d * d + 4 * p * p)


def _inverse_stiffness(objective: Objective, x: Tensor, idx: Tensor, per_span: bool) -> Tensor:
    """:func:`frozen_metric_preconditioner` for one chunk of pairs."""
    return _cholesky_inverse(frozen_metric_hessian(objective, x, idx, per_span))


def frozen_metric_hessian(
    objective: Objective, x: Tensor, idx: Tensor, per_span: bool = False
) -> Tensor:
    """``2 K`` ``(A, p, p)``, symmetric, for one chunk of pairs (see
    :func:`frozen_metric_preconditioner`; at most :func:`pairs_per_chunk` pairs at once)."""
    assert objective.span_basis is not None and objective.span_weights is not None
    basis, w = objective.span_basis.rows(idx), objective.span_weights[idx]
    t_idx, dvals = basis.index, basis.derivatives
    a, (n_inner, d) = x.shape[0], objective.packing.shapes[0]
    n = n_inner + 2
    control = gather_rows(objective.control_points(x, idx), t_idx)
    pos = (basis.values[..., None] * control).sum(-2)  # (A, T, d), two nodes per span
    if per_span:
        pos = pos.reshape(a, -1, 2, d).mean(2)  # (A, S, d): the midpoints of the nodes
    g = objective.metric.metric_tensor(pos.reshape(-1, d), validate=False).reshape(
        *pos.shape, d
    )  # (A, T, d, d), or (A, S, d, d)
    if per_span:
        g = g.repeat_interleave(2, dim=1)  # (A, T, d, d): each span's for both its nodes
    outer = w[..., None, None] * dvals[..., :, None] * dvals[..., None, :]  # (A, T, k, k)
    contrib = outer[..., None, None] * g[:, :, None, None]  # (A, T, k, k, d, d)
    flat_idx = (t_idx[..., :, None] * n + t_idx[..., None, :]).reshape(a, -1)
    stiff = x.new_zeros(a, n * n, d * d)
    stiff.scatter_add_(1, flat_idx[..., None].expand(-1, -1, d * d), contrib.reshape(a, -1, d * d))
    stiff = stiff.reshape(a, n, n, d, d)[:, 1:-1, 1:-1].permute(0, 1, 3, 2, 4)
    hess = 2.0 * stiff.reshape(a, n_inner * d, n_inner * d)
    return 0.5 * (hess + hess.mT)


#: the ridge added to ``2 K`` before it is inverted, relative to its mean diagonal: a
#: preconditioner gains nothing from conditioning beyond ``1 / RIDGE``, and where the
#: metric nearly vanishes (a saturated sigmoid far from the data) a smaller one (1e-12)
#: turned those directions into steps to |z| ≈ 4e6 that the energy's quadrature could not
#: see (a new user's float64 FeatureMetric: length 0.00065 reported, 1.91 by curve_length;
#: 0.0326 with this ridge, as in float32; 1e-8 gave the same, 1e-10 keeps the inverse of
#: a well-conditioned K exact to 1e-8)
RIDGE = 1e-10


def _cholesky_inverse(hess: Tensor) -> Tensor:
    """Inverses of symmetric ``hess`` ``(A, m, m)`` with a small ridge (:data:`RIDGE`);
    NaN where the Cholesky factorisation fails."""
    diag = hess.diagonal(dim1=-2, dim2=-1)
    ridge = RIDGE * diag.abs().mean(-1).clamp_min(1e-300)
    eye = torch.eye(hess.shape[-1], dtype=hess.dtype, device=hess.device)
    chol, info = torch.linalg.cholesky_ex(hess + ridge[:, None, None] * eye)
    bad = info != 0
    if bool(bad.any()):
        chol[bad] = eye  # a harmless factor, replaced by NaN below
    inverse = torch.cholesky_inverse(chol)
    if bool(bad.any()):
        inverse[bad] = torch.nan
    return inverse
