"""Pull-back metrics ``G(z) = J(z)ᵀ J(z)`` of a map ``embed: (..., d) -> (..., m)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from latentgeo._validation import check_points, check_tangent
from latentgeo.metrics.base import Metric
from latentgeo.metrics.embeddings import DecoderEmbedding
from latentgeo.metrics.forward_mode import TangentPropagator, try_tangent_propagator
from latentgeo.metrics.jacobians import chunks, push_tangents, reverse_jacobian

__all__ = ["PullbackMetric"]


def _gram_chords(h: Tensor, linear: nn.Linear) -> Tensor:
    """``‖W Δh‖²`` along ``h (B, N, hidden)`` as ``Δhᵀ (WᵀW) Δh``, ``(B, N − 1)``."""
    dh = h[:, 1:] - h[:, :-1]
    return ((dh @ (linear.weight.mT @ linear.weight)) * dh).sum(-1)


def _check_module_dtype(module: object, z: Tensor, name: str = "the decoder") -> None:
    """Raise a clear error when a module's floating parameters differ from ``z`` in dtype/device."""
    if not isinstance(module, nn.Module):
        return
    for p in module.parameters():
        if torch.is_floating_point(p):
            if p.dtype != z.dtype:
                raise TypeError(
                    f"z has dtype {z.dtype} but {name}'s parameters are {p.dtype}; convert one "
                    f"of them (e.g. metric.to({z.dtype}) or z.to({p.dtype}))"
                )
            if p.device != z.device:
                raise ValueError(
                    f"z is on {z.device} but {name}'s parameters are on {p.device}; move one "
                    f"of them (e.g. metric.to(z.device))"
                )
            return


