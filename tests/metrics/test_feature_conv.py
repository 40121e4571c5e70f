"""The transposed convolution by taps against torch's kernel: values, gradients (first and
second order), forward mode and vmap, float64 at 1e-12, over strides, paddings, output
paddings, rectangular kernels and strides larger than the kernel."""

from __future__ import annotations

import pytest
import torch
from torch.func import jvp, vmap
from torch.nn import functional as F

from latentgeo.metrics.feature_conv import conv_transpose2d_by_taps, use_taps

CASES = [
    # c_in, c_out, kernel, stride, padding, output_padding, input (H, W)
    (16, 1, (3, 3), (2, 2), (1, 1), (1, 1), (14, 14)),  # the CNN's first layer pulled back
    (4, 2, (4, 4), (2, 2), (1, 1), (0, 0), (7, 7)),
    (2, 3, (2, 3), (1, 2), (0, 1), (0, 1), (9, 10)),
    (5, 1, (5, 5), (3, 3), (2, 2), (2, 2), (6, 7)),
    (3, 1, (1, 1), (2, 2), (0, 0), (1, 1), (5, 6)),  # stride beyond the kernel: empty phases
    (3, 4, (2, 2), (3, 3), (0, 0), (2, 2), (5, 6)),
    (2, 1, (3, 3), (1, 1), (1, 1), (0, 0), (5, 6)),
]


def _both(case: tuple) -> tuple:  # type: ignore[type-arg]
    c_in, c_out, k, s, p, op, hw = case
    x = torch.randn(3, c_in, *hw, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_in, c_out, *k, dtype=torch.float64, requires_grad=True)

    def ours(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return conv_transpose2d_by_taps(x, w, s, p, op)

    def torchs(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, w, None, s, p, op)

    return x, w, ours, torchs


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_torch(case: tuple) -> None:  # type: ignore[type-arg]
    x, w, ours, torchs = _both(case)
    got, ref = ours(x, w), torchs(x, w)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    # second order: the gradient of a function of the first gradient (the energy's
    # gradient differentiates rows pulled back through this layer)
    gx, gw = torch.autograd.grad((got * got * g).sum(), (x, w), create_graph=True)
    rx, rw = torch.autograd.grad((ref * ref * g).sum(), (x, w), create_graph=True)
    torch.testing.assert_close(gx, rx, rtol=0, atol=1e-10)
    torch.testing.assert_close(gw, rw, rtol=0, atol=1e-10)
    second = torch.autograd.grad((gx * gx).sum() + (gw * gw).sum(), x)[0]
    expected = torch.autograd.grad((rx * rx).sum() + (rw * rw).sum(), x)[0]
    torch.testing.assert_close(second, expected, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("case", CASES[:3])
def test_forward_mode_and_vmap_match_torch(case: tuple) -> None:  # type: ignore[type-arg]
    """The Christoffel symbols push tangents through the metric by jvp and vmap."""
    x, w, ours, torchs = _both(case)
    x, w = x.detach(), w.detach()
    t = torch.randn_like(x)
    got = jvp(lambda y: ours(y, w), (x,), (t,))[1]
    ref = jvp(lambda y: torchs(y, w), (x,), (t,))[1]
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    stack = torch.stack([x, t])
    torch.testing.assert_close(
        vmap(lambda y: ours(y, w))(stack), vmap(lambda y: torchs(y, w))(stack), rtol=0, atol=1e-12
    )


def test_use_taps_only_for_few_output_channels_on_the_cpu() -> None:
    x = torch.zeros(2, 8, 5, 5)
    assert use_taps(x, torch.zeros(8, 1, 3, 3), 1, (1, 1))
    assert not use_taps(x, torch.zeros(8, 16, 3, 3), 1, (1, 1))  # torch's kernel is faster
    assert not use_taps(x, torch.zeros(8, 1, 3, 3), 2, (1, 1))  # groups
    assert not use_taps(x, torch.zeros(8, 1, 3, 3), 1, (2, 1))  # dilation
    assert not use_taps(torch.zeros(2, 8, 5), torch.zeros(8, 1, 3), 1, (1,))  # 1-D
