"""Transposed convolutions by one product and a strided sum, against torch's kernel."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import jvp, vmap

from latentgeo.metrics import as_metric
from latentgeo.metrics.forward.transposed import (
    FEW_CHANNELS,
    channels_last,
    conv_transpose2d_by_product,
    faster_forward,
    has_faster_forward,
    product_conv_transpose2d,
    use_product,
)

CASES = [  # (c_in, c_out, kernel, stride, padding, output_padding, size)
    (32, 1, (4, 4), (2, 2), (1, 1), (0, 0), (7, 7)),
    (16, 1, (3, 3), (2, 2), (1, 1), (1, 1), (14, 14)),  # a CNN's first layer pulled back
    (8, 3, (3, 3), (2, 2), (1, 1), (1, 1), (5, 6)),
    (4, 2, (5, 3), (3, 1), (2, 0), (2, 0), (4, 5)),
    (6, 4, (1, 1), (1, 1), (0, 0), (0, 0), (3, 3)),
    (5, 1, (2, 4), (1, 3), (0, 1), (0, 2), (6, 2)),
    (2, 3, (2, 3), (1, 2), (0, 1), (0, 1), (9, 10)),
    (5, 1, (5, 5), (3, 3), (2, 2), (2, 2), (6, 7)),
    (3, 1, (1, 1), (2, 2), (0, 0), (1, 1), (5, 6)),  # stride beyond the kernel
    (3, 4, (2, 2), (3, 3), (0, 0), (2, 2), (5, 6)),
]


@pytest.mark.parametrize("case", CASES)
def test_matches_torch_in_float64(case: tuple) -> None:  # type: ignore[type-arg]
    c_in, c_out, kernel, stride, padding, output_padding, size = case
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, *size, generator=gen, dtype=torch.float64)
    w = torch.randn(c_in, c_out, *kernel, generator=gen, dtype=torch.float64)
    want = F.conv_transpose2d(x, w, None, stride, padding, output_padding)
    got = conv_transpose2d_by_product(x, w, stride, padding, output_padding)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12 * float(want.abs().max()))


def test_used_only_where_it_is_faster() -> None:
    x = torch.zeros(2, 8, 5, 5)
    assert use_product(x, torch.zeros(8, FEW_CHANNELS, 3, 3), 1, (1, 1))
    assert not use_product(x, torch.zeros(8, FEW_CHANNELS + 1, 3, 3), 1, (1, 1))
    assert not use_product(x, torch.zeros(8, 1, 3, 3), 2, (1, 1))  # groups
    assert not use_product(x, torch.zeros(8, 1, 3, 3), 1, (2, 1))  # dilation
    assert not use_product(torch.zeros(2, 8, 5), torch.zeros(8, 1, 3), 1, (1,))  # 1-D


def test_the_metric_of_a_decoder_ending_in_one_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's convolution rule takes the product path for the last layer: the metric
    equals the autograd Jacobian's ``JᵀJ`` to 1e-10 (float64)."""
    from latentgeo.metrics.forward import layers

    calls: list[int] = []

    def spy(*args: object) -> torch.Tensor:
        calls.append(1)
        return conv_transpose2d_by_product(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(layers, "conv_transpose2d_by_product", spy)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(3, 8 * 4 * 4), nn.ELU(), nn.Unflatten(1, (8, 4, 4)),
        nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1, output_padding=0), nn.Flatten(),
    ).double().eval()  # fmt: skip
    z = torch.randn(5, 3, dtype=torch.float64)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: net(v[None])[0]))(z)
    got = as_metric(net).metric_tensor(z)
    torch.testing.assert_close(got, jac.mT @ jac, rtol=1e-10, atol=1e-10)
    assert calls


