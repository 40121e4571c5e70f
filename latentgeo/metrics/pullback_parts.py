"""The pieces of a pull-back's products: Gram matrices of linear heads, and ODE terms.

A pull-back ``G = JᵀJ`` of a map ending in linear layers ``W h + b`` is computed
part by part, ``Σ_p (J_p a)ᵀ M_p (J_p b)`` with ``M_p = WᵀW`` for a linear head
(``None``: the identity), so that the widest products are never formed; the
geodesic ODE's ``b = Jᵀ ∂²f[v, v]`` likewise. Helpers of :class:`PullbackMetric`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp

from latentgeo._validation import check_alike
from latentgeo.metrics.forward import TangentPropagator, TaylorPropagator
from latentgeo.metrics.jacobians import FlatMap, forward_jacobian, nested_forward_mode
from latentgeo.metrics.terms import GeodesicTerms

__all__ = [
    "Pieces",
    "check_module_dtype",
    "check_points_reach",
    "decoded_chords",
    "final_linear_piece",
    "gram",
    "gram_chords",
    "head_chords",
    "nested_terms",
    "parts_match",
    "reduced_pieces",
    "taylor_terms",
    "terms_from_pieces",
    "through_head",
    "traced_chords",
    "weighted_gram",
    "widening",
]

Pieces = list[tuple[Tensor, Tensor | None]]  # (J_p T (K, n, ·), its Gram matrix or None)


def gram(linear: nn.Linear) -> Tensor:
    """``WᵀW`` of a linear layer."""
    return linear.weight.mT @ linear.weight


def weighted_gram(pushed: Tensor, weights: Tensor | None) -> Tensor:
    """``Pᵀ M P`` per point, ``(n, d, d)``, from tangents ``pushed (d, n, h)`` and ``M (h, h)``
    (``None``: the identity).

    ``P M`` is taken first on the contiguous ``(d, n, h)`` block, one GEMM over all
    ``d·n`` rows; multiplying ``M`` into each point's ``(h, d)`` slice instead would be
    ``n`` small products (4x slower at ``d = 2``, 2.7x at ``d = 50``, ``h = 256``).
    """
    rows = pushed.transpose(0, 1)  # (n, d, h): a strided view, not a copy
    left = rows if weights is None else (pushed @ weights).transpose(0, 1)
    return left @ rows.mT


def widening(linear: nn.Linear | None) -> bool:
    """Whether a linear layer maps to more outputs than it takes (so ``WᵀW`` is cheaper)."""
    return linear is not None and linear.out_features > linear.in_features


def gram_chords(h: Tensor, gram: Tensor) -> Tensor:
    """``‖W Δh‖²`` along ``h (B, N, hidden)`` as ``Δhᵀ (WᵀW) Δh``, ``(B, N − 1)``."""
    dh = h[:, 1:] - h[:, :-1]
    return ((dh @ gram) * dh).sum(-1)


def check_module_dtype(module: object, z: Tensor, name: str = "the decoder") -> None:
    """Raise a clear error when a module's floating parameters differ from ``z`` in dtype/device."""
    if not isinstance(module, nn.Module):
        return
    for p in module.parameters():
        if torch.is_floating_point(p):
            check_alike(
                p,
                z,
                "z has dtype {like.dtype} but {name}'s parameters are {x.dtype}; convert one "
                "of them (e.g. metric.to({like.dtype}) or z.to({x.dtype}))",
                "z is on {like.device} but {name}'s parameters are on {x.device}; move one "
                "of them (e.g. metric.to(z.device))",
                name=name,
            )
            return


def check_points_reach(
    module: object, z: Tensor, squared_norm: Callable[[Tensor, Tensor], Tensor]
) -> None:
    """:func:`check_module_dtype` for an entry point, unless the module copes: where the
    dtype or device differs, one point is tried through ``squared_norm`` (a decoder may cast
    its input itself) and the clear error raised only if that fails."""
    try:
        check_module_dtype(module, z)
    except TypeError as mismatch:
        one = z.reshape(-1, z.shape[-1])[:1]
        try:
            with torch.no_grad():
                squared_norm(one, torch.zeros_like(one))
        except RuntimeError:
            raise mismatch from None


def _gram_cheaper(linear: nn.Linear, rows: int) -> bool:
    """Whether ``aᵀ (WᵀW) b`` over ``rows`` vectors costs less than applying ``W`` to them:
    ``rows·h·m`` multiply-adds against ``h²·m + rows·h²``."""
    h, m = linear.in_features, linear.out_features
    return rows * (m - h) > h * m


