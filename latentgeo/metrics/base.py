"""The metric protocol: every geometric computation in latentgeo goes through it.

A :class:`Metric` is a field of symmetric positive semi-definite matrices
``G(z)`` on latent space. Points have shape ``(..., d)``; the metric answers

* ``metric_tensor(z)``  -> ``(..., d, d)``: ``G(z)``,
* ``inner(z, u, v)``    -> ``(...)``: ``uᵀ G(z) v``,
* ``squared_norm(z, v)`` -> ``(...)``: ``vᵀ G(z) v`` (the hot path of every solver),
* ``norm(z, v)``        -> ``(...)``: its square root.

Metrics form a cone: ``m1 + m2`` and ``c * m`` (``c > 0``) are metrics.

Subclasses implement ``_metric_tensor`` and may override ``_squared_norm``
and ``_inner`` with something cheaper. The public methods validate their
input once and call these unchecked methods, which solvers use directly in
their inner loops.

What solvers and length estimators need beyond the protocol is asked of the
metric too, never worked out from its class: :meth:`Metric.geodesic_terms`
(the geodesic ODE), :attr:`Metric.is_pullback`, :meth:`Metric.flat_embedding`
and :meth:`Metric.chords` (the chord estimator), :meth:`Metric.sampled_chords`
(the ensemble estimator). ``Metric`` gives defaults (the Christoffel form; no
embedding), pull-backs override them with their fast paths, and the cone
(:class:`SumMetric`, :class:`ScaledMetric`, and ``MeanMetric``) combines its
members' answers. These hooks take validated input of shape ``(N, d)`` (or
``(B, N, d)`` points along polylines) and do not check it again.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Hashable, Sequence
from typing import cast

import torch
from torch import Tensor, nn

from latentgeo.metrics.conversions import CopyingConversions
from latentgeo.metrics.point_checks import PointChecks
from latentgeo.metrics.report import MetricCheck, check_tensor
from latentgeo.metrics.terms import GeodesicTerms, christoffel_terms

__all__ = ["CompositeMetric", "Metric", "ScaledMetric", "SumMetric"]


def _needs_embedding(metric: Metric) -> TypeError:
    return TypeError(
        f"the 'chord' and 'sampled' estimators need a pull-back metric (a decoder, a "
        f"PullbackMetric, or sums/ensembles of them), got {type(metric).__name__}; "
        "use estimator='metric'"
    )


class Metric(CopyingConversions, PointChecks, abc.ABC):
    """Abstract Riemannian (pseudo-)metric on a latent space of dimension ``d``.

    Attributes:
        latent_dim: ``d`` if it is known in advance, else ``None`` (then any
            last dimension is accepted).

    Example:
        >>> import torch
        >>> from latentgeo.metrics import ExplicitMetric
        >>> euclid = ExplicitMetric(lambda z: torch.eye(2).expand(*z.shape[:-1], 2, 2))
        >>> g = euclid + 3.0 * euclid
        >>> g.squared_norm(torch.zeros(5, 2), torch.ones(5, 2))
        tensor([8., 8., 8., 8., 8.])
    """

    latent_dim: int | None = None

    # ----------------------------------------------------------------- public API
    def metric_tensor(self, z: Tensor, *, validate: bool = True) -> Tensor:
        """The metric tensor ``G(z)``.

        Args:
            z: points of shape ``(..., d)``.
            validate: check the shape, dtype and values of ``z`` first (solvers pass
                ``False`` for points they have built themselves).

        Returns:
            Tensor of shape ``(..., d, d)``, symmetric positive semi-definite.
        """
        if validate:
            (z,) = self._validated(z)
        return self._metric_tensor(z)

    def inner(self, z: Tensor, u: Tensor, v: Tensor, *, validate: bool = True) -> Tensor:
        """The inner product ``uᵀ G(z) v``.

        Args:
            z: points of shape ``(..., d)``.
            u: tangent vectors at ``z``, shape ``(..., d)`` (broadcastable).
            v: tangent vectors at ``z``, shape ``(..., d)`` (broadcastable).
            validate: check the shapes, dtypes and values of the inputs first
                (solvers pass ``False`` for inputs they have built themselves).

        Returns:
            Tensor of the broadcast batch shape ``(...)``.
        """
        if validate:
            z, u, v = self._validated(z, u=u, v=v)
        return self._inner(z, u, v)

    def squared_norm(self, z: Tensor, v: Tensor, *, validate: bool = True) -> Tensor:
        """The squared length ``vᵀ G(z) v`` of tangent vectors.

        Args:
            z: points of shape ``(..., d)``.
            v: tangent vectors at ``z``, shape ``(..., d)`` (broadcastable).
            validate: check the shapes, dtypes and values of ``z`` and ``v`` first
                (solvers pass ``False`` for inputs they have built themselves).

        Returns:
            Tensor of the broadcast batch shape ``(...)``.
        """
        if validate:
            z, v = self._validated(z, v=v)
        return self._squared_norm(z, v)

    def norm(self, z: Tensor, v: Tensor) -> Tensor:
        """The length ``sqrt(vᵀ G(z) v)`` of tangent vectors; shapes as :meth:`squared_norm`."""
        return self.squared_norm(z, v).clamp_min(0.0).sqrt()

    def check(self, z: Tensor, *, rtol: float | None = None) -> MetricCheck:
        """Whether this is a metric at the points ``z``: ``G`` finite, symmetric and PSD.

        Args:
            z: points of shape ``(..., d)`` (flattened to ``N`` points in the report).
            rtol: relative tolerance of the symmetry and sign checks (default
                ``1000 · d · eps``).

        Returns:
            A :class:`~latentgeo.metrics.MetricCheck` with per-point flags, ``ok``,
            ``reasons`` and ``raise_if_invalid()``.

        Example:
            >>> import torch
            >>> from latentgeo.metrics import ExplicitMetric
            >>> bad = ExplicitMetric(torch.diag_embed)  # G(z) = diag(z): indefinite where z < 0
            >>> report = bad.check(torch.tensor([[1.0, 2.0], [-1.0, 2.0]]))
            >>> report.ok, report.psd
            (False, tensor([ True, False]))
            >>> print(report.reasons[0].replace("; ", ";\\n"))
            G is not positive semi-definite at 1 of 2 points (first: point 1;
            smallest eigenvalue -1)
        """
        return check_tensor(self.metric_tensor(z), rtol)

    # ------------------------------------------------------- unchecked internals
    @abc.abstractmethod
    def _metric_tensor(self, z: Tensor) -> Tensor:
        """``G(z)`` for already validated ``z`` of shape ``(..., d)``."""

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        """``vᵀ G(z) v`` for validated input (default: through the metric tensor)."""
        z, v = torch.broadcast_tensors(z, v)
        g = self._metric_tensor(z)
        return torch.einsum("...i,...ij,...j->...", v, g, v)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """``uᵀ G(z) v`` by polarisation of :meth:`_squared_norm` (exact for bilinear forms)."""
        return 0.25 * (self._squared_norm(z, u + v) - self._squared_norm(z, u - v))

    # ------------------------------------------------- what solvers ask of a metric
    def geodesic_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        """``(G, b)`` with geodesic acceleration ``γ̈ = −G⁻¹ b`` at ``z`` with velocity ``v``.

        Default: the Christoffel form, ``b = ∂G[v] v − ½ ∇(vᵀ G v)`` by forward mode
        through :meth:`metric_tensor` (any metric); pull-backs use ``b = Jᵀ ∂²f[v, v]``.

        Args:
            z: points ``(N, d)`` (not validated: a solver hook).
            v: velocities ``(N, d)``.

        Returns:
            :class:`~latentgeo.metrics.terms.GeodesicTerms` with ``g (N, d, d)``, ``b (N, d)``.
        """
        return christoffel_terms(self, z, v)

    def geodesic_terms_along(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        """:meth:`geodesic_terms` for M velocities at every point: ``G`` once, ``b`` for each.

        Default: the points repeated M times; pull-backs measure ``J`` once for all M
        (the ``2K + 1`` directions of :func:`~latentgeo.geometry.connection`'s polarised form).

        Args:
            z: points ``(N, d)`` (not validated: a solver hook).
            v: velocities ``(M, N, d)``.

        Returns:
            :class:`~latentgeo.metrics.terms.GeodesicTerms` with ``g (N, d, d)``, ``b (M, N, d)``.
        """
        m, n, d = v.shape
        terms = self.geodesic_terms(z.repeat(m, 1), v.reshape(m * n, d))
        return GeodesicTerms(terms.g[:n], terms.b.reshape(m, n, d))

    def _own_terms(self, owner: type[Metric]) -> bool:
        """Whether this is a subclass of ``owner`` that overrides :meth:`geodesic_terms` but
        not :meth:`geodesic_terms_along`: then ``owner``'s faster form would bypass its
        terms, and the points are repeated through them instead (the default)."""
        cls = type(self)
        return (
            cls.geodesic_terms is not owner.geodesic_terms
            and cls.geodesic_terms_along is owner.geodesic_terms_along
        )

    def footprint_owner(self) -> tuple[object, Hashable]:
        """Where the memory footprints of its chunked work are cached (:mod:`latentgeo.memory`),
        and a key prefix telling its own apart there: by default the metric itself."""
        return self, ()

    @property
    def is_pullback(self) -> bool:
        """Whether the metric is a pull-back ``JᵀJ`` of a known map (:meth:`flat_embedding`)."""
        return False

    def kinks(self) -> tuple[str, ...]:
        """The operations that make the metric jump (piecewise-linear activations such as
        ReLU, max pooling; see :mod:`latentgeo.metrics.forward.kinks`), as labels; ``()``
        for a metric known to be smooth or of unknown make. The geodesic ODE does not
        see such jumps."""
        return ()

    def flat_embedding(self, z: Tensor) -> Tensor:
        """The map ``φ: (N, d) -> (N, m)`` whose pull-back this metric is, at ``z``.

        Raises:
            TypeError: the metric is not a pull-back (see :attr:`is_pullback`).
        """
        raise _needs_embedding(self)

    def chords(self, pos: Tensor) -> Tensor:
        """Squared chords ``‖φ(xᵢ₊₁) − φ(xᵢ)‖²`` of the embedding along polylines.

        Args:
            pos: points ``(B, N, d)`` (not validated: an estimator hook).

        Returns:
            Tensor of shape ``(B, N − 1)``.

        Raises:
            TypeError: the metric has no embedding (see :attr:`is_pullback`).
        """
        raise _needs_embedding(self)

    def sampled_chords(self, pos: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Squared chords with an ensemble member drawn at every point (Syrota et al. 2024).

        Raises:
            TypeError: the metric is not an ensemble (only ``MeanMetric`` answers).
        """
        raise TypeError(
            "estimator 'sampled' needs an ensemble (an EnsembleDecoder, a list of decoders or a "
            f"MeanMetric), got {type(self).__name__}"
        )

    # ------------------------------------------------------------- the cone
    def __add__(self, other: object) -> Metric:
        if not isinstance(other, Metric):
            return NotImplemented
        return SumMetric([self, other])

    def __mul__(self, c: object) -> Metric:
        if not isinstance(c, (int, float)) or isinstance(c, bool):
            return NotImplemented
        return ScaledMetric(self, float(c))

    __rmul__ = __mul__


class CompositeMetric(Metric):
    """A metric made of others (:meth:`metrics`): a pull-back when all of them are, with
    their kinks, and points checked against each of them."""

    def metrics(self) -> list[Metric]:
        """The metrics it is made of."""
        raise NotImplementedError

    @property
    def is_pullback(self) -> bool:
        return all(m.is_pullback for m in self.metrics())

    def kinks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for m in self.metrics() for k in m.kinks()))

    def check_like(self, z: Tensor) -> None:
        for m in self.metrics():
            m.check_like(z)


