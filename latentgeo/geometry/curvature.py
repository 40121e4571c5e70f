"""Curvature of a latent metric by forward-mode derivatives, batched over points.

* :func:`riemann_tensor`: the covariant Riemann tensor from ``G``, ``∂G`` and
  ``∂²G`` (nested forward mode through the metric tensor; ``O(d⁴)`` numbers, for
  small ``d``).
* :func:`sectional_curvature`: ``K(u, v)`` of the plane spanned by ``u, v`` at any
  ``d``, without the Riemann tensor:

  .. math::
      K(u, v) = \\frac{R(u, v, u, v)}{|u|^2 |v|^2 - ⟨u, v⟩^2},\\quad
      R(u, v, u, v) = D_u D_v φ_{uv} - ½ D_v D_v φ_{uu} - ½ D_u D_u φ_{vv}
      + |Γ(u, v)|^2 - ⟨Γ(u, u), Γ(v, v)⟩,

  with ``φ_{ab}(z) = aᵀ G(z) b`` (three second directional derivatives by
  nested ``jvp``) and the connection ``Γ`` of :func:`~latentgeo.geometry.connection`.
* :func:`scalar_curvature`: ``S = 2 Σ_{i<j} K(e_i, e_j)`` over a ``G``-orthonormal frame.
* :func:`curvature_map`: scalar (or Gaussian) curvature on a latent grid.

Conventions: the sphere has ``K = 1``, the hyperbolic plane ``K = −1``; the
covariant tensor satisfies ``R(u, v, u, v) = Σ R[a, b, c, d] u^a v^b u^c v^d``.

Gradients (``differentiable``): by default the results are differentiable (in the
points and vectors, and then in the decoder's parameters too) when a point or vector
requires grad, and otherwise no autograd graph is recorded, whatever the decoder's
parameters ask; ``differentiable=True`` records it anyway (a curvature penalty
trained into the decoder), ``False`` never. The graph of these nested forward
products is large: an audit measured 4 GB per point for an MLP decoder 50 → 784 kept
by ``scalar_curvature`` (12 GB for three points), and chunking does not bound what
the chunks' results keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from latentgeo._chunked import run_chunked, run_over_points
from latentgeo._options import check_optional_int
from latentgeo._validation import check_points
from latentgeo.geometry.connection import (
    Form,
    _acceleration,
    _basis_jvp,
    first_kind,
    metric_jet,
    point_rows,
    resolve_form,
    second_directional,
    solve_metric,
)
from latentgeo.memory import use_memory_budget
from latentgeo.metrics import Metric, MetricLike
from latentgeo.metrics.jacobians import nested_forward_mode

__all__ = ["curvature_map", "riemann_tensor", "scalar_curvature", "sectional_curvature"]

Jet = tuple[Tensor, Tensor]

#: metric evaluations per plane of :func:`scalar_curvature` (three nested second
#: derivatives, four connection values, five inner products): the weight of a plane in
#: the memory budget's chunking, so that its probe runs one and two planes, not 16 and 32
#: (10 MB a plane on a transposed-convolution decoder at d = 16)
PLANE_WEIGHT = 12


def _graph_if_asked(
    differentiable: bool | None, *inputs: Tensor
) -> torch.autograd.grad_mode.set_grad_enabled:
    """Gradient mode for a curvature (module doc): as asked, or (``None``) on only where
    an input requires grad."""
    if differentiable not in (None, True, False):
        raise TypeError(f"differentiable must be None, True or False, got {differentiable!r}")
    asked = any(t.requires_grad for t in inputs) if differentiable is None else differentiable
    return torch.set_grad_enabled(torch.is_grad_enabled() and asked)


def riemann_tensor(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    differentiable: bool | None = None,
    memory_budget: int | None = None,
) -> Tensor:
    """The covariant Riemann tensor ``R_{abcd}`` at every point.

    .. math::
        R_{iklm} = ½(∂_k∂_l G_{im} + ∂_i∂_m G_{kl} − ∂_k∂_m G_{il} − ∂_i∂_l G_{km})
        + G_{np}(Γ^n_{kl} Γ^p_{im} − Γ^n_{km} Γ^p_{il})

    ``∂G`` and ``∂²G`` by (nested) forward mode through ``metric_tensor``:
    ``d²`` second-order products per point, so use it for small ``d`` (≲ 8) and
    :func:`sectional_curvature` beyond.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points ``(..., d)``.
        differentiable: record an autograd graph: ``None`` (default) where a point or
            vector requires grad, ``True`` also for the decoder's parameters alone (GBs
            per point at d = 50), ``False`` never (see the module docstring).
        memory_budget: bytes the chunks of points may use (``None``: the budget in
            force, see :mod:`latentgeo.memory`).

    Returns:
        Tensor ``(..., d, d, d, d)``; ``Σ R[a,b,c,d] u^a v^b u^c v^d = K(u, v)(|u|²|v|² − ⟨u,v⟩²)``.
        NaN where ``G`` is singular.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> r = riemann_tensor(PoincareDisk(), torch.zeros(1, 2, dtype=torch.float64))
        >>> float(r[0, 0, 1, 0, 1]) / 16.0  # K = R_0101 / det G = −1
        -1.0
    """
    metric, batch, (flat,) = point_rows(metric_or_decoder, z)
    d = flat.shape[-1]
    with use_memory_budget(memory_budget), _graph_if_asked(differentiable, flat):
        parts = run_over_points(
            lambda rows: _riemann_rows(metric, flat[rows]), flat, owner=metric, kind="riemann"
        )
    return torch.cat(parts).reshape(*batch, d, d, d, d)


def _riemann_rows(metric: Metric, flat: Tensor) -> Tensor:
    """:func:`riemann_tensor` at points ``(N, d)`` -> ``(N, d, d, d, d)``."""
    d = flat.shape[-1]
    g, dg, ddg = _metric_jets(metric, flat)
    # dg[n, a, b, c] = ∂_c G_ab; ddg[n, a, b, c, e] = ∂_e ∂_c G_ab
    first = 0.5 * (dg.permute(0, 1, 3, 2) + dg - dg.permute(0, 3, 1, 2))  # Γ_{l i j}
    second = solve_metric(g, first.reshape(-1, d, d * d)).reshape(-1, d, d, d)  # Γ^k_{ij}
    hess = 0.5 * (
        torch.einsum("nimkl->niklm", ddg)
        + torch.einsum("nklim->niklm", ddg)
        - torch.einsum("nilkm->niklm", ddg)
        - torch.einsum("nkmil->niklm", ddg)
    )
    quad = torch.einsum("npkl,npim->niklm", first, second) - torch.einsum(
        "npkm,npil->niklm", first, second
    )
    return hess + quad


@nested_forward_mode
def _metric_jets(metric: Metric, flat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``G``, ``∂G`` and ``∂²G`` at points ``(N, d)``: ``(N, d, d)``, ``(N, d, d, d)`` and
    ``(N, d, d, d, d)`` with ``ddg[n, a, b, c, e] = ∂_e ∂_c G_ab``."""
    g, dg = metric_jet(metric, flat)
    ddg = _basis_jvp(lambda x: metric_jet(metric, x)[1], flat).permute(1, 2, 3, 4, 0)
    return g, dg, ddg


