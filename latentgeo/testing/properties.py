"""One reusable property suite of the metric identities, for latentgeo's metrics and yours.

Test your own metric in one line of your pytest suite::

    from latentgeo.testing import check_metric_identities

    def test_my_metric():
        check_metric_identities(MyMetric(), torch.randn(16, 3, dtype=torch.float64))

:func:`check_metric_identities` asserts, at the given points and at random
tangent vectors:

* ``metric_tensor`` has shape ``(..., d, d)`` and is finite, symmetric and
  positive semi-definite (:meth:`Metric.check <latentgeo.metrics.Metric.check>`);
* ``squared_norm(z, v) = vᵀ G v``, ``inner(z, u, v) = uᵀ G v = inner(z, v, u)``,
  ``norm = sqrt(squared_norm)``; ``inner`` is bilinear;
* the cone: ``(g + g).squared_norm = 2 g.squared_norm`` and
  ``(c · g).squared_norm = c · g.squared_norm``;
* lengths do not depend on the parametrisation of a curve (a cubic spline
  through the points, traversed at two different speeds; to ``1e-4`` relative,
  the quadrature error of the two integrals).

Tolerances scale with the dtype (:func:`~latentgeo.testing.tolerance`), relative
to the size of the quantities compared.
"""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo.curves import CubicSpline, curve_length
from latentgeo.curves.reparam import ReparametrizedCurve
from latentgeo.metrics import Metric, MetricLike, as_metric
from latentgeo.testing.tolerances import tolerance

__all__ = ["check_metric_identities"]


def _close(name: str, actual: Tensor, expected: Tensor, scale: Tensor, rtol: float) -> list[str]:
    err = ((actual - expected).abs() / (1.0 + scale.abs())).max()
    if not bool(torch.isfinite(err)) or float(err) > rtol:
        return [f"{name}: relative error {float(err):.3g} > {rtol:.1e}"]
    return []


def check_metric_identities(
    metric_or_decoder: MetricLike,
    z: Tensor,
    *,
    generator: torch.Generator | None = None,
    ops: float = 100.0,
    lengths: bool = True,
) -> None:
    """Assert the identities every metric satisfies (see the module docstring) at ``z``.

    Args:
        metric_or_decoder: a :class:`~latentgeo.metrics.Metric` or a decoder.
        z: points of shape ``(N, d)``, in the dtype and device to test.
        generator: random tangent vectors and curves are drawn from it (default:
            a generator seeded with 0).
        ops: tolerance budget in units of :func:`~latentgeo.testing.tolerance`
            (rounding-heavy steps); raise it for deep decoders in float32.
        lengths: also check the reparametrisation invariance of curve lengths
            (needs ``N >= 2``; costs a few dozen metric evaluations).

    Raises:
        AssertionError: listing every identity that fails and by how much.

    Example:
        >>> import torch
        >>> from latentgeo.testing import PoincareDisk
        >>> check_metric_identities(PoincareDisk(), 0.5 * torch.rand(8, 2, dtype=torch.float64))
    """
    metric = as_metric(metric_or_decoder)
    if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"z must be a tensor of shape (N, d) with N >= 1, got {z!r:.60}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    n, d = z.shape
    rtol = tolerance(z.dtype, ops=ops)[0]

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=z.dtype).to(z.device)

    u, v, w = rand(n, d), rand(n, d), rand(n, d)
    g = metric.metric_tensor(z)
    failures: list[str] = []
    if g.shape != (n, d, d):
        raise AssertionError(f"metric_tensor has shape {tuple(g.shape)}, expected {(n, d, d)}")
    report = metric.check(z, rtol=rtol)
    failures += [f"metric_tensor: {reason}" for reason in report.reasons]
    quad = torch.einsum("ni,nij,nj->n", v, g, v)
    sq = metric.squared_norm(z, v)
    failures += _close("squared_norm vs vᵀGv", sq, quad, quad, rtol)
    bil = torch.einsum("ni,nij,nj->n", u, g, v)
    size = bil.abs() + quad.abs()
    failures += _close("inner vs uᵀGv", metric.inner(z, u, v), bil, size, rtol)
    failures += _close("inner symmetry", metric.inner(z, u, v), metric.inner(z, v, u), size, rtol)
    failures += _close("norm² vs squared_norm", metric.norm(z, v) ** 2, sq.clamp_min(0), sq, rtol)
    lhs = metric.inner(z, 2.0 * u - 0.5 * w, v)
    rhs = 2.0 * metric.inner(z, u, v) - 0.5 * metric.inner(z, w, v)
    failures += _close("inner bilinearity", lhs, rhs, lhs.abs() + rhs.abs() + quad.abs(), rtol)
    failures += _close("sum of metrics", (metric + metric).squared_norm(z, v), 2 * sq, sq, rtol)
    failures += _close("scaled metric", (2.5 * metric).squared_norm(z, v), 2.5 * sq, sq, rtol)
    if lengths and n >= 2:
        failures += _length_invariance(metric, z, gen, rtol)
    if failures:
        raise AssertionError(
            f"{type(metric).__name__} breaks {len(failures)} metric identities:\n  "
            + "\n  ".join(failures)
        )


def _length_invariance(metric: Metric, z: Tensor, gen: torch.Generator, rtol: float) -> list[str]:
    """Lengths of splines between consecutive points, at unit and at quadratic speed."""
    z0, z1 = z[:-1], z[1:]
    curve = CubicSpline(z0, z1, num_knots=2)
    curve.requires_grad_(False)
    bump = 0.1 * (z1 - z0).norm(dim=-1)[:, None, None]
    noise = torch.randn(curve.inner.shape, generator=gen, dtype=z.dtype).to(z.device)
    curve.inner.add_(bump * noise)
    b, k = z0.shape[0], 17
    tau = torch.linspace(0.0, 1.0, k, dtype=z.dtype, device=z.device).expand(b, k)
    slow = ReparametrizedCurve(curve, tau, tau**2, 2.0 * tau)  # u(τ) = τ², same path
    points = 256
    with torch.no_grad():
        plain = curve_length(metric, curve, num_points=points)
        repar = curve_length(metric, slow, num_points=points)
    # quadrature error of two different integrands, not only rounding: a looser bound than
    # the pointwise identities (a speed that does not scale with the velocity is off by O(1))
    return _close("length under reparametrisation", repar, plain, plain, max(rtol, 1e-4))
