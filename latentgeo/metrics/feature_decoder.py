"""The decoder's mean and scale and their derivatives, for :class:`~.feature.FeatureMetric`.

A feature metric needs the decoder's ``μ(z)`` and ``σ(z)``, one JVP of them
along a velocity (the energy) and their Jacobians (the metric tensor). Where
a traced module computes exactly ``(μ, σ)`` flattened and concatenated
(:func:`jets_module`: by default the decoder's traced embedding,
:func:`~latentgeo.metrics.embeddings.embedding_module`, as
:func:`~latentgeo.metrics.as_metric` uses it), the forward engine computes
them (its layer rules and faster forwards: transposed convolutions run about
twice as fast as through ``torch.func`` on the conv VAE); this is checked
once, on two points, against calling the decoder. Any other decoder goes
through ``torch.func`` and says so once with a
:class:`~latentgeo.exceptions.PerformanceWarning` naming the reason (when the
metric is built, or at the check).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import cast

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal
from torch.func import jvp

from latentgeo.exceptions import warn_slower_path
from latentgeo.metrics.embeddings import DecoderEmbedding, embedding_module
from latentgeo.metrics.forward import (
    TangentPropagator,
    UnsupportedOperation,
    fast_path_report,
    try_tangent_propagator,
)
from latentgeo.metrics.jacobians import forward_jacobian

__all__ = ["DecoderJets", "jets_module", "mean_and_scale"]


def mean_and_scale(output: object, batch: int) -> tuple[Tensor, Tensor | None]:
    """Split a decoder output into mean and std ``(N, m)``; std is ``None`` if deterministic."""
    if isinstance(output, Independent):
        output = output.base_dist
    if isinstance(output, Normal):
        loc, scale = torch.broadcast_tensors(output.loc, output.scale)
        return loc.reshape(batch, -1), scale.reshape(batch, -1)
    if isinstance(output, Tensor):
        return output.reshape(batch, -1), None
    raise TypeError(
        f"FeatureMetric needs a decoder returning a Tensor, Normal or Independent(Normal), "
        f"got {type(output).__name__}"
    )


@singledispatch
def jets_module(decoder: object) -> nn.Module | None:
    """A traceable module computing ``(μ(z), σ(z))`` of ``decoder``, or ``None``.

    The module maps ``(N, d)`` to ``μ`` and ``σ`` flattened and concatenated,
    ``(N, 2m)`` (``μ`` alone, ``(N, m)``, for a decoder returning a tensor).
    Register decoder types whose metric embedding is not that (a Gaussian
    decoder with a constant ``σ`` embeds ``μ`` alone) so that their feature
    metric keeps the forward engine. By default: the decoder's
    :func:`~latentgeo.metrics.embeddings.embedding_module`, else its
    :class:`~latentgeo.metrics.embeddings.DecoderEmbedding` (a ``Normal``'s
    embedding is ``(μ, σ)``).

    Args:
        decoder: the decoder.

    Returns:
        The module, or ``None`` (then ``torch.func`` differentiates the decoder).
    """
    module = embedding_module(decoder)
    if module is None and callable(decoder):
        module = DecoderEmbedding(decoder)
    return module


class DecoderJets:
    """``(μ,)`` or ``(μ, σ)`` of a decoder, their JVPs and Jacobians (see the module doc).

    Args:
        decoder: maps ``(N, d)`` to a Tensor, ``Normal`` or ``Independent(Normal)``.
    """

    def __init__(self, decoder: Callable[[Tensor], object]) -> None:
        self.decoder = decoder
        self._checked = False
        self._propagator: TangentPropagator | None = None
        self._sizes: list[int] = []
        self._module = self._traceable_module()

    def _traceable_module(self) -> nn.Module | None:
        """:func:`jets_module`, if it has a traced fast path; if not, say once why (the
        engine on it is built at the first call, so that copies of a metric build their
        own)."""
        try:
            module = jets_module(self.decoder)
        except ValueError as err:  # e.g. a module the function calls is in training mode
            self._announce(f"no traced fast path ({err})")
            return None
        if module is None:
            self._announce("no traced fast path (no (μ, σ) module is registered for it)")
            return None
        report = fast_path_report(module)
        if not report.usable:
            self._announce(f"no traced fast path ({report.reason})")
            return None
        return module

    def decoded(self, z: Tensor) -> tuple[Tensor, ...]:
        """``(μ(z),)`` (deterministic decoder) or ``(μ(z), σ(z))`` (Gaussian), each ``(N, m)``."""
        mean, scale = mean_and_scale(self.decoder(z), z.shape[0])
        return (mean,) if scale is None else (mean, scale)

    def values_and_jvp(self, z: Tensor, v: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """:meth:`decoded` at ``z (N, d)`` and its JVP along ``v (N, d)``."""
        prop = self._engine(z)
        if prop is not None:
            try:
                out, tangents = prop(z, v[None])
                return self._split(out, z.shape[0]), self._split(tangents[0], z.shape[0])
            except UnsupportedOperation as err:
                self._fall_back(err)
        pair = jvp(self.decoded, (z,), (v,))
        return cast(tuple[tuple[Tensor, ...], tuple[Tensor, ...]], pair)

    def values_and_jacobian(self, z: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """:meth:`decoded` at ``z (N, d)`` and the Jacobian of ``μ`` (and ``σ``,
        concatenated), ``(N, m[+m], d)``: one pass of the engine, or ``torch.func``."""
        prop = self._engine(z)
        if prop is not None:
            n, d = z.shape
            basis = torch.eye(d, dtype=z.dtype, device=z.device).unsqueeze(1).expand(d, n, d)
            try:
                out, cols = prop(z, basis)
                return self._split(out, n), cols.reshape(d, n, -1).permute(1, 2, 0)
            except UnsupportedOperation as err:
                self._fall_back(err)
        jac = forward_jacobian(lambda zz: torch.cat(self.decoded(zz), -1), z)
        return self.decoded(z), jac

    def _split(self, flat: Tensor, n: int) -> tuple[Tensor, ...]:
        return tuple(flat.reshape(n, -1).split(self._sizes, dim=-1))

    def _engine(self, z: Tensor) -> TangentPropagator | None:
        """The engine, if its module computes ``(μ, σ)``: checked once, on two points of
        the first ``z``, against the decoder itself (a mismatch is announced)."""
        if not self._checked:
            self._checked = True
            prop = None if self._module is None else try_tangent_propagator(self._module)
            if prop is not None:
                probe = z[:2] if z.shape[0] >= 2 else z.expand(2, -1)
                with torch.no_grad():
                    want = self.decoded(probe)
                    try:
                        got = prop.values(probe).reshape(2, -1)
                    except UnsupportedOperation as err:
                        self._fall_back(err)
                        return None
                whole = torch.cat(want, -1)
                tol = 1e-10 if z.dtype == torch.float64 else 1e-4  # rounding of faster kernels
                finite = whole[torch.isfinite(whole)]  # (NaN outputs must match as NaN)
                atol = tol * (float(finite.abs().max()) if finite.numel() else 0.0) + tol
                if got.shape != whole.shape:
                    self._announce(f"its traced module gives {got.shape[1]} values per point, "
                                   f"its (μ, σ) has {whole.shape[1]}")  # fmt: skip
                elif not torch.allclose(got, whole, rtol=tol, atol=atol, equal_nan=True):
                    self._announce("its traced module (jets_module) does not match the (μ, σ) "
                                   "it returns; register one that does")  # fmt: skip
                else:
                    self._propagator, self._sizes = prop, [t.shape[1] for t in want]
        return self._propagator

    def _fall_back(self, err: UnsupportedOperation) -> None:
        self._propagator = None
        self._announce(f"{err}")

    def _announce(self, why: str) -> None:
        warn_slower_path(self.decoder, f"{why}; its feature metric uses torch.func (exact, slower)")
