"""Transposed convolutions by one product and a strided sum, against torch's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentgeo.metrics import as_metric
from latentgeo.metrics.forward.transposed import (
    FEW_CHANNELS,
    conv_transpose2d_by_product,
    use_product,
)

CASES = [  # (c_in, c_out, kernel, stride, padding, output_padding, size)
    (32, 1, (4, 4), (2, 2), (1, 1), (0, 0), (7, 7)),
    (8, 3, (3, 3), (2, 2), (1, 1), (1, 1), (5, 6)),
    (4, 2, (5, 3), (3, 1), (2, 0), (2, 0), (4, 5)),
    (6, 4, (1, 1), (1, 1), (0, 0), (0, 0), (3, 3)),
    (5, 1, (2, 4), (1, 3), (0, 1), (0, 2), (6, 2)),
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
