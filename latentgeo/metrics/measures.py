"""Scalar and spectral summaries of a metric: volume element, principal directions, conditioning."""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo.metrics.dispatch import MetricLike, as_metric

__all__ = [
    "condition_number",
    "log_volume_element",
    "principal_directions",
    "volume_element",
]


def _wide_eigenvalues(g: Tensor) -> Tensor:
    """The eigenvalues of ``g`` ``(..., d, d)``, ascending, in float64 (where the
    device has it) even for float32 input: a ``d × d`` cast costs nothing, and the
    spectrum is not rounded a second time."""
    wide = g.double() if g.dtype == torch.float32 and g.device.type != "mps" else g
    return torch.linalg.eigvalsh(wide)


def _symmetric_metric(metric_or_decoder: MetricLike, z: Tensor) -> Tensor:
    g = as_metric(metric_or_decoder).metric_tensor(z)
    return 0.5 * (g + g.mT)  # symmetrise away round-off before the eigensolver


def _log_eigenvalues(metric_or_decoder: MetricLike, z: Tensor) -> tuple[Tensor, Tensor]:
    """``(log λ_i(G(z)), singular)``: ``(..., d)`` in float64 (:func:`_wide_eigenvalues`)
    and ``(...)`` bool; eigenvalues are clamped at the input dtype's smallest normal number."""
    g = _symmetric_metric(metric_or_decoder, z)
    eigvals = _wide_eigenvalues(g)
    tiny = torch.finfo(g.dtype).tiny
    return eigvals.clamp_min(tiny).log(), (eigvals <= tiny).any(-1)


def log_volume_element(metric_or_decoder: MetricLike, z: Tensor) -> Tensor:
    """``log sqrt(det G(z)) = ½ Σ_i log λ_i(z)``, stable for near-singular ``G``.

    Eigenvalues are clamped at the dtype's smallest normal number, so a
    rank-deficient ``G`` gives a large negative number rather than ``-inf``/NaN.
    The spectrum is computed in float64 (also for float32 input), and the sum
    of logarithms never overflows: at ``d = 50`` in float32 the product of the
    eigenvalues leaves float32's range long before their log-sum does.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.

    Returns:
        Tensor of shape ``(...)``.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import PullbackMetric
        >>> log_volume_element(PullbackMetric(lambda z: 3 * z), torch.zeros(4, 2))
        tensor([2.1972, 2.1972, 2.1972, 2.1972])
    """
    logs, _ = _log_eigenvalues(metric_or_decoder, z)
    return (0.5 * logs.sum(-1)).to(_dtype_of(z, logs))


def volume_element(metric_or_decoder: MetricLike, z: Tensor) -> Tensor:
    """The Riemannian volume element (magnification factor) ``sqrt(det G(z))``.

    Computed as ``exp`` of :func:`log_volume_element` (the log-sum of the
    eigenvalues, in float64), so it is finite and accurate whenever the volume
    itself is representable: in float32 for volumes in about
    ``[1.2e-38, 3.4e38]``, whatever ``d`` (a product of ``d = 50``
    eigenvalues would overflow at ``5.9e24`` and underflow at ``5.9e-26``).
    Outside that range it is ``inf`` or ``0``; use :func:`log_volume_element`.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.

    Returns:
        Tensor of shape ``(...)``; 0 where ``G`` is singular.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import PullbackMetric
        >>> volume_element(PullbackMetric(lambda z: 3 * z), torch.zeros(2))
        tensor(9.)
    """
    logs, singular = _log_eigenvalues(metric_or_decoder, z)
    vol = torch.where(singular, 0.0, (0.5 * logs.sum(-1)).exp())
    return vol.to(_dtype_of(z, logs))


def _dtype_of(z: object, fallback: Tensor) -> torch.dtype:
    return z.dtype if isinstance(z, Tensor) and z.is_floating_point() else fallback.dtype


def principal_directions(metric_or_decoder: MetricLike, z: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues and eigenvectors of ``G(z)``, largest first.

    The first eigenvector is the direction in which the decoder stretches
    latent space most (used by the relative-improvement protocol of
    Michelis et al.).

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.

    Returns:
        ``(eigenvalues, eigenvectors)`` of shapes ``(..., d)`` and ``(..., d, d)``;
        column ``i`` of ``eigenvectors`` belongs to ``eigenvalues[..., i]``.

    Example:
        >>> import torch
        >>> from latentgeo.metrics import PullbackMetric
        >>> g = PullbackMetric(lambda z: z * torch.tensor([1.0, 2.0]))
        >>> vals, vecs = principal_directions(g, torch.zeros(2))
        >>> vals
        tensor([4., 1.])
        >>> vecs[:, 0].abs()
        tensor([0., 1.])
    """
    eigvals, eigvecs = torch.linalg.eigh(_symmetric_metric(metric_or_decoder, z))
    return eigvals.flip(-1), eigvecs.flip(-1)


def condition_number(metric_or_decoder: MetricLike, z: Tensor) -> Tensor:
    """``λ_max / λ_min`` of ``G(z)``, from its spectrum in float64 (as
    :func:`log_volume_element`), so a float32 ``G`` is not rounded twice.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(..., d)``.

    Returns:
        Tensor of shape ``(...)`` in ``G``'s dtype; ``inf`` where ``G`` is singular
        (``λ_min ≤ 0``).

    Example:
        >>> import torch
        >>> from latentgeo.metrics import PullbackMetric
        >>> condition_number(PullbackMetric(lambda z: z * torch.tensor([1.0, 2.0])), torch.zeros(2))
        tensor(4.)
    """
    g = _symmetric_metric(metric_or_decoder, z)
    eigvals = _wide_eigenvalues(g)
    lo, hi = eigvals[..., 0], eigvals[..., -1]
    return torch.where(lo > 0, hi / lo.clamp_min(torch.finfo(eigvals.dtype).tiny), torch.inf).to(
        g.dtype
    )
