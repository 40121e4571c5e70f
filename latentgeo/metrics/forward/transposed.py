"""Transposed convolutions with few output channels on the CPU, as one product and a scatter.

The last layer of an image decoder is typically a transposed convolution to
one or three channels. On the CPU, torch's kernel for it runs far below the
processor's speed (about 2.5 GFLOP/s for ``32 → 1`` channels, 4×4 kernel,
stride 2, one thread), and the metric pushes ``d`` tangents through it. Written
as what it is, one matrix product of the weight with every input pixel
followed by the sum of each kernel tap's contribution at its strided place,

.. math:: y[c, s i + a - p,\\; s j + b - p] \\mathrel{+}= \\sum_{c'} W[c', c, a, b]\\, x[c', i, j],

it is 4–5× faster on that layer (``benchmarks/real_decoders.py``: the conv
VAE's last layer). The loop runs over the kernel's taps (16 for 4×4), never
over points or channels. Used by the forward engine's convolution rule for
2-D transposed convolutions on the CPU with at most :data:`FEW_CHANNELS`
output channels, one group and no dilation; everything else uses torch's kernel.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["FEW_CHANNELS", "conv_transpose2d_by_product", "use_product"]

#: most output channels for which :func:`conv_transpose2d_by_product` is used on the CPU
FEW_CHANNELS = 4


def use_product(x: Tensor, weight: Tensor, groups: int, dilation: tuple[int, ...]) -> bool:
    """Whether :func:`conv_transpose2d_by_product` serves this 2-D transposed convolution."""
    return (
        x.device.type == "cpu"
        and x.ndim == 4
        and weight.ndim == 4
        and groups == 1
        and all(v == 1 for v in dilation)
        and weight.shape[1] <= FEW_CHANNELS
    )


def conv_transpose2d_by_product(
    x: Tensor,
    weight: Tensor,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
) -> Tensor:
    """``F.conv_transpose2d(x, weight, None, stride, padding, output_padding)`` (one group,
    no dilation) as a product and a strided sum over the kernel's taps.

    Args:
        x: input ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out, kH, kW)``.
        stride, padding, output_padding: as in ``torch.nn.ConvTranspose2d``.

    Returns:
        ``(N, C_out, H_out, W_out)``, ``H_out = (H − 1) s − 2 p + kH + output_padding``.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> x, w = torch.randn(2, 3, 5, 5), torch.randn(3, 1, 4, 4)
        >>> y = conv_transpose2d_by_product(x, w, (2, 2), (1, 1), (0, 0))
        >>> torch.allclose(y, F.conv_transpose2d(x, w, None, 2, 1), atol=1e-5)
        True
    """
    n, c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    (sh, sw), (ph, pw), (oh, ow) = stride, padding, output_padding
    taps = weight.permute(2, 3, 1, 0).reshape(kh * kw * c_out, c_in)
    cols = torch.bmm(taps.expand(n, -1, -1), x.reshape(n, c_in, h * w))  # (fastest form)
    cols = cols.reshape(n, kh, kw, c_out, h, w)
    full = x.new_zeros(n, c_out, (h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow)
    for a in range(kh):
        rows = slice(a, a + sh * (h - 1) + 1, sh)
        for b in range(kw):
            full[:, :, rows, b : b + sw * (w - 1) + 1 : sw] += cols[:, a, b]
    return full[:, :, ph : full.shape[2] - ph, pw : full.shape[3] - pw]
