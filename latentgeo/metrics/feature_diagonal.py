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
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.func import jvp, vjp, vmap
from torch.nn import functional as F

from latentgeo.exceptions import callable_owner, warn_slower_path
from latentgeo.metrics.forward.errors import is_out_of_memory
from latentgeo.metrics.forward.transposed import product_conv_transpose2d, use_product
from latentgeo.metrics.jacobians import forward_jacobian, reverse_jacobian

__all__ = [
    "DIAGONAL_METHODS",
    "exact_feature_diagonal",
    "feature_jacobian",
    "hutchinson_feature_diagonal",
    "rademacher_probes",
    "sequential_rows",
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
        feature, x, mode, features: as in :func:`feature_jacobian`.

    Returns:
        The diagonal, shape ``(N, m)``.

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
        >>> exact_feature_diagonal(lambda x: x @ a.T, torch.zeros(1, 3))
        tensor([[1., 5., 9.]])
    """
    jac = feature_jacobian(feature, x, mode=mode, features=features)  # (N, c, m)
    return (jac * jac).sum(1)


#: layers :func:`sequential_rows` pulls back by hand (anything else: ``torch.func``)
_ELEMENTWISE = (
    nn.ELU, nn.CELU, nn.SELU, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink,
)  # fmt: skip
_TRANSPOSED: dict[type, Callable[..., Tensor]] = {
    nn.Conv1d: F.conv_transpose1d,
    nn.Conv2d: F.conv_transpose2d,
    nn.Conv3d: F.conv_transpose3d,
}


def _has_rule(layer: nn.Module) -> bool:
    """Whether :func:`sequential_rows` pulls back through ``layer`` (batch-separable, not
    in place, eval-mode dropout)."""
    if isinstance(layer, _ELEMENTWISE):
        return not getattr(layer, "inplace", False)
    if type(layer) in _TRANSPOSED:
        conv = cast(nn.Conv2d, layer)
        return conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
    if isinstance(layer, nn.Flatten):
        return layer.start_dim != 0
    if isinstance(layer, nn.Unflatten):
        return layer.dim != 0
    if isinstance(layer, nn.Dropout):
        return not layer.training
    return isinstance(layer, (nn.Linear, nn.Identity))


def _pull(layer: nn.Module, inp: Tensor, rho: Tensor) -> Tensor:
    """The cotangents ``rho (K, N or 1, *out)`` of ``layer``'s output pulled back to its
    input ``inp (N, *in)``: ``(K, N or 1, *in)``."""
    k = rho.shape[0]
    if isinstance(layer, nn.Linear):
        return rho @ layer.weight
    if isinstance(layer, _ELEMENTWISE):
        slope = jvp(layer, (inp,), (torch.ones_like(inp),))[1]  # f'(x), differentiable
        return rho * slope
    if type(layer) in _TRANSPOSED:
        conv = cast(nn.Conv2d, layer)
        n, spatial = inp.shape[0], inp.shape[2:]
        padding = cast(tuple[int, ...], conv.padding)  # (not a string: see _has_rule)
        rho = rho.expand(k, n, *rho.shape[2:]).reshape(k * n, *rho.shape[2:])
        extra = tuple(
            size - ((o - 1) * s - 2 * p + d * (w - 1) + 1)
            for size, o, s, p, d, w in zip(
                spatial, rho.shape[2:], conv.stride, padding, conv.dilation,
                conv.kernel_size, strict=True,
            )
        )  # fmt: skip
        if type(layer) is nn.Conv2d and use_product(rho, conv.weight, conv.groups, conv.dilation):
            # few input channels (an image): torch's kernel is slow there on the CPU
            s, p, e = conv.stride, padding, extra  # pairs: a 2-D convolution
            back = product_conv_transpose2d(
                rho, conv.weight, (s[0], s[1]), (p[0], p[1]), (e[0], e[1])
            )
        else:
            back = _TRANSPOSED[type(layer)](
                rho, conv.weight, None, conv.stride, padding, extra, conv.groups, conv.dilation
            )
        return back.reshape(k, n, *inp.shape[1:])
    return rho.reshape(k, rho.shape[1], *inp.shape[1:])  # reshapes, identity, eval dropout


def sequential_rows(
    module: nn.Module,
    x: Tensor,
    data_shape: tuple[int, ...] | None = None,
    *,
    below: int,
    cotangents: Tensor | None = None,
) -> Tensor | None:
    """The rows of ``J_h`` of an ``nn.Sequential`` feature map, pulled back layer by layer.

    The same numbers as ``c`` vector-Jacobian products by ``torch.func`` (exact, and
    differentiable again: the energy's gradient goes through them), built by hand for
    linear layers, convolutions (``conv_transpose`` of the cotangents), elementwise
    activations (``f'`` by one JVP of the layer), reshapes, identity and eval-mode
    dropout: the cotangents start as the ``c`` unit vectors shared by all points, and
    the second-order graph holds only forward operations, which autograd
    differentiates without the weight gradients ``torch.func``'s double backward of a
    convolution computes and discards (about 3× faster on a small CNN on the CPU).

    Args:
        module: the feature map; ``None`` is returned unless it is an ``nn.Sequential``
            of the layers above.
        x: data points ``(N, m)``.
        data_shape: the shape one point is given to ``module`` in (``None``: flat).
        below: ``None`` is also returned (after one forward pass) if ``c >= below``,
            where forward mode takes fewer products (not tested with ``cotangents``).
        cotangents: ``(K, c)`` covectors shared by all points to pull back instead of
            the ``c`` unit vectors (Hutchinson's probes): ``uᵀ J_h`` for each.

    Returns:
        ``(c, N, m)``, row ``k`` of ``J_h`` at every point (``(K, N, m)``, ``u_kᵀ J_h``,
        with ``cotangents``), or ``None``.
    """
    if not isinstance(module, nn.Sequential) or not all(_has_rule(m) for m in module):
        return None
    n = x.shape[0]
    act = x.reshape(n, *data_shape) if data_shape is not None else x
    inputs = []
    for layer in module:
        inputs.append(act)
        act = layer(act)
        if act.ndim == 0 or act.shape[0] != n:  # a reshape that mixed the points
            return None
    out_shape = act.shape[1:]
    c = act[0].numel() if n else 0
    if n == 0 or (cotangents is None and c >= below):
        return None
    if cotangents is None:
        cotangents = torch.eye(c, dtype=act.dtype, device=act.device)
    elif cotangents.ndim != 2 or cotangents.shape[1] != c:
        raise ValueError(f"cotangents must have shape (K, {c}), got {tuple(cotangents.shape)}")
    k = cotangents.shape[0]
    rho = cotangents.reshape(k, 1, *out_shape)
    for layer, inp in zip(reversed(module), reversed(inputs), strict=True):
        rho = _pull(layer, inp, rho)
    return rho.expand(k, n, *rho.shape[2:]).reshape(k, n, -1)


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
        probes: ``(s, N, c)``, independent entries of ±1 (:func:`rademacher_probes`), or
            ``(s, 1, c)``: the same ``s`` probes at every point.

    Returns:
        The estimate, shape ``(N, m)``.

    Example:
        >>> a = torch.tensor([[1.0, 2.0, 0.0]])  # one feature: exact with one probe
        >>> u = rademacher_probes(1, 1, 1, seed=0, dtype=a.dtype, device=a.device)
        >>> hutchinson_feature_diagonal(lambda x: x @ a.T, torch.zeros(1, 3), u)
        tensor([[1., 4., 0.]])
    """
    out, pull = vjp(feature, x)[:2]
    if (
        probes.ndim != 3
        or probes.shape[1] not in (1, out.shape[0])
        or probes.shape[2:] != out.shape[1:]
    ):
        n, c = out.shape
        raise ValueError(
            f"probes must have shape (s, {n}, {c}) or (s, 1, {c}), got {tuple(probes.shape)}"
        )
    probes = probes.expand(-1, out.shape[0], -1)
    if probes.shape[0] == 1:
        rows = pull(probes[0])[0].unsqueeze(0)
    else:
        try:
            rows = vmap(pull)(probes)[0]  # (s, N, m)
        except (RuntimeError, NotImplementedError, ValueError) as err:
            if is_out_of_memory(err):
                raise
            text = "vmap cannot batch the feature map's reverse mode; probes pulled one by one"
            warn_slower_path(callable_owner(feature), text)  # its metric, by class
            rows = torch.stack([pull(u)[0] for u in probes])
    return (rows * rows).mean(0)
