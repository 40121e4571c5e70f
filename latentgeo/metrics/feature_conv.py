"""Transposed 2-D convolutions to few channels as one product and shifted sums, out of place.

Pulling the rows of a feature map's Jacobian back through its first
convolution (an image of one or three channels to many) is a transposed
convolution to those few channels, on ``c`` times the points. On the CPU,
torch's kernel for it runs far below the processor's speed (a ``16 → 1``
channel, 3×3, stride-2 pull-back of 736 rows: about 30 ms, for 26 M
multiply-adds). Written as what it is, one product of the weight's taps with
every input pixel,

.. math:: y[c, s i + a - p,\\; s j + b - p] \\mathrel{+}= \\sum_{c'} W[c', c, a, b]\\, x[c', i, j],

and each tap's contribution padded to its place on the grid of its stride
phase (every operation out of place, so that autograd, ``torch.func.jvp`` and
``vmap`` go through it at the cost of the same products and pads), it is
3–4× faster forward and about 2× with its gradient. The loops run over the
kernel's taps, never over points or channels. Unlike
:func:`latentgeo.metrics.forward.transposed.conv_transpose2d_by_product`
(forward mode, in-place sums) it is meant to be differentiated.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["FEW_CHANNELS", "conv_transpose2d_by_taps", "use_taps"]

#: most output channels for which :func:`conv_transpose2d_by_taps` is used on the CPU
FEW_CHANNELS = 4


def use_taps(x: Tensor, weight: Tensor, groups: int, dilation: tuple[int, ...]) -> bool:
    """Whether :func:`conv_transpose2d_by_taps` serves this transposed convolution of ``x``
    ``(N, C_in, H, W)`` by ``weight`` ``(C_in, C_out, kH, kW)``: on the CPU, one group, no
    dilation, at most :data:`FEW_CHANNELS` output channels."""
    return (
        x.device.type == "cpu"
        and x.ndim == 4
        and weight.ndim == 4
        and groups == 1
        and all(v == 1 for v in dilation)
        and weight.shape[1] <= FEW_CHANNELS
    )


def conv_transpose2d_by_taps(
    x: Tensor,
    weight: Tensor,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
) -> Tensor:
    """``F.conv_transpose2d(x, weight, None, stride, padding, output_padding)`` (one group,
    no dilation) as a product and a sum of padded taps, differentiable.

    Tap ``(a, b)`` lands on stride phase ``(a mod s_h, b mod s_w)`` shifted by
    ``(a // s_h, b // s_w)``: the phases are summed apart, interleaved, and
    the padding cropped.

    Args:
        x: input ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out, kH, kW)``.
        stride, padding, output_padding: pairs, as in ``torch.nn.ConvTranspose2d``.

    Returns:
        ``(N, C_out, H_out, W_out)``, ``H_out = (H − 1) s − 2 p + kH + output_padding``.

    Example:
        >>> x, w = torch.randn(2, 3, 5, 5), torch.randn(3, 1, 3, 3)
        >>> y = conv_transpose2d_by_taps(x, w, (2, 2), (1, 1), (1, 1))
        >>> torch.allclose(y, F.conv_transpose2d(x, w, None, 2, 1, 1), atol=1e-5)
        True
    """
    n, c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    (sh, sw), (ph, pw), (oh, ow) = stride, padding, output_padding
    full_h, full_w = (h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow
    # the grid of one phase: every shifted tap, and the full output, fit on it
    gh = max(h + (kh - 1) // sh, -(-full_h // sh))
    gw = max(w + (kw - 1) // sw, -(-full_w // sw))
    taps = weight.permute(2, 3, 1, 0).reshape(kh * kw * c_out, c_in)
    cols = torch.matmul(taps, x.reshape(n, c_in, h * w)).reshape(n, kh * kw, c_out, h, w)
    parts = cols.unbind(1)  # (its gradient is one stack, not a scatter per tap)
    phases = []
    for ra in range(sh):
        row = []
        for rb in range(sw):
            acc = x.new_zeros(n, c_out, gh, gw) if ra >= kh or rb >= kw else None
            for a in range(ra, kh, sh):
                for b in range(rb, kw, sw):
                    qa, qb = a // sh, b // sw
                    part = F.pad(parts[a * kw + b], (qb, gw - qb - w, qa, gh - qa - h))
                    acc = part if acc is None else acc + part
            assert acc is not None
            row.append(acc)
        phases.append(torch.stack(row, -1))  # (N, C_out, gh, gw, s_w)
    grid = torch.stack(phases, 3).reshape(n, c_out, gh * sh, gw * sw)
    return grid[:, :, ph : full_h - ph, pw : full_w - pw]