def through_head(linear: nn.Linear, *tangents: Tensor) -> tuple[list[Tensor], Tensor | None]:
    """Tangents ``(…, h)`` before a linear head, and the head's Gram matrix ``WᵀW``; or, for so
    few vectors that forming ``WᵀW`` would cost more, the tangents after it and ``None``."""
    rows = tangents[0].numel() // linear.in_features
    if _gram_cheaper(linear, rows):
        return list(tangents), gram(linear)
    weight = linear.weight
    return [torch.nn.functional.linear(t, weight) for t in tangents], None


def final_linear_piece(
    prop: TangentPropagator | None, z: Tensor, tangents: Tensor
) -> tuple[Tensor, Tensor | None] | None:
    """``(J_h T, WᵀW)`` when the traced map ends with a linear layer ``W h + b`` wider than h.

    ``Tᵀ Jᵀ J T = (J_h T)ᵀ (WᵀW) (J_h T)``: for a decoder whose last layer maps
    64 hidden units to 784 pixels this skips the widest product entirely.
    """
    if prop is None or not widening(prop.final_linear):
        return None
    linear, pushed = prop.push_to_final_linear(z, tangents)
    (pushed,), weights = through_head(linear, pushed)
    return pushed, weights


def reduced_pieces(
    prop: TangentPropagator | None,
    z: Tensor,
    tangents: Tensor,
    parts_usable: Callable[[Tensor], bool],
) -> Pieces | None:
    """``J T`` for ``z (n, d)``, ``T (K, n, d)`` as parts ``(P_i (K, n, ·), M_i)`` with
    ``(J a)·(J b) = Σ_i (P_i a)ᵀ M_i (P_i b)`` (``M_i = None``: the identity).

    A final widening linear layer ``W h + b`` is one part ``(J_h T, WᵀW)``; an
    output concatenated from parts with linear heads (a Gaussian decoder's
    ``(μ, σ)``) is one part per piece, the linear ones before their layer (see
    :mod:`latentgeo.metrics.forward.patterns`), when ``parts_usable(z)`` says the
    parts reproduce the output. ``None`` for other embeddings.
    """
    head = final_linear_piece(prop, z, tangents)
    if head is not None:
        return [head]
    if prop is None or not parts_usable(z):
        return None
    parts = prop.tangent_parts(z, tangents)
    if parts is None:
        return None
    pieces: Pieces = []
    for t, w in parts:
        weights = None
        if w is not None:
            (t,), weights = through_head(w, t)
        pieces.append((t, weights))
    return pieces


def head_chords(h: Tensor, linear: nn.Linear) -> Tensor:
    """``‖W Δh‖²`` along ``h (B, N, hidden)``, ``(B, N − 1)``, the cheaper way."""
    if _gram_cheaper(linear, h.shape[0] * h.shape[1]):
        return gram_chords(h, gram(linear))
    diff = torch.nn.functional.linear(h[:, 1:] - h[:, :-1], linear.weight)
    return (diff * diff).sum(-1)


def decoded_chords(flat_embedding: FlatMap, flat: Tensor, rows: slice) -> Tensor:
    """``|φ(z_{i+1}) − φ(z_i)|²`` for the points ``i`` of ``rows`` of ``flat`` ``(N, d)``,
    decoding one point more for the last chord (``0`` after the last point): a chunk of
    the chord estimator where no final linear layer keeps it in the hidden space."""
    out = flat_embedding(flat[rows.start : rows.stop + 1])
    sq = (out[1:] - out[:-1]).square().sum(-1)
    return sq if sq.shape[0] == rows.stop - rows.start else F.pad(sq, (0, 1))


def parts_match(prop: TangentPropagator, probe: Tensor, whole_of: FlatMap) -> bool:
    """Whether the output's parts (``prop.chord_parts``, linear heads applied) are the
    whole output ``whole_of(probe)``, up to the order of its values, at the points
    ``probe`` (two suffice: broadcasting inside the module would show)."""
    parts = prop.chord_parts(probe)
    if parts is None:
        return False
    whole = whole_of(probe)
    pieces = [
        v if lin is None else nn.functional.linear(v, lin.weight, lin.bias) for v, lin in parts
    ]
    cat = torch.cat(pieces, -1)
    return cat.shape == whole.shape and bool(
        torch.allclose(cat.sort(-1).values, whole.sort(-1).values)
    )


def traced_chords(
    prop: TangentPropagator, pos: Tensor, parts_ok: Callable[[Tensor], bool]
) -> Tensor | None:
    """Squared chords ``(B, N − 1)`` along polylines ``pos (B, N, d)`` through a final
    widening linear layer, ``Δhᵀ (WᵀW) Δh`` in its input space, or part by part through
    linear heads where ``parts_ok(points)``; ``None`` where neither applies."""
    b, n, d = pos.shape
    flat = pos.reshape(-1, d)
    if widening(prop.final_linear):
        linear, h = prop.values_to_final_linear(flat)
        return head_chords(h.reshape(b, n, -1), linear)
    if not parts_ok(flat):
        return None
    total = pos.new_zeros(b, n - 1)
    for value, part_linear in prop.chord_parts(flat) or []:
        v = value.reshape(b, n, -1)
        if part_linear is not None:
            total = total + head_chords(v, part_linear)
        else:
            diff = v[:, 1:] - v[:, :-1]
            total = total + (diff * diff).sum(-1)
    return total