class SumMetric(CompositeMetric):
    """The sum ``Σ_k G_k(z)`` of metrics on the same latent space.

    Args:
        metrics: the terms (at least one).
    """

    def __init__(self, metrics: Sequence[Metric]) -> None:
        super().__init__()
        if len(metrics) == 0:
            raise ValueError("metrics must hold at least one Metric, got an empty sequence")
        flat: list[Metric] = []
        for m in metrics:
            if not isinstance(m, Metric):
                raise TypeError(f"metrics must hold Metric instances, got {type(m).__name__}")
            flat.extend(m.metrics() if isinstance(m, SumMetric) else [m])
        self.terms = nn.ModuleList(flat)
        dims = {m.latent_dim for m in flat if m.latent_dim is not None}
        if len(dims) > 1:
            raise ValueError(f"metrics must share one latent dimension, got {sorted(dims)}")
        self.latent_dim = dims.pop() if dims else None

    def metrics(self) -> list[Metric]:
        """The terms of the sum."""
        return cast(list[Metric], list(self.terms))

    def _metric_tensor(self, z: Tensor) -> Tensor:
        return torch.stack([m._metric_tensor(z) for m in self.metrics()]).sum(0)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        return torch.stack([m._squared_norm(z, v) for m in self.metrics()]).sum(0)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return torch.stack([m._inner(z, u, v) for m in self.metrics()]).sum(0)

    def geodesic_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        return GeodesicTerms.total([m.geodesic_terms(z, v) for m in self.metrics()])

    def geodesic_terms_along(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        if self._own_terms(SumMetric):
            return Metric.geodesic_terms_along(self, z, v)
        return GeodesicTerms.total([m.geodesic_terms_along(z, v) for m in self.metrics()])

    def flat_embedding(self, z: Tensor) -> Tensor:
        """The terms' embeddings side by side: ``‖(φ_1, …, φ_k)‖² = Σ ‖φ_i‖²``."""
        return torch.cat([m.flat_embedding(z) for m in self.metrics()], dim=-1)

    def chords(self, pos: Tensor) -> Tensor:
        """The sum of the terms' chords (each term uses its own shortcut)."""
        return torch.stack([m.chords(pos) for m in self.metrics()]).sum(0)


class ScaledMetric(Metric):
    """A metric times a positive constant, ``c · G(z)``.

    Args:
        metric: the metric to scale.
        scale: the constant ``c > 0``.
    """

    def __init__(self, metric: Metric, scale: float) -> None:
        super().__init__()
        if not isinstance(metric, Metric):
            raise TypeError(f"metric must be a Metric, got {type(metric).__name__}")
        if not (scale > 0.0 and scale < float("inf")):
            raise ValueError(f"scale must be a finite positive number, got {scale}")
        self.metric = metric
        self.scale = float(scale)
        self.latent_dim = metric.latent_dim

    def _metric_tensor(self, z: Tensor) -> Tensor:
        return self.scale * self.metric._metric_tensor(z)

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        return self.scale * self.metric._squared_norm(z, v)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return self.scale * self.metric._inner(z, u, v)

    def geodesic_terms(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        return self.metric.geodesic_terms(z, v).scaled(self.scale)

    def geodesic_terms_along(self, z: Tensor, v: Tensor) -> GeodesicTerms:
        if self._own_terms(ScaledMetric):
            return Metric.geodesic_terms_along(self, z, v)
        return self.metric.geodesic_terms_along(z, v).scaled(self.scale)

    @property
    def is_pullback(self) -> bool:
        return self.metric.is_pullback

    def kinks(self) -> tuple[str, ...]:
        return self.metric.kinks()

    def check_like(self, z: Tensor) -> None:
        self.metric.check_like(z)

    def flat_embedding(self, z: Tensor) -> Tensor:
        """``√c φ``: the embedding of ``c · G``."""
        return math.sqrt(self.scale) * self.metric.flat_embedding(z)

    def chords(self, pos: Tensor) -> Tensor:
        return self.scale * self.metric.chords(pos)
