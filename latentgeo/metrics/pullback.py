"""Pull-back metrics ``G(z) = J(z)ᵀ J(z)`` of a map ``embed: (..., d) -> (..., m)``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from latentgeo._chunked import run_over_points
from latentgeo._validation import check_points, check_tangent
from latentgeo.exceptions import warn_slower_path
from latentgeo.metrics.base import Metric
from latentgeo.metrics.checks import check_eval_mode
from latentgeo.metrics.embeddings import DecoderEmbedding
from latentgeo.metrics.forward import (
    TangentPropagator,
    TaylorPropagator,
    UnsupportedOperation,
    fast_path_report,
)
from latentgeo.metrics.forward.kinks import kinked_operations
from latentgeo.metrics.jacobians import push_tangents, reverse_jacobian
from latentgeo.metrics.pullback_parts import (
    Pieces,
    check_points_reach,
    decoded_chords,
    nested_terms,
    parts_match,
    reduced_pieces,
    taylor_terms,
    traced_chords,
    weighted_gram,
)
from latentgeo.metrics.terms import GeodesicTerms

__all__ = ["SHARED_JACOBIAN_WORK", "PullbackMetric"]

T = TypeVar("T")

#: :meth:`PullbackMetric.geodesic_terms_along` measures ``J`` once for M velocities when
#: that saves at least this many floating-point operations, ``(M − 1)·N·d`` tangent rows
#: at the cost of one forward pass of a point each (counted once per metric by
#: ``torch.utils.flop_counter``); below it the second pass through the graph costs more
#: than it saves and the points are repeated instead. One thread, float64, M = 3: an MLP
#: d → 64 → 64 → 784 (1.1e5 operations a point) is 1.2x faster at d = 16 with 16 points
#: (5.7e7) and 2.6x with 256, a wash at d = 8 with 16 (2.8e7) or d = 2 with 64, slower
#: below; a transposed-convolution decoder (6.7e6 a point) gains from 1 point (2.2e8);
#: a closed-form embedding without matrix products (the sphere's, 0) never does
SHARED_JACOBIAN_WORK = 2**25


class PullbackMetric(Metric):
    """The pull-back ``G(z) = J(z)ᵀ J(z)`` of the Euclidean metric through ``embed``.

    ``squared_norm`` is one forward-mode product, ``‖J v‖²``, never a
    Jacobian; ``metric_tensor`` builds ``J`` by forward mode (reverse mode when
    the output is narrower than the latent space), in chunks sized by the
    memory budget (or of ``chunk_size`` points); the geodesic ODE's terms come from
    second-order forward mode.

    Modules that ``torch.fx`` can trace (``nn.Sequential`` MLPs and CNNs, most
    hand-written decoders) use the forward-mode engine (:mod:`latentgeo.metrics.forward`):
    one traced pass pushes all tangents through the network with one rule per
    layer (a JVP costs about two forward passes). Anything else uses
    ``torch.func.jvp``/``vmap``. Both are exact. When the metric is built, a
    module that cannot be traced, or calls without a rule (which use the exact
    per-node ``torch.func`` path), are named once in a
    :class:`~latentgeo.exceptions.PerformanceWarning`.

    ``embed`` must treat the rows of its input independently: a module whose
    layers behave differently in training mode (dropout, batch normalisation)
    must be in eval mode, or a clear error says so.  Its output may have any
    trailing shape (``(N, m)``, ``(N, 1, 28, 28)``...): it is flattened to ``(N, m)``.

    Args:
        embed: the map, a module or function taking ``(N, d)``.
        chunk_size: at most this many points per evaluation (``None``: as
            many as the memory budget allows, see :mod:`latentgeo.memory`,
            from the bytes per point measured on the first call).
        latent_dim: ``d``, if known (used to check inputs).

    Raises:
        ValueError: a layer of ``embed`` is in training mode and behaves differently there.

    Example:
        >>> import torch
        >>> a = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
        >>> g = PullbackMetric(lambda z: z @ a.T)
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[10.,  2.],
                [ 2.,  5.]])
        >>> g.squared_norm(torch.zeros(2), torch.tensor([1.0, 0.0]))
        tensor(10.)
    """

    def __init__(
        self,
        embed: Callable[[Tensor], Tensor],
        *,
        chunk_size: int | None = None,
        latent_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not callable(embed):
            raise TypeError(f"embed must be callable, got {type(embed).__name__}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        check_eval_mode(self._decoder_of(embed))
        self.embed = embed
        self.chunk_size = chunk_size
        self.latent_dim = latent_dim
        self._out_dim: int | None = None
        self._point_flops: int | None = None  # one point's forward pass (SHARED_JACOBIAN_WORK)
        self._parts_ok: bool | None = None
        self._first: TangentPropagator | None = None
        self._second: TaylorPropagator | None = None
        self._footprint_source: object | None = None  # see footprint_owner
        self._build_propagators()

    def __deepcopy__(self, memo: dict[int, Any]) -> PullbackMetric:
        """A copy over a copy of ``embed``, with its own propagators (see ``Metric.to``)."""
        cls = type(self)
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key not in ("_first", "_second"):
                clone.__dict__[key] = copy.deepcopy(value, memo)
        clone._first = clone._second = None
        if self._first is not None:  # the original had the fast path: so has the copy
            clone._build_propagators(announce=False)
        return clone

    # ------------------------------------------------------------ the engine
    @staticmethod
    def _decoder_of(embed: object) -> object:
        return embed.decoder if isinstance(embed, DecoderEmbedding) else embed

    def _announce(self, text: str) -> None:
        warn_slower_path(self._decoder_of(self.embed), text)

    def _build_propagators(self, announce: bool = True) -> None:
        """The traced propagators, if ``embed`` has a fast path; say once what it lacks."""
        report = fast_path_report(self.embed)
        if announce and not report.usable and isinstance(self.embed, nn.Module):
            # a module, or the wrapper of a function
            self._announce(
                f"no traced fast path ({report.reason}); its metric uses torch.func "
                "(exact, several times slower)"
            )
        elif announce and report.usable and report.unsupported:
            self._announce(
                "no fast forward-mode rule for " + "; ".join(report.unsupported) + ": these "
                "calls use the exact per-node torch.func path (slower)"
            )
        if report.usable:
            assert isinstance(self.embed, nn.Module)
            self._first = TangentPropagator(self.embed)
            self._second = TaylorPropagator(self.embed)

    def _get_propagator(self) -> TangentPropagator | None:
        """The first-order propagator (``None``: the generic ``torch.func`` path)."""
        return self._first

    def _fall_back(self, err: UnsupportedOperation) -> None:
        """Use the generic path from now on, after the traced one met something it cannot run."""
        self._announce(f"{err}; its metric uses torch.func from now on (exact, slower)")
        self._first = self._second = None

    def _push(self, z: Tensor, tangents: Tensor) -> Tensor:
        """``J(z) T`` flattened: ``z (n, d)``, ``tangents (K, n, d)`` -> ``(K, n, m)``."""
        if self._first is not None:
            try:
                _, out = self._first(z, tangents)
                return out.reshape(tangents.shape[0], z.shape[0], -1)
            except UnsupportedOperation as err:
                self._fall_back(err)
        return push_tangents(self.flat_embedding, z, tangents)

    def flat_embedding(self, z: Tensor) -> Tensor:
        """``embed(z)`` flattened to ``(N, m)``, for points ``z (N, d)``.

        The trace computes it where that is faster: a decoder returning a distribution
        (not built nor validated), layers with faster forwards (transposed convolutions,
        on the CPU; elsewhere they would call the layer itself, after the trace's overhead)."""
        prop = self._first
        faster = prop is not None and prop.faster_values and z.device.type == "cpu"
        if prop is not None and (isinstance(self.embed, DecoderEmbedding) or faster):
            try:
                return prop.values(z).reshape(z.shape[0], -1)
            except UnsupportedOperation as err:
                self._fall_back(err)
        out = self.embed(z)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"embed must return a torch.Tensor, got {type(out).__name__}; use "
                "latentgeo.metrics.as_metric(decoder) for decoders returning distributions"
            )
        return out.reshape(z.shape[0], -1)

    @property
    def is_pullback(self) -> bool:
        return True

    def kinks(self) -> tuple[str, ...]:
        return kinked_operations(self.embed)

    def check_like(self, z: Tensor) -> None:
        decoder = self._decoder_of(self.embed)
        for module in (decoder, *getattr(self.embed, "captured", ())):
            check_eval_mode(module, "decoder", built=True)  # before anything runs it
        check_points_reach(self.embed, z, self._squared_norm)

    # ------------------------------------------------------------ the protocol
    def metric_tensor(self, z: Tensor, *, validate: bool = True) -> Tensor:
        if validate:
            z = check_points(z, "z", dim=self.latent_dim)
            self.check_like(z)
        return self._metric_tensor(z)

    def squared_norm(self, z: Tensor, v: Tensor, *, validate: bool = True) -> Tensor:
        if validate:
            z = check_points(z, "z", dim=self.latent_dim)
            v = check_tangent(z, v, "v")
            self.check_like(z)
        return self._squared_norm(z, v)

    def inner(self, z: Tensor, u: Tensor, v: Tensor, *, validate: bool = True) -> Tensor:
        if validate:
            z = check_points(z, "z", dim=self.latent_dim)
            u = check_tangent(z, u, "u")
            v = check_tangent(z, v, "v")
            self.check_like(z)
        return self._inner(z, u, v)

    def jacobian(self, z: Tensor) -> Tensor:
        """The Jacobian of ``embed`` (output flattened).

        Args:
            z: points of shape ``(..., d)``.

        Returns:
            ``J`` of shape ``(..., m, d)``.
        """
        z = check_points(z, "z", dim=self.latent_dim)
        self.check_like(z)
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        parts = self._chunked("jacobian", lambda sl: self._chunk_rows(flat[sl]).mT, flat)
        jac = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
        return jac.reshape(*batch, jac.shape[-2], d)

    def _chunked(self, kind: str, fn: Callable[[slice], T], flat: Tensor) -> list[T]:
        """``fn`` over chunks of the points ``flat (N, d)`` (see :mod:`latentgeo.memory`)."""
        owner, prefix = self.footprint_owner()
        return run_over_points(
            fn, flat, owner=owner, kind=(prefix, kind), chunk_size=self.chunk_size
        )

    def footprint_owner(self) -> tuple[object, Hashable]:
        """The decoder :func:`~latentgeo.metrics.as_metric` built this metric from, shared by
        every metric it builds from that decoder (so that one made anew for every call
        measures nothing twice), else this metric."""
        source = self._footprint_source
        return (self, ()) if source is None else (source, ("as_metric", type(self.embed)))

    def _chunk_rows(self, zc: Tensor) -> Tensor:
        """``Jᵀ`` of shape ``(n, d, m)`` for points ``(n, d)`` (a strided view, not copied)."""
        d = zc.shape[-1]
        if self._out_dim is not None and self._out_dim < d:
            return reverse_jacobian(self.flat_embedding, zc).mT
        basis = torch.eye(d, dtype=zc.dtype, device=zc.device).unsqueeze(1)
        cols = self._push(zc, basis.expand(d, zc.shape[0], d))  # (d, n, m)
        self._out_dim = cols.shape[-1]
        return cols.transpose(0, 1)

    def _metric_tensor(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        parts = self._chunked("metric_tensor", lambda sl: self._chunk_metric(flat[sl]), flat)
        g = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
        return g.reshape(*batch, d, d)

    def _chunk_metric(self, zc: Tensor) -> Tensor:
        """``G`` ``(n, d, d)`` at the points ``zc (n, d)``."""
        n, d = zc.shape
        basis = torch.eye(d, dtype=zc.dtype, device=zc.device).unsqueeze(1)
        reduced = self._reduced_push(zc, basis.expand(d, n, d))
        if reduced is None:
            rows = self._chunk_rows(zc)
            return rows @ rows.mT  # batched GEMM on the strided view: no copy of J
        g = zc.new_zeros(n, d, d)
        for pushed, weights in reduced:
            g = g + weighted_gram(pushed, weights)
        return g

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        parts = self._chunked(
            "squared_norm", lambda sl: self._chunk_inner(zf[sl], vf[sl].unsqueeze(0)), zf
        )
        return torch.cat(parts, 0).reshape(batch)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, uf, vf = z.reshape(-1, d), u.reshape(-1, d), v.reshape(-1, d)
        parts = self._chunked(
            "inner", lambda sl: self._chunk_inner(zf[sl], torch.stack([uf[sl], vf[sl]])), zf
        )
        return torch.cat(parts, 0).reshape(batch)

    def _chunk_inner(self, zc: Tensor, tangents: Tensor) -> Tensor:
        """``(J a)·(J b)`` ``(n,)`` for tangents ``[a, b]`` ``(2, n, d)``, or ``‖J a‖²`` for
        ``[a]`` ``(1, n, d)``, at the points ``zc (n, d)``."""
        reduced = self._reduced_push(zc, tangents)
        total = None
        for pushed, weights in reduced or [(self._push(zc, tangents), None)]:
            ja, jb = pushed[0], pushed[-1]  # (n, ·)
            term = ((ja if weights is None else ja @ weights) * jb).sum(-1)
            total = term if total is None else total + term
        return zc.new_zeros(zc.shape[0]) if total is None else total

    # ------------------------------------------------------------ the shortcuts
    def _reduced_push(self, z: Tensor, tangents: Tensor) -> Pieces | None:
        """``J T`` as parts ``(P_i, M_i)`` (see :func:`reduced_pieces`), ``None`` when
        the embedding is not traced or has no linear head to reduce through."""
        try:
            return reduced_pieces(self._first, z, tangents, self._parts_checked)
        except UnsupportedOperation as err:
            self._fall_back(err)
        return None

    def _parts_checked(self, z: Tensor) -> bool:
        """Whether the output's parts (see ``TangentPropagator.chord_parts``) can be used:
        checked once, on two points, against the whole output (broadcasting inside
        the module could make the parts differ from it)."""
        if self._parts_ok is None and self._first is not None:
            self._parts_ok = False  # (also if the check raises: it is not tried again)
            probe = z[:2] if z.shape[0] >= 2 else z.expand(2, -1)
            self._parts_ok = parts_match(self._first, probe, self.flat_embedding)
        return bool(self._parts_ok)

    def chords(self, pos: Tensor) -> Tensor:
        """Squared chords ``‖φ(xᵢ₊₁) − φ(xᵢ)‖²`` along polylines ``pos (B, N, d)``: ``(B, N − 1)``.

        When ``embed`` ends with a widening linear layer ``W h + b``, the chords
        are ``Δhᵀ (WᵀW) Δh`` in the hidden space: the output is never computed
        (and the bias cancels exactly instead of by subtraction). The same holds
        part by part for an output concatenated from parts, some of them linear
        layers (a Gaussian decoder's ``(μ, σ)`` with a linear mean head).
        """
        if self._first is not None:
            try:
                chords = traced_chords(self._first, pos, self._parts_checked)
                if chords is not None:
                    return chords
            except UnsupportedOperation as err:
                self._fall_back(err)
        flat = pos.reshape(-1, pos.shape[-1])
        parts = self._chunked("chords", partial(decoded_chords, self.flat_embedding, flat), flat)
        sq = torch.cat(parts) if len(parts) > 1 else parts[0]
        return sq.reshape(pos.shape[:2])[:, :-1]  # not from a curve's end to the next's start

    # ------------------------------------------------------------ the geodesic ODE
    def geodesic_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        """``(JᵀJ, Jᵀ ∂²f[v, v])``, chunked like the metric.

        ``J`` and the second directional derivative ``∂²f[v, v]`` come from one
        second-order pass of the forward-mode engine (through a final widening
        linear layer or linear heads, ``J_hᵀ(WᵀW)J_h`` and ``J_hᵀ(WᵀW)∂²h``); an
        untraceable ``embed`` uses ``d`` batched JVPs and a JVP of a JVP.
        Nothing of size ``m × d × d`` (a Hessian) is formed.
        """
        return self._terms(z, v, "geodesic_terms")

    def geodesic_terms_along(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        """:meth:`geodesic_terms` for ``v (M, N, d)``: ``J`` measured once for all M, where
        that saves at least :data:`SHARED_JACOBIAN_WORK` (else the points are repeated)."""
        if self._own_terms(PullbackMetric):
            return super().geodesic_terms_along(z, v)
        m, n, d = v.shape
        if self._point_flops is None:  # what a tangent row costs, once
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                self.flat_embedding(z[:1])
            self._point_flops = int(counter.get_total_flops())
        if (m - 1) * n * d * self._point_flops < SHARED_JACOBIAN_WORK:
            return super().geodesic_terms_along(z, v)
        return self._terms(z, v, f"geodesic_terms x{m}")

    def _terms(self, z: Tensor, v: Tensor, kind: str) -> GeodesicTerms:
        """The terms at ``z (N, d)`` for ``v (…, N, d)``, chunked over the points."""

        def terms_of(sl: slice) -> GeodesicTerms:
            zs, vs = z[sl], v[..., sl, :]
            terms = self._taylor_terms(zs, vs)
            return nested_terms(self.flat_embedding, zs, vs) if terms is None else terms

        return GeodesicTerms.joined(self._chunked(kind, terms_of, z))

    def _taylor_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms | None:
        """The terms by the second-order propagator (``None``: not traced)."""
        if self._second is None:
            return None
        try:
            return taylor_terms(self._second, z, v, self._parts_checked(z))
        except UnsupportedOperation as err:
            self._fall_back(err)
            return None