def taylor_terms(prop: TaylorPropagator, z: Tensor, v: Tensor, parts: bool) -> GeodesicTerms:
    """``(JᵀJ, Jᵀ ∂²f[v, v])`` by one second-order pass, through a final widening linear
    layer or (``parts``: checked to add up to the output) concatenated linear heads.

    ``v`` is ``(N, d)``, or ``(M, N, d)`` for M velocities at every point (then ``b`` is
    ``(M, N, d)``): the first pass carries ``J``'s ``d`` tangents and ``v[0]``, a second
    one only the other velocities (a second-order term needs no other tangent), so ``J``
    is measured once, not M times.
    """
    n, d = z.shape
    basis = torch.eye(d, dtype=z.dtype, device=z.device)[:, None, :].expand(d, n, d)
    raw = _raw_pieces(prop, z, basis, v if v.ndim == 2 else v[0], parts)
    if v.ndim == 3:
        seconds = [[s[None]] for _, s, _ in raw]
        if v.shape[0] > 1:
            others = v[1:].reshape(-1, d)
            none = z.new_zeros(0, others.shape[0], d)  # no first-order tangents
            rest = _raw_pieces(prop, z.repeat(v.shape[0] - 1, 1), none, others, parts)
            assert len(rest) == len(raw)  # the same parts, whatever the tangents
            for kept, (_, s, _) in zip(seconds, rest, strict=True):
                kept.append(s.reshape(-1, n, s.shape[-1]))
        raw = [(f, torch.cat(s), lin) for (f, _, lin), s in zip(raw, seconds, strict=True)]
    pieces: list[tuple[Tensor, Tensor, Any]] = []
    for first, second, linear in raw:
        if linear is None:
            pieces.append((first, second, None))
        else:
            (first, second), weights = through_head(linear, first, second)
            pieces.append((first, second, weights))
    return terms_from_pieces(pieces, z)


def _raw_pieces(
    prop: TaylorPropagator, z: Tensor, tangents: Tensor, v: Tensor, parts: bool
) -> list[tuple[Tensor, Tensor, nn.Linear | None]]:
    """``(J_p T, ∂²p[v, v], head)`` per piece: the input of a final widening linear layer,
    the concatenated parts (linear ones before their head), or the whole output."""
    final = prop.final_linear
    if final is not None and widening(final):
        linear, first, second = prop.push_to_final_linear(z, tangents, v)
        return [(first, second, linear)]
    heads = prop.tangent_parts(z, tangents, v) if parts else None
    if heads is not None:
        return heads
    _, first, second = prop(z, tangents, v)
    return [(first, second, None)]


def terms_from_pieces(pieces: list[tuple[Tensor, Tensor, Any]], z: Tensor) -> GeodesicTerms:
    """``(Σ J_pᵀ M_p J_p, Σ J_pᵀ M_p ∂²p[v, v])`` from ``(J_p (d, n, ·), ∂²p (n, ·), M_p)``
    (``∂²p`` of M velocities ``(M, n, ·)``: ``b (M, n, d)``)."""
    n, d = z.shape
    g, b = z.new_zeros(n, d, d), z.new_zeros(n, d)
    for first, second, weights in pieces:
        rows = first.transpose(0, 1)  # (n, d, ·): a strided view
        g = g + weighted_gram(first, weights)
        if weights is not None:
            second = second @ weights
        b = b + (rows @ second.unsqueeze(-1)).squeeze(-1)
    return GeodesicTerms(g, b)


@nested_forward_mode
def nested_terms(f: FlatMap, z: Tensor, v: Tensor) -> GeodesicTerms:
    """The generic path: ``J`` by batched JVPs, ``∂²f[v, v]`` by a JVP of a JVP
    (``v (N, d)``, or ``(M, N, d)``: ``J`` once, ``b (M, N, d)``)."""
    d = z.shape[1]
    flat = v.reshape(-1, d)
    points = z if v.ndim == 2 else z.repeat(v.shape[0], 1)

    def along_v(y: Tensor) -> Tensor:
        return jvp(f, (y,), (flat,))[1]

    jac = forward_jacobian(f, z)  # (n, m, d)
    second = jvp(along_v, (points,), (flat,))[1].reshape(*v.shape[:-1], -1)  # (…, n, m)
    return GeodesicTerms(jac.mT @ jac, (jac.mT @ second.unsqueeze(-1)).squeeze(-1))
