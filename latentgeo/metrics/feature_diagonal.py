"""The diagonal ``diag(J_hᵀ J_h)`` of a feature map's metric, exactly or by Hutchinson's estimator.

The stochastic term of :class:`~latentgeo.metrics.FeatureMetric` weighs the
decoder's standard deviation by the diagonal of ``M_h = J_hᵀ J_h``, the
feature map ``h: (N, m) -> (N, c)``'s pull-back metric at the decoded mean:

.. math:: \\operatorname{diag}(M_h)_i = \\sum_{k=1}^{c} (∂h_k / ∂x_i)^2 .

* :func:`exact_feature_diagonal` costs ``min(c, m)`` products per point: ``c``
  reverse-mode products (one per feature, the rows of ``J_h``) when the map is
  narrower than its input, else ``m`` forward-mode products (the columns).
* :func:`hutchinson_feature_diagonal` costs ``s`` reverse-mode products per
  point, whatever ``c``: with ``s`` Rademacher probes ``u_j ∈ {±1}^c``,

  .. math:: \\widehat{\\operatorname{diag}}_i = \\frac1s \\sum_{j=1}^{s} (J_hᵀ u_j)_i^2,
     \\qquad \\mathbb E = \\operatorname{diag}(M_h)_i,
     \\qquad \\operatorname{Var} = \\frac2s\\Big(\\operatorname{diag}(M_h)_i^2
     - \\sum_k (∂h_k/∂x_i)^4\\Big),

  and a weighted sum ``Σ_i w_i diag_i`` (the squared norm's stochastic term,
  ``w = (J_σ v)²``) has variance ``(2/s)(‖A‖_F² − Σ_k A_kk²)`` with
  ``A = J_h diag(w) J_hᵀ`` (``c × c``): zero for one feature, and small where
  the rows of ``J_h`` are nearly orthogonal under ``w``.

Every map must be batch-separable (row ``n`` of the output depends on row
``n`` of the input only), as decoders in eval mode are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.func import vjp, vmap

from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.metrics.forward.errors import is_out_of_memory
from latentgeo.metrics.jacobians import forward_jacobian, reverse_jacobian

__all__ = [
    "DIAGONAL_METHODS",
    "exact_feature_diagonal",
    "feature_jacobian",
    "hutchinson_feature_diagonal",
    "rademacher_probes",
]

#: the ways :class:`~latentgeo.metrics.FeatureMetric` builds ``diag(J_hᵀ J_h)``
DIAGONAL_METHODS = ("exact", "hutchinson")

FlatMap = Callable[[Tensor], Tensor]


def feature_jacobian(
    feature: FlatMap,
    x: Tensor,
    *,
    mode: Literal["reverse", "forward"] | None = None,
    features: int | None = None,
) -> Tensor:
    """The feature map's Jacobian ``J_h`` at data points ``x``, with ``min(c, m)`` products.

    :func:`exact_feature_diagonal` is ``(J_h ⊙ J_h)`` summed over the features;
    :class:`~latentgeo.metrics.FeatureMetric` also reuses ``J_h`` for the
    deterministic term (``J_h J_μ v`` is then a product with the rows, not
    another pass of ``h``).

    Args:
        feature: the flat feature map ``(N, m) -> (N, c)``.
        x: data points of shape ``(N, m)``.
        mode: ``"reverse"`` (``c`` vector-Jacobian products), ``"forward"`` (``m``
            Jacobian-vector products) or ``None`` for the one with fewer products.
        features: ``c`` if known (else one forward pass of one point finds it).

    Returns:
        ``J_h``, shape ``(N, c, m)``.
    """
    if mode is None:
        c = features if features is not None else feature(x[:1]).shape[-1]
        mode = "reverse" if c < x.shape[-1] else "forward"
    if mode == "reverse":
        return reverse_jacobian(feature, x)
    if mode == "forward":
        return forward_jacobian(feature, x)
    raise ValueError(f"mode must be 'reverse', 'forward' or None, got {mode!r}")


def exact_feature_diagonal(
    feature: FlatMap,
    x: Tensor,
    *,
    mode: Literal["reverse", "forward"] | None = None,
    features: int | None = None,
) -> Tensor:
    """``diag(J_hᵀ J_h)`` at data points ``x``, exactly, with ``min(c, m)`` products.

    Args:
        feature: the flat feature map ``(N, m) -> (N, c)``.
        x: data points of shape ``(N, m)``.
        mode: ``"reverse"`` (``c`` vector-Jacobian products), ``"forward"`` (``m``
            Jacobian-vector products) or ``None`` for the one with fewer products.
        features: ``c`` if known (else one forward pass of one point finds it).

    Returns:
        The diagonal, shape ``(N, m)``.

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
        >>> exact_feature_diagonal(lambda x: x @ a.T, torch.zeros(1, 3))
        tensor([[1., 5., 9.]])
    """
    jac = feature_jacobian(feature, x, mode=mode, features=features)  # (N, c, m)
    return (jac * jac).sum(1)


def rademacher_probes(
    count: int,
    points: int,
    features: int,
    *,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """``count`` independent Rademacher (±1) vectors per point, shape ``(count, points,
    features)``, drawn on the CPU from ``torch.Generator().manual_seed(seed)`` (the same
    on every device) and moved to ``device``."""
    gen = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (count, points, features), generator=gen)
    return (2 * bits - 1).to(device=device, dtype=dtype)


def hutchinson_feature_diagonal(feature: FlatMap, x: Tensor, probes: Tensor) -> Tensor:
    """Hutchinson's unbiased estimate of ``diag(J_hᵀ J_h)``: ``(1/s) Σ_j (J_hᵀ u_j)²``.

    ``s`` vector-Jacobian products per point, batched (one forward pass of
    ``feature``); see the module's docstring for the variance.

    Args:
        feature: the flat feature map ``(N, m) -> (N, c)``.
        x: data points of shape ``(N, m)``.
        probes: ``(s, N, c)``, independent entries of ±1 (:func:`rademacher_probes`).

    Returns:
        The estimate, shape ``(N, m)``.

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 0.0]])  # one feature: exact with one probe
        >>> u = rademacher_probes(1, 1, 1, seed=0, dtype=a.dtype, device=a.device)
        >>> hutchinson_feature_diagonal(lambda x: x @ a.T, torch.zeros(1, 3), u)
        tensor([[1., 4., 0.]])
    """
    out, pull = vjp(feature, x)[:2]
    if probes.ndim != 3 or probes.shape[1:] != out.shape:
        raise ValueError(
            f"probes must have shape (s, {out.shape[0]}, {out.shape[1]}), got {tuple(probes.shape)}"
        )
    if probes.shape[0] == 1:
        rows = pull(probes[0])[0].unsqueeze(0)
    else:
        try:
            rows = vmap(pull)(probes)[0]  # (s, N, m)
        except (RuntimeError, NotImplementedError, ValueError) as err:
            if is_out_of_memory(err):
                raise
            owner = getattr(feature, "__self__", feature)  # a bound method: its metric
            text = "vmap cannot batch the feature map's reverse mode; probes pulled one by one"
            warn_once(owner, PerformanceWarning(f"{type(owner).__name__}: {text}"), stacklevel=3)
            rows = torch.stack([pull(u)[0] for u in probes])
    return (rows * rows).mean(0)