def _gammas(
    metric: Metric, z: Tensor, u: Tensor, v: Tensor, form: str, jet: Jet | None
) -> tuple[Tensor, Tensor, Tensor]:
    """``Γ(u, u), Γ(u, v), Γ(v, v)`` (second kind) for rows ``(N, d)``."""
    if resolve_form(metric, form) == "christoffel":
        g, dg = metric_jet(metric, z) if jet is None else jet
        args = torch.stack([u, v, v], 1)
        firsts = first_kind(dg, u, args[:, :2])
        fvv = first_kind(dg, v, args[:, 2:])
        sol = solve_metric(g, torch.cat([firsts, fvv], 1).mT).mT
        return sol[:, 0], sol[:, 1], sol[:, 2]
    # polarisation with v rescaled to |u|: rows u + v̂, u − v̂, u, v
    un, vn = u.norm(dim=-1, keepdim=True), v.norm(dim=-1, keepdim=True)
    ok = (un > 0) & (vn > 0)
    s = torch.where(ok, un / torch.where(ok, vn, 1.0), 1.0)
    n = z.shape[0]
    acc = _acceleration(metric, z.repeat(4, 1), torch.cat([u + s * v, u - s * v, u, v]))
    guv = -0.25 * (acc[:n] - acc[n : 2 * n]) / s
    return -acc[2 * n : 3 * n], guv, -acc[3 * n :]


