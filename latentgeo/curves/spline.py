"""Clamped cubic B-splines with free interior control points and exact knot insertion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo._options import check_number
from latentgeo.curves.base import Curve, check_times

__all__ = ["CubicSpline", "gather_rows"]

DEGREE = 3


def gather_rows(x: Tensor, idx: Tensor) -> Tensor:
    """Rows of ``x`` chosen per batch element: ``out[b, ...] = x[b, idx[b, ...]]``.

    The gather behind every curve that is linear in its control points: with
    ``idx`` the control points that act at each time and ``N`` their basis
    values, ``γ(t) = Σ_r N_r P_{idx_r}`` is ``(N[..., None] * gather_rows(P,
    idx)).sum(-2)``.

    Args:
        x: rows per batch element, shape ``(B, n, d)``.
        idx: integer indices into the ``n`` rows, shape ``(B, ...)``.

    Returns:
        The chosen rows, shape ``(B, ..., d)``.

    Example:
        >>> import torch
        >>> x = torch.arange(12.0).reshape(2, 3, 2)
        >>> gather_rows(x, torch.tensor([[2, 0], [1, 1]])).tolist()
        [[[4.0, 5.0], [0.0, 1.0]], [[8.0, 9.0], [8.0, 9.0]]]
    """
    b, d = x.shape[0], x.shape[-1]
    flat = idx.reshape(b, -1, 1).expand(-1, -1, d)
    return x.gather(1, flat).reshape(*idx.shape, d)


class CubicSpline(Curve):
    r"""B clamped cubic B-splines from ``z0`` to ``z1`` with free interior control points.

    .. math:: γ_b(t) = \sum_{i=0}^{n-1} N_{i,3}(t)\, P_{b,i}, \qquad P_{b,0} = z0_b,\;
              P_{b,n-1} = z1_b

    on the clamped knot vector ``[0, 0, 0, 0, u_1, …, u_k, 1, 1, 1, 1]`` (``k``
    interior knots, ``n = k + 4`` control points). Each basis function is
    non-zero on at most four knot spans (local support), so a control point
    moves the curve only locally. Knot spans are half-open, ``[u_i, u_{i+1})``,
    except the last, which is closed at ``t = 1``: the curve is exactly what
    ``scipy.interpolate.BSpline`` evaluates, knots included.

    The curve starts as the straight line at constant speed (control points at
    the Greville abscissae). :meth:`insert_knot` and :meth:`refine` add knots
    by Boehm's algorithm, which leaves the curve unchanged; the knots are kept
    per curve, so each of the B curves can be refined where it needs it.

    Args:
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
        num_knots: number of interior knots ``k`` (uniformly spaced); the
            curve has ``k + 1`` polynomial pieces and ``k + 2`` free control
            points per curve.

    Example:
        >>> import torch
        >>> z0, z1 = torch.zeros(3, 2), torch.ones(3, 2)
        >>> curve = CubicSpline(z0, z1, num_knots=4)
        >>> curve(torch.linspace(0, 1, 5)).shape
        torch.Size([3, 5, 2])
        >>> curve.velocity(torch.tensor([0.3]))[0, 0].tolist()  # the line at constant speed
        [1.0, 1.0]
        >>> before = curve(torch.tensor([0.37]))
        >>> curve.refine()  # one more knot per curve, same shape
        >>> torch.allclose(curve(torch.tensor([0.37])), before)
        True
    """

    knots: Tensor

    def __init__(self, z0: Tensor, z1: Tensor, num_knots: int = 6) -> None:
        super().__init__(z0, z1)
        if not isinstance(num_knots, int) or isinstance(num_knots, bool) or num_knots < 0:
            raise ValueError(f"num_knots must be a non-negative int, got {num_knots!r}")
        b = self.z0.shape[0]
        inner = torch.linspace(0.0, 1.0, num_knots + 2, dtype=self.z0.dtype)[1:-1]
        knots = torch.cat([inner.new_zeros(DEGREE + 1), inner, inner.new_ones(DEGREE + 1)])
        knots = knots.to(self.z0.device)
        self.register_buffer("knots", knots.expand(b, -1).contiguous())
        greville = self._greville()[:, 1:-1, None]  # (B, n - 2, 1)
        self.inner = nn.Parameter(self.z0[:, None] + greville * (self.z1 - self.z0)[:, None])

    # ------------------------------------------------------------------ sizes
    @property
    def num_control_points(self) -> int:
        """n, the number of control points per curve (end points included)."""
        return int(self.knots.shape[1]) - DEGREE - 1

    def control_points(self) -> Tensor:
        """All control points ``[z0, P_1 … P_{n-2}, z1]``, shape ``(B, n, d)``."""
        return torch.cat([self.z0[:, None], self.inner, self.z1[:, None]], dim=1)

    def breakpoints(self) -> Tensor:
        """The distinct-span boundaries ``[0, u_1, …, u_k, 1]``, shape ``(B, k + 2)``."""
        return self.knots[:, DEGREE : self.knots.shape[1] - DEGREE]

    def _greville(self) -> Tensor:
        u = self.knots
        return (u[:, 1:-3] + u[:, 2:-2] + u[:, 3:-1]) / 3.0

    # ------------------------------------------------------------ evaluation
    def _span(self, t: Tensor) -> Tensor:
        """Span index ``k`` with ``u_k ≤ t < u_{k+1}`` (closed at 1), shape of ``t``."""
        n = self.knots.shape[1] - DEGREE - 1
        k = torch.searchsorted(self.knots, t.contiguous(), right=True) - 1
        return k.clamp(DEGREE, n - 1)

    def _span_knots(self, k: Tensor, degree: int) -> Tensor:
        """The knots ``u_{k−degree+1} … u_{k+degree}`` around the spans ``k`` ``(B, T)``,
        shape ``(B, T, 2 · degree)``."""
        offsets = torch.arange(1 - degree, degree + 1, device=k.device)
        idx = (k[..., None] + offsets).flatten(1)
        return self.knots.gather(1, idx).view(*k.shape, 2 * degree)

    def _local_basis(
        self, t: Tensor, k: Tensor, degree: int, knots: Tensor | None = None
    ) -> list[Tensor]:
        """Non-zero basis values of degrees ``0 … degree`` at ``t`` in span ``k``.

        Returns ``out[p]`` of shape ``(*t.shape, p + 1)`` with ``out[p][..., r] =
        N_{k-p+r, p}(t)`` (Cox–de Boor, the triangular form of Piegl & Tiller,
        algorithm A2.2, one batched step per degree). ``knots``: the output of
        :meth:`_span_knots` for this ``degree``, if already at hand.
        """
        u = self._span_knots(k, degree) if knots is None else knots
        tc = t[..., None]
        left = tc - u[..., :degree]  # left[..., q] = t − u_{k−degree+1+q} (= "left_{degree−q}")
        right = u[..., degree:] - tc  # right[..., r] = u_{k+1+r} − t (= "right_{r+1}")
        out = [torch.ones_like(tc)]
        for j in range(1, degree + 1):
            r, lf = right[..., :j], left[..., degree - j :]
            temp = out[-1] / (r + lf)
            out.append(F.pad(r * temp, (0, 1)) + F.pad(lf * temp, (1, 0)))
        return out

    def _derivative_points(self, p: Tensor, order: int) -> Tensor:
        """Control points of the ``order``-th derivative spline, shape ``(B, n - order, d)``."""
        u = self.knots
        for q in range(order):
            deg = DEGREE - q
            width = u[:, 1 + deg + q : u.shape[1] - 1 - q] - u[:, 1 + q : u.shape[1] - deg - 1 - q]
            p = deg * (p[:, 1:] - p[:, :-1]) / width.clamp_min(torch.finfo(u.dtype).tiny)[..., None]
        return p

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        k = self._span(t)
        basis = self._local_basis(t, k, DEGREE)
        p = self.control_points()
        offsets = torch.arange(-DEGREE, 1, device=t.device)
        idx = k[..., None] + offsets  # (B, T, 4)
        pos = (basis[DEGREE][..., None] * gather_rows(p, idx)).sum(-2)
        if not derivative:
            return pos, None
        q = self._derivative_points(p, 1)
        vel = (basis[DEGREE - 1][..., None] * gather_rows(q, idx[..., :-1])).sum(-2)
        return pos, vel

    def linear_basis(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The curve as a linear map of its control points ``[z0, inner, z1]``.

        Returns ``(idx, N, dN)``, each ``(B, T, 4)``: ``γ(t) = Σ_r N_r P_{idx_r}`` and
        ``γ̇(t) = Σ_r dN_r P_{idx_r}``.
        """
        k = self._span(t)
        u = self._span_knots(k, DEGREE)  # u_{k-2} … u_{k+3}
        basis = self._local_basis(t, k, DEGREE, u)
        # dN_{i,3} = c_{i} N_{i,2} − c_{i+1} N_{i+1,2}, c_i = 3 / (u_{i+3} − u_i), i = k-3 … k
        # (the two c's of the ends multiply basis functions that vanish on span k)
        c = DEGREE / (u[..., DEGREE:] - u[..., :DEGREE]).clamp_min(1e-300)  # c_{k-2} … c_k
        terms = basis[DEGREE - 1] * c
        dn = F.pad(terms, (1, 0)) - F.pad(terms, (0, 1))
        idx = k[..., None] + torch.arange(-DEGREE, 1, device=t.device)
        return idx, basis[DEGREE], dn

    def acceleration(self, t: Tensor) -> Tensor:
        """Second derivatives ``γ̈(t)``, shape ``(B, T, d)``, for ``t`` ``(T,)`` or ``(B, T)``.

        Piecewise linear in ``t``; at an interior knot the value of the span on its right.
        """
        t = self._batch_times(check_times(t, self.num_curves))
        k = self._span(t)
        basis = self._local_basis(t, k, DEGREE - 2)
        r = self._derivative_points(self.control_points(), 2)
        idx = k[..., None] - DEGREE + torch.arange(2, device=t.device)
        return (basis[1][..., None] * gather_rows(r, idx)).sum(-2)

    def basis_matrix(self, t: Tensor) -> Tensor:
        """Dense basis ``N_{i,3}(t)``, shape ``(B, T, n)``, so that ``γ(t) = N @ P``."""
        return self._basis_matrix(self._batch_times(check_times(t, self.num_curves)))

    def _basis_matrix(self, t: Tensor) -> Tensor:
        """:meth:`basis_matrix` at times ``(B, T)``, unchecked."""
        k = self._span(t)
        vals = self._local_basis(t, k, DEGREE)[DEGREE]
        idx = k[..., None] + torch.arange(-DEGREE, 1, device=t.device)
        out = vals.new_zeros(*t.shape, self.num_control_points)
        return out.scatter_add_(-1, idx, vals)

    # ------------------------------------------------------------- refinement
    @torch.no_grad()
    def insert_knot(self, u: float | Tensor) -> None:
        """Insert one knot per curve by Boehm's algorithm; the curves do not change.

        Args:
            u: the new knot, in ``(0, 1)``: a float (same for every curve) or a
                tensor of shape ``(B,)``.
        """
        b = self.num_curves
        u_t = torch.as_tensor(u, dtype=self.knots.dtype, device=self.knots.device)
        u_t = u_t.expand(b) if u_t.ndim == 0 else u_t
        if u_t.shape != (b,):
            raise ValueError(
                f"u must be a float or a tensor of shape ({b},), got {tuple(u_t.shape)}"
            )
        if not bool(((u_t > 0.0) & (u_t < 1.0)).all()):
            raise ValueError("u must lie strictly inside (0, 1)")
        knots, p = self.knots, self.control_points()
        n = p.shape[1]
        k = self._span(u_t[:, None])  # (B, 1)
        i = torch.arange(n + 1, device=p.device).expand(b, -1)  # new indices 0..n
        lo = knots.gather(1, i.clamp(max=knots.shape[1] - 1))
        hi = knots.gather(1, (i + DEGREE).clamp(max=knots.shape[1] - 1))
        a = (u_t[:, None] - lo) / (hi - lo).clamp_min(torch.finfo(knots.dtype).tiny)
        a = torch.where(i <= k - DEGREE, torch.ones_like(a), a)
        a = torch.where(i >= k + 1, torch.zeros_like(a), a)[..., None]
        p_here = torch.cat([p, p[:, -1:]], 1)  # P_i, with P_n := P_{n-1} (a = 0 there)
        p_prev = torch.cat([p[:, :1], p], 1)  # P_{i-1}, with P_{-1} := P_0 (a = 1 there)
        new_p = a * p_here + (1.0 - a) * p_prev
        self.knots = torch.sort(torch.cat([knots, u_t[:, None]], 1), dim=1).values
        self.inner = nn.Parameter(new_p[:, 1:-1].contiguous())

    @torch.no_grad()
    def insert_knots(self, u: Tensor) -> Tensor:
        """Insert k knots per curve at once; the curves do not change.

        The refined spline space contains the old one, so the new control
        points are those of the old curve written in the new basis: found by
        interpolating the curve at the new interior Greville abscissae (a
        well-conditioned, square system, one batched solve). Same curves as k
        calls of :meth:`insert_knot` (to rounding), without k sequential passes.

        Args:
            u: new knots, shape ``(B, k)``, each in ``(0, 1)``; at most three
                equal knots (the curve must stay continuous).

        Returns:
            The refinement matrices ``A`` ``(B, n' − 2, n − 2)``: the new interior
            control points are ``A`` times the old ones plus a term in the end
            points (so a change ``δP`` of the old curve is ``A δP`` in the new).
        """
        b = self.num_curves
        if u.ndim != 2 or u.shape[0] != b:
            raise ValueError(f"u must have shape ({b}, k), got {tuple(u.shape)}")
        if not bool(((u > 0.0) & (u < 1.0)).all()):
            raise ValueError("u must lie strictly inside (0, 1)")
        u = u.to(self.knots)
        finer = CubicSpline(self.z0, self.z1, num_knots=0)
        finer.knots = torch.sort(torch.cat([self.knots, u], 1), dim=1).values
        tau = finer._greville()[:, 1:-1]  # interior Greville abscissae, (B, n' - 2)
        old = self._basis_matrix(tau)  # (B, n' - 2, n)
        new = finer._basis_matrix(tau)  # (B, n' - 2, n')
        ends = self.z0[:, None] * (old[..., :1] - new[..., :1]) + self.z1[:, None] * (
            old[..., -1:] - new[..., -1:]
        )
        lu = torch.linalg.lu_factor(new[..., 1:-1])
        refinement = torch.linalg.lu_solve(*lu, old[..., 1:-1])
        inner = refinement @ self.inner + torch.linalg.lu_solve(*lu, ends)
        self.knots = finer.knots
        self.inner = nn.Parameter(inner.contiguous())
        return refinement

    @torch.no_grad()
    def refine(self) -> None:
        """Insert a knot at the midpoint of each curve's largest span (Michelis et al., app. A)."""
        bp = self.breakpoints()
        j = (bp[:, 1:] - bp[:, :-1]).argmax(1, keepdim=True)
        self.insert_knot(0.5 * (bp.gather(1, j) + bp.gather(1, j + 1))[:, 0])

    def subset(self, idx: Tensor) -> CubicSpline:
        """A new spline holding the curves ``idx`` (copies, detached)."""
        out = CubicSpline(self.z0[idx], self.z1[idx], num_knots=0)
        out.knots = self.knots[idx].clone()
        out.inner = nn.Parameter(self.inner.detach()[idx].clone())
        return out

    # -------------------------------------------------------------------- fit
    @torch.no_grad()
    def fit(self, t: Tensor, points: Tensor, *, ridge: float = 1e-10) -> None:
        """Least-squares fit of the free control points to ``points`` at times ``t``.

        The end points stay fixed. Useful to start from another curve (a graph
        path, a polyline).

        Args:
            t: times, shape ``(T,)`` or ``(B, T)``.
            points: targets, shape ``(B, T, d)``.
            ridge: relative Tikhonov regularisation (keeps unobserved control
                points finite), ``>= 0``.
        """
        check_number(ridge, "ridge", positive=False)
        a = self.basis_matrix(t)
        if points.shape != (*a.shape[:2], self.dim):
            raise ValueError(
                f"points must have shape {(*a.shape[:2], self.dim)}, got {tuple(points.shape)}"
            )
        rhs = points - a[..., :1] * self.z0[:, None] - a[..., -1:] * self.z1[:, None]
        af = a[..., 1:-1]
        gram = af.mT @ af
        scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None]
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        sol = torch.linalg.solve(gram + ridge * scale * eye + 1e-30 * eye, af.mT @ rhs)
        self.inner = nn.Parameter(sol.contiguous())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_control_points={self.num_control_points}"
