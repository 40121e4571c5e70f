"""2-D transposed convolutions on the CPU: by one product and a scatter to few channels,
channels-last to many.

The last layer of an image decoder is typically a transposed convolution to
one or three channels. On the CPU, torch's kernel for it runs far below the
processor's speed (about 2.5 GFLOP/s for ``32 → 1`` channels, 4×4 kernel,
stride 2, one thread), and the metric pushes ``d`` tangents through it. Written
as what it is, one matrix product of the weight with every input pixel
followed by the sum of each kernel tap's contribution at its strided place,

.. math:: y[c, s i + a - p,\\; s j + b - p] \\mathrel{+}= \\sum_{c'} W[c', c, a, b]\\, x[c', i, j],

it is 4–5× faster on that layer (``benchmarks/real_decoders.py``: the conv
VAE's last layer). The loop runs over the kernel's taps (16 for 4×4), never
over points or channels. Used on the CPU for 2-D transposed convolutions with at most
:data:`FEW_CHANNELS` output channels, one group and no dilation, by the forward
engine's convolution rule (the tangents) and for the layer's own value
(:func:`faster_forward`: the chords of the energy, differentiated by autograd).
The value's gradient is the adjoint written the same way (gather each tap's
strided slice, one product), not autograd's trace of sixteen strided additions.

To more channels, torch's kernel is the faster one, and faster still on
channels-last tensors (the conv VAE's ``metric_tensor`` costs 1.3–1.4× less per
point so: ``benchmarks/real_decoders.py --only layout``): those layers take
their input channels-last and leave their output so (converting it back would
cost most of the gain). The product above reads a channels-last input without a
copy; every other call of the user's graph gets contiguous inputs (see
:mod:`~latentgeo.metrics.forward.layout`). On a GPU, torch's kernel is used as it is.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FEW_CHANNELS",
    "conv_transpose2d_by_product",
    "faster_forward",
    "has_faster_forward",
    "product_conv_transpose2d",
    "use_product",
]

Pair = tuple[int, int]

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
    x: Tensor, weight: Tensor, stride: Pair, padding: Pair, output_padding: Pair
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
    taps = _taps(weight)
    if channels_last(x):  # (N, H, W, C_in) in memory: the product needs no copy
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c_in)
        cols = (pixels @ taps.T).reshape(n, h, w, kh, kw, c_out).permute(0, 3, 4, 5, 1, 2)
    else:
        cols = torch.bmm(taps.expand(n, -1, -1), x.reshape(n, c_in, h * w))  # (fastest form)
        cols = cols.reshape(n, kh, kw, c_out, h, w)
    full = x.new_zeros(n, c_out, (h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow)
    for a in range(kh):
        rows = slice(a, a + sh * (h - 1) + 1, sh)
        for b in range(kw):
            full[:, :, rows, b : b + sw * (w - 1) + 1 : sw] += cols[:, a, b]
    return full[:, :, ph : full.shape[2] - ph, pw : full.shape[3] - pw]


def channels_last(x: Tensor) -> bool:
    """Whether a 4-D ``x`` is laid out channels-last (and not also plain contiguous), read
    from its strides (``torch.func.vmap`` cannot answer ``is_contiguous(channels_last)``)."""
    if x.ndim != 4 or x.is_contiguous():
        return False
    (n, c, h, w), (sn, sc, sh, sw) = x.shape, x.stride()
    return (
        (c == 1 or sc == 1)
        and (w == 1 or sw == c)
        and (h == 1 or sh == w * c)
        and (n == 1 or sn == h * w * c)
    )


def _taps(weight: Tensor) -> Tensor:
    """The weight ``(C_in, C_out, kH, kW)`` as rows ``(kH·kW·C_out, C_in)``, tap-major."""
    c_out, kh, kw = weight.shape[1:]
    return weight.permute(2, 3, 1, 0).reshape(kh * kw * c_out, -1)


def _gathered(g: Tensor, weight: Tensor, stride: Pair, padding: Pair, size: Pair) -> Tensor:
    """The adjoint of the strided sum: each tap's strided slice of the output gradient
    ``g (N, C_out, H_out, W_out)``, as ``(N, kH·kW·C_out, H·W)`` for input size ``(H, W)``."""
    (kh, kw), (sh, sw), (ph, pw), (h, w) = weight.shape[2:], stride, padding, size
    full = F.pad(g, (pw, pw, ph, ph))
    slices = [
        full[:, :, a : a + sh * (h - 1) + 1 : sh, b : b + sw * (w - 1) + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    return torch.stack(slices, 1).reshape(g.shape[0], -1, h * w)


class _ProductConvTranspose2d(torch.autograd.Function):
    """:func:`conv_transpose2d_by_product` with its adjoint as the gradient."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, weight: Tensor, stride: Pair, padding: Pair, out_pad: Pair) -> Tensor:
        return conv_transpose2d_by_product(x, weight, stride, padding, out_pad)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        x, weight, stride, padding, out_pad = inputs
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)
        ctx.geometry = (stride, padding, out_pad)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, _ = ctx.geometry
        n, c_in, h, w = x.shape
        cols = _gathered(g, weight, stride, padding, (h, w))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0] and channels_last(x):  # the gradient laid out like x
            pixels = cols.mT @ _taps(weight)  # (N, H·W, C_in)
            grad_x = pixels.reshape(n, h, w, c_in).permute(0, 3, 1, 2)
        elif ctx.needs_input_grad[0]:
            grad_x = torch.bmm(_taps(weight).T.expand(n, -1, -1), cols).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            rows = torch.einsum("nkp,ncp->kc", cols, x.reshape(n, c_in, h * w))
            c_out, kh, kw = weight.shape[1:]
            grad_w = rows.reshape(kh, kw, c_out, c_in).permute(3, 2, 0, 1)
        return grad_x, grad_w, None, None, None

    @staticmethod
    def jvp(ctx: Any, tx: Tensor | None, tw: Tensor | None, *_: Any) -> Tensor:
        x, weight = ctx.saved_tensors
        stride, padding, out_pad = ctx.geometry
        out = None
        if tx is not None:
            out = conv_transpose2d_by_product(tx, weight, stride, padding, out_pad)
        if tw is not None:
            dw = conv_transpose2d_by_product(x, tw, stride, padding, out_pad)
            out = dw if out is None else out + dw
        assert out is not None
        return out