def _sectional_rows(
    metric: Metric, z: Tensor, u: Tensor, v: Tensor, form: str, jet: Jet | None = None
) -> Tensor:
    """``K(u, v)`` for validated rows ``(N, d)``."""
    n = z.shape[0]
    z3 = z.repeat(3, 1)
    hess = second_directional(
        metric, z3, torch.cat([u, u, v]), torch.cat([v, u, v]),
        torch.cat([u, v, u]), torch.cat([v, v, u]),
    )  # fmt: skip
    guu, guv, gvv = _gammas(metric, z, u, v, form, jet)
    left = torch.cat([u, v, u, guv, guu])
    right = torch.cat([u, v, v, guv, gvv])
    ip = metric.inner(z.repeat(5, 1), left, right, validate=False).reshape(5, n)
    num = hess[:n] - 0.5 * hess[n : 2 * n] - 0.5 * hess[2 * n :] + ip[3] - ip[4]
    den = ip[0] * ip[1] - ip[2] ** 2
    return num / den


def sectional_curvature(
    metric_or_decoder: MetricLike,
    z: Tensor,
    u: Tensor,
    v: Tensor,
    *,
    form: Form = "auto",
    differentiable: bool | None = None,
) -> Tensor:
    """Sectional curvature ``K(u, v)`` of the plane spanned by ``u, v`` at ``z``.

    Exact (forward mode, no finite differences), at any ``d``, without the
    Riemann tensor: three second directional derivatives of ``aᵀ G(z) b`` and
    three connection values (see the module docstring).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points ``(..., d)``.
        u: first vectors spanning the plane, broadcastable against ``z``.
        v: second vectors (not parallel to ``u``).
        form: how the connection is computed (see :func:`~latentgeo.geometry.connection`).
        differentiable: record an autograd graph: ``None`` (default) where a point or
            vector requires grad, ``True`` also for the decoder's parameters alone (GBs
            per point at d = 50), ``False`` never (see the module docstring).

    Returns:
        Tensor ``(...)``; NaN where ``u, v`` are parallel or ``G`` is singular.

    Example:
        >>> import torch
        >>> from latentgeo.testing import StereographicSphere
        >>> z = torch.randn(4, 3, dtype=torch.float64)
        >>> u, v = torch.randn_like(z), torch.randn_like(z)
        >>> k = sectional_curvature(StereographicSphere(), z, u, v)
        >>> torch.allclose(k, torch.ones(4, dtype=torch.float64))
        True
    """
    metric, batch, (z, u, v) = point_rows(metric_or_decoder, z, u=u, v=v)
    resolve_form(metric, form)
    with _graph_if_asked(differentiable, z, u, v):
        return _sectional_rows(metric, z, u, v, form).reshape(batch)


def _frame(g: Tensor) -> Tensor:
    """A ``G``-orthonormal frame from ``G`` ``(N, d, d)``, its vectors the columns
    ``(N, d, d)``; NaN where ``G`` is not positive definite."""
    chol, info = torch.linalg.cholesky_ex(0.5 * (g + g.mT))
    eye = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device).expand_as(g)
    frame = torch.linalg.solve_triangular(chol.mT, eye, upper=True)  # columns: Lᵀ e = basis
    return torch.where((info == 0)[:, None, None], frame, torch.nan)


def scalar_curvature(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    form: Form = "auto",
    chunk_size: int | None = None,
    differentiable: bool | None = None,
    memory_budget: int | None = None,
) -> Tensor:
    """Scalar curvature ``S = Σ_{i ≠ j} K(e_i, e_j)`` over a ``G``-orthonormal frame ``e``.

    The ``d(d − 1)/2`` sectional curvatures of the frame's planes at every point,
    batched over all (point, plane) rows in chunks that the memory budget sizes
    (``S = d(d − 1)`` on the unit sphere ``S^d``; for ``d = 2``, ``S = 2K``, twice
    the Gaussian curvature). A point's planes may fall in two chunks: a chunk is
    a number of planes, not of points, so that one point of a large decoder
    (120 planes at ``d = 16``) does not have to fit in memory at once.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points ``(..., d)`` with ``d ≥ 2``.
        form: how the connection is computed (see :func:`~latentgeo.geometry.connection`).
        chunk_size: points whose planes are batched together, ``≥ 1`` (``None``:
            as many planes as fit in the memory budget; halved on out-of-memory
            either way, see :mod:`latentgeo.memory`).
        differentiable: record an autograd graph: ``None`` (default) where a point or
            vector requires grad, ``True`` also for the decoder's parameters alone (GBs
            per point at d = 50), ``False`` never (see the module docstring).
        memory_budget: bytes the chunks may use (``None``: the budget in force); the
            graph that ``differentiable`` keeps is not bounded by it.

    Returns:
        Tensor ``(...)``; NaN where ``G`` is not positive definite.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> s = scalar_curvature(PoincareDisk(), 0.3 * torch.randn(5, 3, dtype=torch.float64))
        >>> torch.allclose(s, torch.full((5,), -6.0, dtype=torch.float64))
        True
    """
    metric, batch, (flat,) = point_rows(metric_or_decoder, z)
    d = flat.shape[-1]
    if d < 2:
        raise ValueError(f"z must have d >= 2 for a curvature, got shape {(*batch, d)}")
    check_optional_int(chunk_size, "chunk_size")
    form = resolve_form(metric, form)
    with use_memory_budget(memory_budget), _graph_if_asked(differentiable, flat):
        return _scalar_rows(metric, flat, form, chunk_size).reshape(batch)


