"""The Levi-Civita connection at points: ``Γ(u, w)`` for many vectors, by forward mode.

Two exact forms, both batched over points:

* ``"christoffel"``: ``G`` and ``∂G`` by forward mode through the metric tensor
  (``d`` Jacobian-vector products of ``z ↦ G(z)``, batched by ``vmap``), then
  ``Γ(u, w) = G⁻¹ Γ₁(u, w)`` with the symbols of the first kind
  ``Γ₁(u, w)_a = ½ (∂_u G_ab w^b + ∂_w G_ab u^b − ∂_a G_bc u^b w^c)``.
  Best for explicit metrics, whose ``G`` is a cheap closed form.
* ``"acceleration"``: polarisation of the geodesic acceleration,
  ``Γ(u, w) = ¼ (Γ(u + w, u + w) − Γ(u − w, u − w))`` with
  ``Γ(a, a) = −geodesic_acceleration(a)``, which for pull-backs is
  ``G⁻¹ Jᵀ ∂²f[a, a]`` (two nested forward-mode products, never ``∂G``).
  Best for decoders: ``∂G`` would cost ``d`` passes of ``d`` products each.
  All ``(1 +) 2K`` directions go to ONE call of the metric's
  :meth:`~latentgeo.metrics.Metric.geodesic_terms_along` (a pull-back's ``J`` is
  measured once, each direction adds only its second-order term) and ONE solve
  with ``G``, not one validated acceleration per direction.

``"auto"`` takes ``"acceleration"`` when the metric is a pull-back or a sum,
mean or scaling with a pull-back term (the same split
:func:`latentgeo.solvers.geodesic_acceleration` makes), ``"christoffel"`` otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.func import jvp, vmap

from latentgeo._validation import check_tangent
from latentgeo.metrics import (
    MeanMetric,
    Metric,
    MetricLike,
    PullbackMetric,
    ScaledMetric,
    SumMetric,
    as_metric,
)
from latentgeo.metrics.jacobians import nested_forward_mode
from latentgeo.solvers import geodesic_acceleration

__all__ = ["Form", "connection"]

Form = Literal["auto", "christoffel", "acceleration"]
_FORMS = ("auto", "christoffel", "acceleration")


def _has_pullback(metric: Metric) -> bool:
    if isinstance(metric, PullbackMetric):
        return True
    if isinstance(metric, ScaledMetric):
        return _has_pullback(metric.metric)
    if isinstance(metric, (SumMetric, MeanMetric)):
        return any(_has_pullback(m) for m in metric.metrics())
    return False


def point_rows(
    metric_or_decoder: MetricLike, z: Tensor, **tangents: Tensor
) -> tuple[Metric, torch.Size, list[Tensor]]:
    """The metric, the broadcast batch shape ``(...)`` and ``[z, *tangents]`` checked
    (``z`` as points of the metric, each tangent at them, named by its keyword),
    broadcast together and flattened to rows ``(N, d)``."""
    metric = as_metric(metric_or_decoder)
    z = metric.validated_points(z, "z")
    vectors = [check_tangent(z, v, name) for name, v in tangents.items()]
    parts = torch.broadcast_tensors(z, *vectors)
    d = z.shape[-1]
    return metric, parts[0].shape[:-1], [x.reshape(-1, d) for x in parts]


def resolve_form(metric: Metric, form: str) -> Literal["christoffel", "acceleration"]:
    """The concrete form ``"auto"`` stands for with this metric (see the module docstring)."""
    if form not in _FORMS:
        raise ValueError(f"form must be one of {_FORMS}, got {form!r}")
    if form == "auto":
        return "acceleration" if _has_pullback(metric) else "christoffel"
    return form  # type: ignore[return-value]


def _basis_jvp(fn: object, z: Tensor) -> Tensor:
    """``∂_c fn(z)`` for every coordinate ``c``: shape ``(d, *fn(z).shape)`` (forward mode)."""
    n, d = z.shape
    basis = torch.eye(d, dtype=z.dtype, device=z.device)[:, None, :].expand(d, n, d)

    def push(e: Tensor) -> Tensor:
        return jvp(fn, (z,), (e,))[1]  # type: ignore[arg-type]

    try:
        return vmap(push)(basis)
    except (RuntimeError, NotImplementedError, ValueError):
        # vmap cannot trace this metric: one JVP per coordinate on a replicated batch
        # (copies: with n = 1 a reshape of the expanded z would be a view with a zero
        # stride, which forward mode refuses to write tangents into)
        zr, tangents = z.repeat(d, 1), basis.reshape(d * n, d).clone()
        out = jvp(fn, (zr,), (tangents,))[1]  # type: ignore[arg-type]
        return out.reshape(d, n, *out.shape[1:])


def metric_jet(metric: Metric, z: Tensor) -> tuple[Tensor, Tensor]:
    """``G`` ``(N, d, d)`` and ``∂G`` ``(N, d, d, d)`` with ``dg[n, a, b, c] = ∂_c G_ab``."""
    g = metric.metric_tensor(z, validate=False)
    dg = _basis_jvp(
        lambda y: metric.metric_tensor(y, validate=False), z
    )  # (d, N, d, d), index c first
    return g, dg.permute(1, 2, 3, 0)


def solve_metric(g: Tensor, rhs: Tensor) -> Tensor:
    """``G⁻¹ rhs`` for ``g (N, d, d)``, ``rhs (N, d, K)``; NaN rows where ``G`` is singular."""
    sol, info = torch.linalg.solve_ex(g, rhs)
    return torch.where((info == 0)[:, None, None], sol, torch.nan)


def first_kind(dg: Tensor, u: Tensor, w: Tensor) -> Tensor:
    """``Γ₁(u, w_k)`` from ``∂G``: ``u (N, d)``, ``w (N, K, d)`` -> ``(N, K, d)``."""
    dgu = torch.einsum("nabc,nc->nab", dg, u)  # ∂_u G
    term1 = torch.einsum("nab,nkb->nka", dgu, w)  # ∂_u G w
    term2 = torch.einsum("nabc,nkc,nb->nka", dg, w, u)  # ∂_w G u
    term3 = torch.einsum("nbca,nb,nkc->nka", dg, u, w)  # ∂_a (uᵀ G w)
    return 0.5 * (term1 + term2 - term3)


def _acceleration(metric: Metric, z: Tensor, v: Tensor) -> Tensor:
    """``−Γ(v, v)`` for ``(N, d)`` rows; NaN (not an error) for rows that are not finite."""
    finite = torch.isfinite(z).all(-1) & torch.isfinite(v).all(-1)
    if bool(finite.all()):
        return geodesic_acceleration(metric, z, v)
    out = torch.full_like(v, torch.nan)
    if bool(finite.any()):
        out[finite] = geodesic_acceleration(metric, z[finite], v[finite])
    return out


def gamma(
    metric: Metric, z: Tensor, u: Tensor, w: Tensor, form: str, *, with_self: bool = False
) -> tuple[Tensor, Tensor | None]:
    """``Γ(u, w_k)`` for validated ``z, u (N, d)`` and ``w (N, K, d)``, and ``Γ(u, u)``.

    Args:
        metric: the metric.
        z: points ``(N, d)``.
        u: first arguments ``(N, d)``.
        w: second arguments ``(N, K, d)``.
        form: ``"christoffel"``, ``"acceleration"`` or ``"auto"``.
        with_self: also return ``Γ(u, u)`` ``(N, d)`` (else ``None``).

    Returns:
        ``(Γ(u, w) (N, K, d), Γ(u, u) or None)``; NaN where ``G`` is singular.
    """
    if resolve_form(metric, form) == "christoffel":
        g, dg = metric_jet(metric, z)
        args = torch.cat([u[:, None], w], 1) if with_self else w
        first = first_kind(dg, u, args)  # (N, K', d)
        second = solve_metric(g, first.mT).mT
        return (second[:, 1:], second[:, 0]) if with_self else (second, None)
    finite = torch.isfinite(z).all(-1) & torch.isfinite(u).all(-1) & torch.isfinite(w).all((1, 2))
    if bool(finite.all()):
        return _polarised(metric, z, u, w, with_self)
    out = torch.full_like(w, torch.nan), torch.full_like(u, torch.nan)
    if bool(finite.any()):
        gw, gu = _polarised(metric, z[finite], u[finite], w[finite], with_self)
        out[0][finite] = gw
        if gu is not None:
            out[1][finite] = gu
    return out[0], (out[1] if with_self else None)


def _polarised(
    metric: Metric, z: Tensor, u: Tensor, w: Tensor, with_self: bool
) -> tuple[Tensor, Tensor | None]:
    """``Γ(u, w_k)`` (and ``Γ(u, u)``) for finite rows from ONE call of the metric's
    :meth:`~latentgeo.metrics.Metric.geodesic_terms_along` with ``(1 +) 2K`` directions at
    each point (a pull-back measures ``J`` once for all of them) and ONE solve with ``G``.

    The terms' ``b(a) = G Γ(a, a)`` is quadratic in ``a``, so
    ``G Γ(u, w) = ¼ (b(u + w) − b(u − w))``; ``w`` is rescaled to ``|u|`` first
    (keeps the difference well conditioned).
    """
    k = w.shape[1]
    un = u.norm(dim=-1, keepdim=True)[:, None]  # (N, 1, 1)
    wn = w.norm(dim=-1, keepdim=True)  # (N, K, 1)
    ok = (un > 0) & (wn > 0)
    scale = torch.where(ok, un / torch.where(ok, wn, 1.0), 1.0)
    ws = (w * scale).transpose(0, 1)  # (K, N, d)
    first = [u[None]] if with_self else []
    terms = metric.geodesic_terms_along(z, torch.cat([*first, u + ws, u - ws]))
    b = terms.b  # (M, N, d), M = (1 +) 2K
    off = 1 if with_self else 0
    bp, bm = b[off : off + k].transpose(0, 1), b[off + k :].transpose(0, 1)  # (N, K, d)
    rhs = 0.25 * (bp - bm) / scale  # (N, K, d): G Γ(u, w_k)
    if with_self:
        rhs = torch.cat([b[0, :, None], rhs], 1)
    sol = solve_metric(terms.g, rhs.mT).mT
    return (sol[:, 1:], sol[:, 0]) if with_self else (sol, None)


@nested_forward_mode
def second_directional(
    metric: Metric, z: Tensor, a: Tensor, b: Tensor, p: Tensor, q: Tensor
) -> Tensor:
    """``D_p D_q (aᵀ G(z) b)``, ``a, b`` held fixed: all ``(N, d)`` -> ``(N,)`` (forward mode)."""

    def phi(y: Tensor) -> Tensor:
        return metric.inner(y, a, b, validate=False)

    def first(y: Tensor) -> Tensor:
        return jvp(phi, (y,), (q,))[1]

    return jvp(first, (z,), (p,))[1]


def connection(
    metric_or_decoder: MetricLike, z: Tensor, u: Tensor, w: Tensor, *, form: Form = "auto"
) -> Tensor:
    """The Christoffel symbols applied to two vectors, ``Γ(u, w)^k = Γ^k_ij u^i w^j``.

    ``∇_u W = D_u W + Γ(u, W)`` is the covariant derivative; ``γ̈ = −Γ(γ̇, γ̇)``
    the geodesic equation; ``ẇ = −Γ(γ̇, w)`` parallel transport.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points ``(..., d)``.
        u: vectors at ``z``, broadcastable against it.
        w: vectors at ``z``, broadcastable against it.
        form: ``"auto"``, ``"christoffel"`` (forward-mode ``∂G``) or
            ``"acceleration"`` (polarised geodesic accelerations; see the module docstring).

    Returns:
        Tensor of the broadcast shape ``(..., d)``; NaN where ``G`` is singular.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import christoffel_symbols
        >>> from latentgeo.testing import PoincareDisk
        >>> z = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
        >>> u, w = torch.randn(2, 1, 2, dtype=torch.float64)
        >>> ref = torch.einsum("nkij,ni,nj->nk", christoffel_symbols(PoincareDisk(), z), u, w)
        >>> torch.allclose(connection(PoincareDisk(), z, u, w), ref)
        True
    """
    metric, batch, (z, u, w) = point_rows(metric_or_decoder, z, u=u, w=w)
    out = gamma(metric, z, u, w[:, None], form)[0]
    return out.reshape(*batch, z.shape[-1])
