"""The decoder's mean and scale and their derivatives, for :class:`~.feature.FeatureMetric`.

A feature metric needs the decoder's ``μ(z)`` and ``σ(z)``, one JVP of them
along a velocity (the energy) and their Jacobians (the metric tensor). Where
the decoder's traced embedding (:func:`~latentgeo.metrics.embeddings.embedding_module`,
as :func:`~latentgeo.metrics.as_metric` uses it) is exactly ``(μ, σ)``
flattened and concatenated, the forward engine computes them (its layer rules
and faster forwards: transposed convolutions run about twice as fast as
through ``torch.func`` on the conv VAE); this is checked once, on two points,
against calling the decoder. Any other decoder goes through ``torch.func``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor
from torch.distributions import Independent, Normal
from torch.func import jvp

from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.metrics.embeddings import embedding_module
from latentgeo.metrics.forward import (
    TangentPropagator,
    UnsupportedOperation,
    try_tangent_propagator,
)
from latentgeo.metrics.jacobians import forward_jacobian

__all__ = ["DecoderJets", "mean_and_scale"]


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
        """The forward engine on the decoder's embedding, if it computes ``(μ, σ)``: checked
        once, on two points of the first ``z``, against the decoder itself."""
        if not self._checked:
            self._checked = True
            module = embedding_module(self.decoder)
            prop = None if module is None else try_tangent_propagator(module)
            if prop is not None:
                probe = z[:2] if z.shape[0] >= 2 else z.expand(2, -1)
                with torch.no_grad():
                    want = self.decoded(probe)
                    try:
                        got = prop.values(probe).reshape(2, -1)
                    except UnsupportedOperation:
                        got = None
                whole = torch.cat(want, -1)
                tol = 1e-10 if z.dtype == torch.float64 else 1e-4  # rounding of faster kernels
                if got is not None and got.shape == whole.shape:
                    scale = float(whole.abs().max()) + 1.0
                    if torch.allclose(got, whole, rtol=tol, atol=tol * scale):
                        self._propagator, self._sizes = prop, [t.shape[1] for t in want]
        return self._propagator

    def _fall_back(self, err: UnsupportedOperation) -> None:
        self._propagator = None
        message = f"the decoder's derivatives use torch.func from now on ({err})"
        warn_once(self.decoder, PerformanceWarning(message))
