"""The rule builders: broadcasting of tangents, options, products (both orders)."""

from __future__ import annotations

import torch
from torch import nn

from latentgeo.metrics.forward.jet import Call, Jet, full, lift, options, product


def test_lift_and_full_broadcast_like_the_primal() -> None:
    t = torch.randn(3, 5)  # K = 3 tangents of a (5,) tensor
    assert lift(t, 3).shape == (3, 1, 1, 5)
    out = torch.zeros(2, 4, 5)
    assert full(t, out).shape == (3, 2, 4, 5)
    torch.testing.assert_close(full(t, out)[:, 1, 2], t)


def test_options_read_modules_and_arguments() -> None:
    spec = (("beta", 1.0), ("threshold", 20.0))
    x = torch.zeros(2)
    module_call = Call((x,), {}, x, (None,), 1, False, nn.Softplus(beta=2.0))
    assert options(module_call, spec) == {"beta": 2.0, "threshold": 20.0}
    call = Call((x, 3.0), {"threshold": 5.0}, x, (None,), 1, False)
    assert options(call, spec) == {"beta": 3.0, "threshold": 5.0}
    assert options(Call((x,), {"other": 1}, x, (None,), 1, False), spec) is None


def test_product_jets_are_leibniz_in_both_orders() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    ja = Jet(torch.randn(2, 4, generator=gen), torch.randn(4, generator=gen))
    jb = Jet(torch.randn(2, 4, generator=gen), None)
    jet = product(a, ja, b, jb, a * b, True)
    assert jet is not None and jet.second is not None
    torch.testing.assert_close(jet.first, ja.first * b + a * jb.first)
    assert ja.second is not None
    torch.testing.assert_close(jet.second, ja.second * b + 2 * ja.first[-1] * jb.first[-1])
    first_only = product(a, ja, 2.0, None, a * 2.0, False)
    assert first_only is not None and first_only.second is None
    torch.testing.assert_close(first_only.first, 2.0 * ja.first)