def test_channels_last_input_gives_the_same_result() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, 5, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(8, 2, 4, 3, generator=gen, dtype=torch.float64)
    last = x.contiguous(memory_format=torch.channels_last)
    assert channels_last(last) and not channels_last(x)
    want = F.conv_transpose2d(x, w, None, (2, 1), (1, 1), (1, 0))
    got = conv_transpose2d_by_product(last, w, (2, 1), (1, 1), (1, 0))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12 * float(want.abs().max()))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_product_gradients_are_torchs(layout: torch.memory_format) -> None:
    """First and second order, input and weight: the adjoint gather-and-product against
    finite differences (gradcheck) and against autograd of torch's kernel."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 4, 3, generator=gen, dtype=torch.float64)
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    w = torch.randn(5, 2, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    geometry = ((2, 1), (1, 2), (1, 0))

    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return product_conv_transpose2d(a, b, *geometry)

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    g = torch.randn(f(x, w).shape, generator=gen, dtype=torch.float64)
    got = torch.autograd.grad(f(x, w), (x, w), g)
    want = torch.autograd.grad(F.conv_transpose2d(x, w, None, *geometry), (x, w), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_product_under_torch_func() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(3, *x.shape, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 1, 4, 4, generator=gen, dtype=torch.float64)

    def f(a: torch.Tensor) -> torch.Tensor:
        return product_conv_transpose2d(a, w, (2, 2), (1, 1), (0, 0))

    tangents = torch.func.vmap(lambda v: torch.func.jvp(f, (x,), (v,))[1])(t)
    want = F.conv_transpose2d(t.flatten(0, 1), w, None, 2, 1).unflatten(0, (3, 2))
    torch.testing.assert_close(tangents, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 8])
def test_faster_forward_is_the_modules(channels: int) -> None:
    """Few channels: by product; many: torch's kernel channels-last. Same values (to
    rounding) and gradients as calling the module, its bias included."""
    torch.manual_seed(4)
    module = nn.ConvTranspose2d(6, channels, 4, stride=2, padding=1).double()
    assert has_faster_forward(module)

    def forward(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return faster_forward(module, x, **kwargs)

    x = torch.randn(3, 6, 5, 5, dtype=torch.float64, requires_grad=True)
    got, want = forward(x), module(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(want)
    for a, b in zip(
        torch.autograd.grad(got, (x, module.weight), g),
        torch.autograd.grad(want, (x, module.weight), g),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forward(x, output_size=[11, 11]), module(x, output_size=[11, 11]))


def test_no_module_forward_for_subclasses_or_hooked_modules() -> None:
    class Mine(nn.ConvTranspose2d):
        pass

    assert not has_faster_forward(Mine(4, 1, 3))
    hooked = nn.ConvTranspose2d(4, 1, 3)
    hooked.register_forward_hook(lambda *args: None)
    assert not has_faster_forward(hooked)
    assert not has_faster_forward(nn.Conv2d(4, 1, 3))


def test_a_converted_metric_runs_its_own_layers() -> None:
    """``metric.to(float64)`` copies the decoder: the faster forwards of the copy use the
    copy's (float64) weights, not the original's, in the metric and in the chords."""
    torch.manual_seed(5)
    net = nn.Sequential(
        nn.Linear(3, 8 * 4 * 4), nn.ELU(), nn.Unflatten(1, (8, 4, 4)),
        nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.ELU(), nn.ConvTranspose2d(8, 1, 4, 2, 1),
        nn.Flatten(),
    ).eval()  # fmt: skip
    metric = as_metric(net)
    z = torch.randn(4, 3)
    metric.metric_tensor(z)  # traced and used in float32 first
    converted = metric.to(torch.float64)
    reference = net.to(torch.float64)  # (after the copy: the metric's own is float32 still)
    z64 = z.double()
    jac = torch.func.vmap(torch.func.jacrev(lambda v: reference(v[None])[0]))(z64)
    got = converted.metric_tensor(z64)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, jac.mT @ jac, rtol=1e-10, atol=1e-10)
    pos = torch.randn(1, 3, 3, dtype=torch.float64)
    out = reference(pos[0])
    want = ((out[1:] - out[:-1]) ** 2).sum(-1)[None]
    torch.testing.assert_close(converted.chords(pos), want, rtol=1e-12, atol=1e-12)


def test_vmap_over_channels_last_inputs() -> None:
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 2, 6, 4, 4, generator=gen, dtype=torch.float64)
    last = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # each (6, 4, 4) NHWC
    w = torch.randn(6, 1, 4, 4, generator=gen, dtype=torch.float64)
    got = torch.func.vmap(lambda a: product_conv_transpose2d(a, w, (2, 2), (1, 1), (0, 0)))(last)
    want = F.conv_transpose2d(x.flatten(0, 1), w, None, 2, 1).unflatten(0, (3, 2))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    many = nn.ConvTranspose2d(6, 8, 4, 2, 1).double()
    got = torch.func.vmap(lambda a: faster_forward(many, a))(x)
    torch.testing.assert_close(got, many(x.flatten(0, 1)).unflatten(0, (3, 2)))


def _both(case: tuple) -> tuple:  # type: ignore[type-arg]
    c_in, c_out, k, s, p, op, hw = case
    x = torch.randn(3, c_in, *hw, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_in, c_out, *k, dtype=torch.float64, requires_grad=True)

    def ours(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return product_conv_transpose2d(x, w, s, p, op)

    def torchs(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, w, None, s, p, op)

    return x, w, ours, torchs


@pytest.mark.parametrize("case", CASES)
def test_product_values_and_gradients_match_torch(case: tuple) -> None:  # type: ignore[type-arg]
    x, w, ours, torchs = _both(case)
    got, ref = ours(x, w), torchs(x, w)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    # second order: the gradient of a function of the first gradient (the feature metric's
    # energy gradient differentiates rows pulled back through this layer)
    gx, gw = torch.autograd.grad((got * got * g).sum(), (x, w), create_graph=True)
    rx, rw = torch.autograd.grad((ref * ref * g).sum(), (x, w), create_graph=True)
    torch.testing.assert_close(gx, rx, rtol=0, atol=1e-10)
    torch.testing.assert_close(gw, rw, rtol=0, atol=1e-10)
    second = torch.autograd.grad((gx * gx).sum() + (gw * gw).sum(), x)[0]
    expected = torch.autograd.grad((rx * rx).sum() + (rw * rw).sum(), x)[0]
    torch.testing.assert_close(second, expected, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("case", CASES[:4])
def test_product_forward_mode_and_vmap_match_torch(case: tuple) -> None:  # type: ignore[type-arg]
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
