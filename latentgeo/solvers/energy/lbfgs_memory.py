"""The per-pair L-BFGS memory of the energy solver: A curvature histories as batched tensors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["LBFGSMemory"]


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


class LBFGSMemory:
    """Per-pair L-BFGS memory for A independent problems, stored as batched tensors.

    :meth:`direction` uses the compact form of Byrd, Nocedal & Schnabel (1994)
    (Nocedal & Wright eq. 7.24), equal to the two-loop recursion but a dozen
    batched products instead of ``4m`` sequential steps (the solver's cost per
    iteration on small problems is the number of tensor operations):

    ``H g = H0 g + S R⁻ᵀ((D + Yᵀ H0 Y) c − Yᵀ H0 g) − H0 Y c``, ``c = R⁻¹ Sᵀ g``,

    with ``R`` the upper triangle of ``SᵀY`` (oldest pair first), ``D`` its
    diagonal and ``H0`` the preconditioner (the inverse frozen-metric Hessian)
    where it is finite, else ``γ I``. Pairs that fail the curvature test, and
    empty slots, are stored as zeros with ``R_ii = 1``: they contribute nothing.

    Attributes:
        s: the last ``history`` steps ``(A, m, p)``, oldest first.
        y: the matching gradient changes ``(A, m, p)``.
        gamma: ``sᵀy / yᵀy`` of each pair's newest accepted pair ``(A,)`` (0: none yet).
        updates: calls of :meth:`update` so far.
        h0: the preconditioner ``(A, p, p)`` (see :meth:`precondition`), or ``None``.
        h0_missing: ``(A,)`` bool, the pairs whose ``h0`` is NaN; ``None`` if none is.

    Example:
        >>> import torch
        >>> memory = LBFGSMemory(torch.zeros(2, 3), history=4)
        >>> memory.update(torch.ones(2, 3), 2 * torch.ones(2, 3))  # curvature 2
        >>> memory.direction(torch.ones(2, 3), torch.ones(2)).tolist()  # −H g = −g / 2
        [[-0.5, -0.5, -0.5], [-0.5, -0.5, -0.5]]
    """

    def __init__(self, x: Tensor, history: int) -> None:
        b, p = x.shape
        self.s = x.new_zeros(b, history, p)
        self.y = x.new_zeros(b, history, p)
        self.gamma = x.new_zeros(b)
        self.updates = 0
        self.h0: Tensor | None = None
        self.h0_missing: Tensor | None = None
        self._owned = False

    @classmethod
    def _of(cls, s: Tensor, y: Tensor, gamma: Tensor, updates: int) -> LBFGSMemory:
        out = cls.__new__(cls)
        out.s, out.y, out.gamma, out.updates = s, y, gamma, updates
        out.h0, out.h0_missing, out._owned = None, None, False
        return out

    def precondition(self, h0: Tensor | None, *, owned: bool = False) -> None:
        """Use ``h0`` ``(A, p, p)`` (inverse Hessian approximations, NaN for pairs without
        one) as ``H0`` from now on; ``None``: ``γ I`` for every pair. ``owned``: the
        caller keeps no reference to ``h0``, so :meth:`precondition_rows` may write into
        it (else it copies it first: a ``p × p`` matrix per pair)."""
        self.h0, self.h0_missing, self._owned = h0, None, owned
        if h0 is not None:
            missing = ~torch.isfinite(h0[:, 0, 0])
            if bool(missing.any()):
                self.h0_missing = missing

    def precondition_rows(self, rows: Tensor, h0: Tensor) -> None:
        """Replace the preconditioner of the pairs ``rows`` by ``h0`` ``(R, p, p)`` (NaN for
        pairs without one); the other pairs keep theirs. Needs a preconditioner set by
        :meth:`precondition`."""
        assert self.h0 is not None
        if not self._owned:
            self.h0, self._owned = self.h0.clone(), True
        self.h0[rows] = h0
        missing = ~torch.isfinite(self.h0[:, 0, 0])
        self.h0_missing = missing if bool(missing.any()) else None

    def forget(self, rows: Tensor) -> None:
        """Empty the memory of the pairs ``rows`` (a bool mask ``(A,)``; the preconditioner
        stays): their next direction is the preconditioned steepest descent."""
        keep = (~rows)[:, None, None].to(self.s.dtype)
        self.s, self.y = self.s * keep, self.y * keep
        self.gamma = torch.where(rows, 0.0, self.gamma)

    def keep(self, keep: Tensor) -> None:
        """Keep only the pairs ``keep`` (in place; the preconditioner too)."""
        self.s, self.y, self.gamma = self.s[keep], self.y[keep], self.gamma[keep]
        if self.h0 is not None:
            self.h0, self._owned = self.h0[keep], True  # (a copy)
        if self.h0_missing is not None:
            self.h0_missing = self.h0_missing[keep]

    def rows(self, idx: Tensor) -> LBFGSMemory:
        """A copy holding the pairs ``idx`` (without a preconditioner)."""
        return LBFGSMemory._of(self.s[idx], self.y[idx], self.gamma[idx], self.updates)

    def put(self, idx: Tensor, other: LBFGSMemory) -> None:
        """Store the memory of ``other`` (its pairs are this one's ``idx``)."""
        self.s[idx], self.y[idx], self.gamma[idx] = other.s, other.y, other.gamma
        self.updates = max(self.updates, other.updates)

    def refined(self, refinement: Tensor, d: int) -> LBFGSMemory:
        """The memory carried into a refined parametrisation ``x' = A x`` (per pair).

        Steps map exactly, ``s' = A s``. Gradients map as ``g = Aᵀ g'``, so a
        gradient change is carried as the least-norm ``y' = A (AᵀA)⁻¹ y``, which
        keeps every pair's measured curvature ``s'ᵀy' = sᵀy``; the new
        directions get their curvature from the next preconditioner. This
        keeps what the optimiser learnt about slow, large-scale modes (which
        the coarse curve already represents) across a refinement.

        Args:
            refinement: ``A`` ``(A, n', n)`` acting on control points.
            d: the latent dimension (each control point has ``d`` parameters).
        """
        a, m = self.s.shape[:2]

        def apply(mat: Tensor, v: Tensor) -> Tensor:
            blocks = v.reshape(a, m, -1, d)
            return torch.einsum("aij,amjd->amid", mat, blocks).reshape(a, m, -1)

        s = apply(refinement, self.s)
        y = apply(torch.linalg.pinv(refinement).mT, self.y)  # A (AᵀA)⁻¹ = (A⁺)ᵀ
        return LBFGSMemory._of(s, y, self.gamma.clone(), self.updates)

    def direction(self, g: Tensor, first_scale: Tensor | Callable[[], Tensor]) -> Tensor:
        """``−H g`` for every pair. ``H0`` is the preconditioner (:meth:`precondition`)
        where there is one, else ``γ I`` with ``γ`` from the last curvature pair, or
        ``first_scale`` ``(A,)`` (or a function giving it, called only if needed) for
        pairs without updates yet."""
        rhs = torch.cat([g[..., None], self.y.mT], -1)  # [g, Y], (A, p, 1 + m)
        if self.h0 is not None and self.h0_missing is None:
            h = torch.bmm(self.h0, rhs)
        else:
            scale = first_scale() if callable(first_scale) else first_scale
            gamma = torch.where(self.gamma > 0, self.gamma, scale)[:, None, None]
            h = gamma * rhs
            if self.h0 is not None:
                assert self.h0_missing is not None
                h = torch.where(self.h0_missing[:, None, None], h, torch.bmm(self.h0, rhs))
        hg, hy = h[..., :1], h[..., 1:]  # H0 g (A, p, 1), H0 Y (A, p, m)
        if self.updates == 0:
            return -hg[..., 0]
        s, y = self.s, self.y
        sy = torch.bmm(s, y.mT)  # (A, m, m): s_i · y_j
        diag = sy.diagonal(dim1=-2, dim2=-1)
        r = sy.triu() + torch.diag_embed((diag == 0).to(sy.dtype))
        bmm = torch.bmm  # (plain batched products: ``@`` dispatches several ops each)
        c = torch.linalg.solve_triangular(r, bmm(s, g[..., None]), upper=True)
        inner = diag[..., None] * c + bmm(bmm(y, hy), c) - bmm(y, hg)
        p = torch.linalg.solve_triangular(r.mT, inner, upper=False)
        return (bmm(hy, c) - hg - bmm(s.mT, p))[..., 0]

    def update(self, s: Tensor, y: Tensor, idx: Tensor | None = None) -> None:
        """Push the step ``s`` and gradient change ``y`` of the pairs ``idx`` (default: all)."""
        self.updates += 1
        sy, yy = _dot(s, y), _dot(y, y)
        ok = sy > 1e-10 * torch.sqrt(_dot(s, s) * yy)  # curvature condition
        gamma = sy / yy  # (selected only where ok: then yy > 0)
        okc = ok[:, None]
        s, y = torch.where(okc, s, 0.0), torch.where(okc, y, 0.0)  # a failed pair: zeros
        if idx is None:
            self.s = torch.cat([self.s[:, 1:], s[:, None]], 1)
            self.y = torch.cat([self.y[:, 1:], y[:, None]], 1)
            self.gamma = torch.where(ok, gamma, self.gamma)
            return
        self.s[idx] = torch.cat([self.s[idx][:, 1:], s[:, None]], 1)
        self.y[idx] = torch.cat([self.y[idx][:, 1:], y[:, None]], 1)
        self.gamma[idx] = torch.where(ok, gamma, self.gamma[idx])