def _scalar_rows(metric: Metric, flat: Tensor, form: Form, chunk_size: int | None) -> Tensor:
    """:func:`scalar_curvature` at points ``(N, d)`` -> ``(N,)``, in chunks of plane rows:
    row ``r`` is plane ``r mod P`` (frame vectors ``i < j``) of point ``r // P``
    (``P = d(d − 1)/2``); the frame is computed in each chunk, for its own points."""
    n, d = flat.shape
    first_vector, second_vector = torch.triu_indices(d, d, offset=1, device=flat.device)
    p = first_vector.numel()

    def planes(rows: slice) -> Tensor:  # the frame and ∂G once per point of the chunk
        first, last = rows.start // p, (rows.stop - 1) // p
        points = flat[first : last + 1]
        row = torch.arange(rows.start, rows.stop, device=flat.device)
        at, plane = row // p - first, row % p
        jet = None
        if form == "christoffel":  # G comes with ∂G
            g, dg = metric_jet(metric, points)
            jet = (g[at], dg[at])
        else:
            g = metric.metric_tensor(points, validate=False)
        frame = _frame(g)
        u, v = frame[at, :, first_vector[plane]], frame[at, :, second_vector[plane]]
        return _sectional_rows(metric, points[at], u, v, form, jet)

    key = ("scalar_curvature", form, d, flat.dtype, flat.device, torch.is_grad_enabled())
    parts = run_chunked(
        planes, n * p, owner=metric, key=key, weight=PLANE_WEIGHT, device=flat.device,
        chunk_size=None if chunk_size is None else chunk_size * p,
    )  # fmt: skip
    return 2.0 * torch.cat(parts).reshape(n, p).sum(-1)


def curvature_map(
    metric_or_decoder: MetricLike,
    grid: Tensor,
    *,
    quantity: Literal["scalar", "gaussian"] = "scalar",
    form: Form = "auto",
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> Tensor:
    """Curvature at every point of a latent grid (e.g. :func:`latentgeo.viz.latent_grid`).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        grid: points ``(..., d)``, e.g. ``(R, C, 2)``.
        quantity: ``"scalar"`` (:func:`scalar_curvature`) or ``"gaussian"``
            (``K``, for ``d = 2`` only: half the scalar curvature).
        form: how the connection is computed (see :func:`~latentgeo.geometry.connection`).
        chunk_size: points per batch (``None``: sized by the memory budget), as
            :func:`scalar_curvature`'s.
        memory_budget: bytes the chunks may use (``None``: the budget in force).

    Returns:
        Detached tensor of the grid's batch shape, e.g. ``(R, C)``.

    Example:
        >>> import torch
        >>> from latentgeo.testing import StereographicSphere
        >>> grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, 3)] * 2, indexing="ij"), -1)
        >>> k = curvature_map(StereographicSphere(), grid.double(), quantity="gaussian")
        >>> k.shape, bool((k - 1).abs().max() < 1e-12)
        (torch.Size([3, 3]), True)
    """
    quantities: dict[str, Callable[[Tensor], Tensor]] = {
        "scalar": lambda s: s,
        "gaussian": lambda s: 0.5 * s,
    }
    if quantity not in quantities:
        raise ValueError(f"quantity must be 'scalar' or 'gaussian', got {quantity!r}")
    grid = check_points(grid, "grid")
    if quantity == "gaussian" and grid.shape[-1] != 2:
        raise ValueError(f"quantity='gaussian' needs d = 2, got grid of shape {tuple(grid.shape)}")
    with torch.no_grad():
        s = scalar_curvature(
            metric_or_decoder, grid, form=form, chunk_size=chunk_size, memory_budget=memory_budget
        )
    return quantities[quantity](s).detach()
