"""The Fisher–Rao geometry of ``ContinuousBernoulli`` outputs.

The continuous Bernoulli on ``[0, 1]`` is an exponential family in its logits
``η`` with log-normaliser ``A(η) = log((e^η − 1)/η)``, so the Fisher information
of one output in ``η`` is the variance of the sufficient statistic:

    Var(η) = A″(η) = 1/η² − 1/(4 sinh²(η/2)),

and the metric of a decoder ``z ↦ η(z)`` is ``G = J_ηᵀ diag(Var(η)) J_η``.
Each output contributes through its own ``η_k``, so ``G`` is the Euclidean
pull-back of the per-output embedding

    e(η) = ∫₀^η √Var(s) ds,     e′ = √Var,     e″ = Var′/(2 √Var),

an odd, increasing function (``e(η) ≈ log|η| + K`` for large ``|η|``) with no
closed form. Its derivatives are closed forms, which is all a metric tensor,
a squared norm or the geodesic ODE uses (exact, through the traced forward
mode like any element-wise function, see :mod:`latentgeo.metrics.forward`);
its *value* (used by discrete energies, whose chords are differences of
embeddings) is a quadrature accurate to a few units in the last place:
16-point Gauss–Legendre on ``[0, min(|η|, 6)]`` and, beyond 6,
``e(η) = log|η| + K + ∫_|η|^∞ (1/s − √Var(s)) ds`` by 14-point Gauss–Laguerre
(relative error ≤ 1.2e-15 against 40-digit quadrature, float64). The value
costs about 30 evaluations of ``Var`` per output; through ``torch.func`` (a
decoder that cannot be traced) its derivatives are those of the quadrature,
within 1.3e-12 (relative, float64) of the closed forms.

``Var(η)`` cancels near ``η = 0`` (two terms of size ``1/η²`` leave ``1/12``):
below :data:`SWITCH` it is the Taylor series ``Σₙ B₂ₙ (2n − 1) η^(2n−2)/(2n)!
= 1/12 − η²/240 + η⁴/6048 − η⁶/172800 + …`` (radius of convergence ``2π``,
coefficients from the Bernoulli numbers ``B₂ₙ``, computed exactly), above it
the closed form, written with ``exp(−|η|)`` and ``expm1`` so that nothing
overflows. At ``|η| = 2`` the closed form loses ``12/η² = 3`` units of its
precision to the cancellation (measured: at most 4.6 ulp in float64, 4.1 in
float32 for ``|η| ≥ 2``) while 18 terms of the series are exact to 1 ulp in
both dtypes for ``|η| ≤ 2`` (the next term is ``(2/2π)^36 ≈ 1e-18`` of the first).
A smaller switch costs precision in the closed form (15 ulp at 1), a larger
one needs more terms (27 at 3); one switch serves both dtypes.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import cast

import numpy as np
import torch
from torch import Tensor, fx

__all__ = [
    "SWITCH",
    "continuous_bernoulli_embedding",
    "continuous_bernoulli_variance",
    "continuous_bernoulli_variance_slope",
]

#: below this ``|η|`` the variance (and its slope) are Taylor series, above it closed forms
SWITCH = 2.0
_TERMS = 18
_SPLIT = 6.0  # Gauss–Legendre below, log + Gauss–Laguerre tail above
_LEGENDRE = np.polynomial.legendre.leggauss(16)
_LAGUERRE = np.polynomial.laguerre.laggauss(18)


def _bernoulli_numbers(n: int) -> list[Fraction]:
    """``B₀ … B_n`` exactly (Akiyama–Tanigawa), with ``B₁ = +1/2`` (unused here)."""
    out, row = [], [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        row[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            row[j - 1] = j * (row[j - 1] - row[j])
        out.append(row[0])
    return out


_B = _bernoulli_numbers(2 * _TERMS)
#: Var(η) = Σₙ c[n−1] η^(2n−2), c[n−1] = B₂ₙ (2n − 1)/(2n)!  (c = 1/12, −1/240, 1/6048, …)
SERIES = tuple(float(_B[2 * n] * (2 * n - 1) / math.factorial(2 * n)) for n in range(1, _TERMS + 1))


def _horner(coefficients: tuple[float, ...], x2: Tensor) -> Tensor:
    acc = torch.full_like(x2, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = acc * x2 + c
    return acc


def _variance_series(a: Tensor) -> Tensor:
    """The Taylor series of ``Var`` (exact to 1 ulp for ``|a| ≤ 2``)."""
    return _horner(SERIES, a * a)


def _variance_closed(a: Tensor) -> Tensor:
    """``1/a² − e^(−a)/(1 − e^(−a))²`` for ``a > 0`` (cancels as ``a → 0``)."""
    return 1.0 / (a * a) - torch.exp(-a) / torch.expm1(-a) ** 2


def continuous_bernoulli_variance(logits: Tensor) -> Tensor:
    """``Var(η) = 1/η² − 1/(4 sinh²(η/2))``, the Fisher information of one output in its logit.

    Element-wise; the Taylor series below ``|η| <`` :data:`SWITCH`, the closed form above.

    Example:
        >>> eta = torch.tensor([0.0, 1e-4, 40.0], dtype=torch.float64)
        >>> tuple(round(v, 6) for v in continuous_bernoulli_variance(eta).tolist())  # 1/12 at 0
        (0.083333, 0.083333, 0.000625)
    """
    a = logits.abs()
    series = _variance_series(a.clamp(max=SWITCH))
    closed = _variance_closed(a.clamp(min=SWITCH))
    return torch.where(a < SWITCH, series, closed)


def continuous_bernoulli_variance_slope(logits: Tensor) -> Tensor:
    """``Var′(η) = −2/η³ + cosh(η/2)/(4 sinh³(η/2))``, element-wise (odd in ``η``).

    Example:
        >>> eta = torch.tensor([0.0, 0.1], dtype=torch.float64)
        >>> tuple(round(v, 6) + 0.0 for v in continuous_bernoulli_variance_slope(eta).tolist())
        (0.0, -0.000833)
    """
    a = logits.abs()
    slope = tuple(2 * n * c for n, c in enumerate(SERIES[1:], start=1))  # (c_n η^(2n))′ / η
    series = a * _horner(slope, (a * a).clamp(max=SWITCH * SWITCH))
    big = a.clamp(min=SWITCH)
    q = torch.exp(-big)
    closed = -2.0 / big**3 + q * (1.0 + q) / (-torch.expm1(-big)) ** 3
    return torch.sign(logits) * torch.where(a < SWITCH, series, closed)


def _tail(a: Tensor) -> Tensor:
    """``∫ₐ^∞ (1/s − √Var(s)) ds`` for ``a ≥ 6``, by Gauss–Laguerre (the integrand ~ s e^(−s)/2)."""
    nodes, weights = _LAGUERRE
    total = torch.zeros_like(a)
    for t, w in zip(nodes.tolist(), weights.tolist(), strict=True):
        s = a + t
        q = torch.exp(-s)
        u = s * s * q / torch.expm1(-s) ** 2  # 1 − s² Var(s), in (0, 1)
        total = total + (w * math.exp(t)) * (u / (1.0 + torch.sqrt(1.0 - u)) / s)
    return total


def _head(x: Tensor) -> Tensor:
    """``∫₀^x √Var(s) ds`` for ``|x| ≤ 6``, by Gauss–Legendre (odd and smooth in ``x``)."""
    nodes, weights = _LEGENDRE
    total = torch.zeros_like(x)
    for t, w in zip(nodes.tolist(), weights.tolist(), strict=True):
        total = total + w * continuous_bernoulli_variance(x * (0.5 * (1.0 + t))).sqrt()
    return 0.5 * x * total


_AT_SPLIT = torch.tensor([_SPLIT], dtype=torch.float64)
#: e(η) − log η as η → ∞ (≈ −0.4034), from the same quadratures, so that both pieces meet at 6
_K = float(_head(_AT_SPLIT) - math.log(_SPLIT) - _tail(_AT_SPLIT))


def continuous_bernoulli_embedding(logits: Tensor) -> Tensor:
    """``e(η) = ∫₀^η √Var(s) ds``, element-wise: the flat embedding of ``ContinuousBernoulli(η)``.

    The pull-back of ``e`` through a decoder's logits is the Fisher–Rao metric
    ``J_ηᵀ diag(Var(η)) J_η``. Differentiable (reverse and forward mode, under
    ``torch.func``), with derivatives in closed form; ``torch.fx`` records it
    as one call, which the traced forward mode differentiates by its rule.

    Args:
        logits: the natural parameters ``η``, any shape.

    Returns:
        ``e(η)``, same shape.

    Example:
        >>> x = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
        >>> tuple(round(v, 4) for v in continuous_bernoulli_embedding(x).tolist())
        (0.0, 0.2863, -0.2863)
    """
    traced: object = logits
    if isinstance(traced, fx.Proxy):  # one node of a torch.fx trace, not its quadrature
        node = traced.tracer.create_proxy(
            "call_function", continuous_bernoulli_embedding, (traced,), {}
        )
        return cast(Tensor, node)
    a = logits.abs()
    head = _head(logits.clamp(-_SPLIT, _SPLIT))
    far = a.clamp(min=_SPLIT)
    tail = torch.log(far) + _K + _tail(far)
    return torch.where(a <= _SPLIT, head, torch.sign(logits) * tail)