def product_conv_transpose2d(
    x: Tensor, weight: Tensor, stride: Pair, padding: Pair, output_padding: Pair
) -> Tensor:
    """:func:`conv_transpose2d_by_product` for autograd: its gradient (input and weight,
    any order) is the adjoint gather-and-product, not a trace of strided additions."""
    out: Tensor = _ProductConvTranspose2d.apply(x, weight, stride, padding, output_padding)
    return out


def channels_last_conv_transpose2d(x: Tensor, module: nn.ConvTranspose2d, bias: bool) -> Tensor:
    """``module``'s transposed convolution of ``x`` (with its bias or without), laid out
    channels-last in and out: on the CPU, torch's kernel is faster so than on plain
    contiguous tensors (see the module doc; converting the output back would cost most
    of the gain, so it stays channels-last: see :mod:`.layout`)."""
    m = module
    return F.conv_transpose2d(
        x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),  # channels-last (vmap can't
        # take ``contiguous(memory_format=...)``)
        m.weight,
        m.bias if bias else None,
        m.stride,
        m.padding,  # type: ignore[arg-type]
        m.output_padding,
        m.groups,
        m.dilation,
    )


def use_channels_last(x: Tensor) -> bool:
    """Whether a 2-D transposed convolution of ``x`` (not by product) runs channels-last."""
    return CHANNELS_LAST and x.device.type == "cpu" and x.ndim == 4


#: run 2-D transposed convolutions to many channels channels-last on the CPU (``False``:
#: plain layout, as before; for comparisons)
CHANNELS_LAST = True


def has_faster_forward(module: object) -> bool:
    """Whether :func:`faster_forward` serves ``module``: an ``nn.ConvTranspose2d`` itself
    (not a subclass, whose forward may differ) without hooks (which calling it would run)."""
    return (
        type(module) is nn.ConvTranspose2d
        and not module._forward_hooks
        and not module._forward_pre_hooks
    )


def faster_forward(module: nn.ConvTranspose2d, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``module(x, *args, **kwargs)``, the same values, faster on the CPU: by product to
    few channels, channels-last to many (see the module doc); ``module`` itself where
    neither applies (another device, an ``output_size``)."""
    m = module
    if args or kwargs:
        return m(x, *args, **kwargs)
    if not use_product(x, m.weight, m.groups, m.dilation):
        if use_channels_last(x):
            return channels_last_conv_transpose2d(x, m, bias=True)
        return m(x)
    stride, padding = (int(m.stride[0]), int(m.stride[1])), (int(m.padding[0]), int(m.padding[1]))
    out_pad = (int(m.output_padding[0]), int(m.output_padding[1]))
    y = product_conv_transpose2d(x, m.weight, stride, padding, out_pad)
    return y if m.bias is None else y + m.bias[:, None, None]