class PullbackMetric(Metric):
    """The pull-back ``G(z) = J(z)ᵀ J(z)`` of the Euclidean metric through ``embed``.

    ``squared_norm`` is one forward-mode product, ``‖J v‖²``, never a
    Jacobian; ``metric_tensor`` builds ``J`` by forward mode (reverse mode when
    the output is narrower than the latent space), in chunks of at most
    ``chunk_size`` points to bound memory.

    Modules that ``torch.fx`` can trace (``nn.Sequential`` MLPs and CNNs, most
    hand-written decoders) use :class:`~latentgeo.metrics.forward_mode.TangentPropagator`:
    one traced pass pushes all tangents through the network with one extra
    product per layer and tangent (a JVP costs about two forward passes).
    Anything else uses ``torch.func.jvp``/``vmap``. Both are exact.

    ``embed`` must treat the rows of its input independently (any decoder in
    eval mode does). Its output may have any trailing shape (``(N, m)``,
    ``(N, 1, 28, 28)``...): it is flattened to ``(N, m)``.

    Args:
        embed: the map, a module or function taking ``(N, d)``.
        chunk_size: at most this many points per Jacobian evaluation
            (``None``: all at once). For ``metric_tensor`` the memory is about
            ``chunk_size · d · m`` numbers.
        latent_dim: ``d``, if known (used to check inputs).

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
        self.embed = embed
        self.chunk_size = chunk_size
        self.latent_dim = latent_dim
        self._out_dim: int | None = None
        self._propagator: TangentPropagator | None = None
        self._traced = False
        self._parts_ok: bool | None = None

    def _get_propagator(self) -> TangentPropagator | None:
        if not self._traced:
            self._propagator = try_tangent_propagator(self.embed)
            self._traced = True
        return self._propagator

    def _push(self, z: Tensor, tangents: Tensor) -> Tensor:
        """``J(z) T`` flattened: ``z (n, d)``, ``tangents (K, n, d)`` -> ``(K, n, m)``."""
        prop = self._get_propagator()
        if prop is not None:
            try:
                _, out = prop(z, tangents)
                return out.reshape(tangents.shape[0], z.shape[0], -1)
            except Exception:
                self._propagator = None
        return push_tangents(self._flat_embed, z, tangents)

    # ------------------------------------------------------------------ helpers
    def _flat_embed(self, z: Tensor) -> Tensor:
        if isinstance(self.embed, DecoderEmbedding):
            # a decoder returning a distribution: its traced embedding computes the same
            # tensors without building (and validating) the distribution object
            prop = self._get_propagator()
            if prop is not None:
                try:
                    return prop.values(z).reshape(z.shape[0], -1)
                except Exception:
                    self._propagator = None
        out = self.embed(z)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"embed must return a torch.Tensor, got {type(out).__name__}; use "
                "latentgeo.metrics.as_metric(decoder) for decoders returning distributions"
            )
        return out.reshape(z.shape[0], -1)

    def metric_tensor(self, z: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        _check_module_dtype(self.embed, z)
        return self._metric_tensor(z)

    def squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        v = check_tangent(z, v, "v")
        _check_module_dtype(self.embed, z)
        return self._squared_norm(z, v)

    def inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        u = check_tangent(z, u, "u")
        v = check_tangent(z, v, "v")
        _check_module_dtype(self.embed, z)
        return self._inner(z, u, v)

    def jacobian(self, z: Tensor) -> Tensor:
        """The Jacobian of ``embed`` (output flattened).

        Args:
            z: points of shape ``(..., d)``.

        Returns:
            ``J`` of shape ``(..., m, d)``.
        """
        z = check_points(z, "z", dim=self.latent_dim)
        _check_module_dtype(self.embed, z)
        return self._jacobian(z)

    def _jacobian(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        parts = [self._chunk_rows(flat[sl]).mT for sl in chunks(flat.shape[0], self.chunk_size)]
        jac = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
        return jac.reshape(*batch, jac.shape[-2], d)

    def _chunk_rows(self, zc: Tensor) -> Tensor:
        """``Jᵀ`` of shape ``(n, d, m)`` for points ``(n, d)`` (a strided view, not copied)."""
        d = zc.shape[-1]
        if self._out_dim is not None and self._out_dim < d:
            return reverse_jacobian(self._flat_embed, zc).mT
        basis = torch.eye(d, dtype=zc.dtype, device=zc.device).unsqueeze(1)
        cols = self._push(zc, basis.expand(d, zc.shape[0], d))  # (d, n, m)
        self._out_dim = cols.shape[-1]
        return cols.transpose(0, 1)

    def _final_linear_push(self, z: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(J_h T, WᵀW)`` when ``embed`` ends with a linear layer ``W h + b`` wider than h.

        ``Tᵀ Jᵀ J T = (J_h T)ᵀ (WᵀW) (J_h T)``: for a decoder whose last layer maps
        64 hidden units to 784 pixels this skips the widest product entirely.
        """
        prop = self._get_propagator()
        if prop is None:
            return None
        linear = prop.final_linear
        if linear is None or linear.out_features <= linear.in_features:
            return None
        try:
            _, pushed = prop.push_to_final_linear(z, tangents)
        except Exception:
            self._propagator = None
            return None
        weight = linear.weight
        return pushed, weight.mT @ weight

    def _chord_differences(self, x: Tensor) -> Tensor:
        """Squared chords ``‖φ(xᵢ₊₁) − φ(xᵢ)‖²`` along polylines ``x (B, N, d)`` -> ``(B, N − 1)``.

        When ``embed`` ends with a widening linear layer ``W h + b``, the chords
        are ``Δhᵀ (WᵀW) Δh`` in the hidden space: the output is never computed
        (and the bias cancels exactly instead of by subtraction). The same holds
        part by part for an output concatenated from parts, some of them linear
        layers (a Gaussian decoder's ``(μ, σ)`` with a linear mean head).
        """
        b, n, d = x.shape
        flat = x.reshape(-1, d)
        prop = self._get_propagator()
        linear = None if prop is None else prop.final_linear
        if prop is not None and linear is not None and linear.out_features > linear.in_features:
            try:
                h = prop.values_to_final_linear(flat)[1].reshape(b, n, -1)
            except Exception:
                self._propagator = None
            else:
                return _gram_chords(h, linear)
        if prop is not None and self._parts_checked(prop, flat):
            total = x.new_zeros(b, n - 1)
            for value, part_linear in prop.chord_parts(flat) or []:
                v = value.reshape(b, n, -1)
                if part_linear is not None:
                    total = total + _gram_chords(v, part_linear)
                else:
                    diff = v[:, 1:] - v[:, :-1]
                    total = total + (diff * diff).sum(-1)
            return total
        out = self._flat_embed(flat).reshape(b, n, -1)
        diff = out[:, 1:] - out[:, :-1]
        return (diff * diff).sum(-1)

    def _parts_checked(self, prop: TangentPropagator, z: Tensor) -> bool:
        """Whether the output's parts (see ``TangentPropagator.chord_parts``) can be used:
        checked once, on two points, against the whole output (broadcasting inside
        the module could make the parts differ from it)."""
        if self._parts_ok is None:
            self._parts_ok = False
            try:
                probe = z[:2] if z.shape[0] >= 2 else z.expand(2, -1)
                parts = prop.chord_parts(probe)
                if parts is not None:
                    whole = self._flat_embed(probe)
                    pieces = [
                        v if lin is None else torch.nn.functional.linear(v, lin.weight, lin.bias)
                        for v, lin in parts
                    ]
                    cat = torch.cat([p.reshape(2, -1) for p in pieces], -1)
                    self._parts_ok = cat.shape == whole.shape and bool(
                        torch.allclose(cat.sort(-1).values, whole.sort(-1).values)
                    )
            except Exception:
                self._parts_ok = False
        return self._parts_ok

    # ------------------------------------------------------------ the protocol

    def _reduced_push(
        self, z: Tensor, tangents: Tensor
    ) -> list[tuple[Tensor, Tensor | None]] | None:
        """``J T`` for ``z (n, d)``, ``T (K, n, d)`` as parts ``(P_i (K, n, ·), M_i)`` with
        ``(J a)·(J b) = Σ_i (P_i a)ᵀ M_i (P_i b)`` (``M_i = None``: the identity).

        A final widening linear layer ``W h + b`` is one part ``(J_h T, WᵀW)``;
        an output concatenated from parts with linear heads (a Gaussian
        decoder's ``(μ, σ)``) is one part per piece, the linear ones before their
        layer (see ``TangentPropagator.tangent_parts``): the widest products of a
        decoder are never formed. ``None`` for other embeddings.
        """
        reduced = self._final_linear_push(z, tangents)
        if reduced is not None:
            return [reduced]
        prop = self._get_propagator()
        if prop is not None and self._parts_checked(prop, z):
            try:
                parts = prop.tangent_parts(z, tangents)
            except Exception:
                self._propagator = None
            else:
                if parts is not None:
                    return [(t, None if w is None else w.weight.mT @ w.weight) for t, w in parts]
        return None

    def _metric_tensor(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        parts = []
        for sl in chunks(flat.shape[0], self.chunk_size):
            zc = flat[sl]
            n = zc.shape[0]
            basis = torch.eye(d, dtype=zc.dtype, device=zc.device).unsqueeze(1)
            reduced = self._reduced_push(zc, basis.expand(d, n, d))
            if reduced is None:
                rows = self._chunk_rows(zc)
                parts.append(rows @ rows.mT)  # batched GEMM on the strided view: no copy of J
                continue
            g = zc.new_zeros(n, d, d)
            for pushed, gram in reduced:
                rows = pushed.transpose(0, 1)  # (n, d, ·): a strided view, not a copy
                g = g + (rows @ rows.mT if gram is None else rows @ (gram @ rows.mT))
            parts.append(g)
        g = torch.cat(parts, 0) if len(parts) > 1 else parts[0]
        return g.reshape(*batch, d, d)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        parts = []
        for sl in chunks(zf.shape[0], self.chunk_size):
            tangent = vf[sl].unsqueeze(0)
            reduced = self._reduced_push(zf[sl], tangent)
            total = None
            for pushed, gram in reduced or [(self._push(zf[sl], tangent), None)]:
                q = pushed[0]  # (n, ·)
                term = ((q if gram is None else q @ gram) * q).sum(-1)
                total = term if total is None else total + term
            parts.append(zf.new_zeros(zf[sl].shape[0]) if total is None else total)
        return torch.cat(parts, 0).reshape(batch)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, uf, vf = z.reshape(-1, d), u.reshape(-1, d), v.reshape(-1, d)
        parts = []
        for sl in chunks(zf.shape[0], self.chunk_size):
            tangents = torch.stack([uf[sl], vf[sl]])
            reduced = self._reduced_push(zf[sl], tangents)
            total = None
            for pushed, gram in reduced or [(self._push(zf[sl], tangents), None)]:
                ju, jv = pushed
                term = ((ju if gram is None else ju @ gram) * jv).sum(-1)
                total = term if total is None else total + term
            parts.append(zf.new_zeros(zf[sl].shape[0]) if total is None else total)
        return torch.cat(parts, 0).reshape(batch)
