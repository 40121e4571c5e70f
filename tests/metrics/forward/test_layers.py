"""Layer rules: every entry of ``LAYERS`` against torch.func (value, first and second order,
float64, 1e-12, no generic fallback), on the examples of ``rule_cases.py``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.metrics.forward import TaylorPropagator
from latentgeo.metrics.forward.layers import LAYERS

from .rule_cases import check_rule, key_id, keys_of


@pytest.mark.parametrize("key", keys_of(LAYERS), ids=key_id)
def test_rule_matches_torch_func(key: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    check_rule(key, monkeypatch)


@pytest.mark.parametrize("norm", ["layer", "instance", "group"])
def test_normalisation_second_order_against_finite_differences(norm: str) -> None:
    """The rules' ∂²y[v, v] equal central differences of torch.func's (exact) first order."""
    gen = torch.Generator().manual_seed(2)
    layer = {
        "layer": nn.LayerNorm((2, 3)),
        "instance": nn.InstanceNorm1d(2, affine=True),
        "group": nn.GroupNorm(2, 2),
    }[norm].double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(3, 2, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(3, 2, 3, generator=gen, dtype=torch.float64)

    def along_v(a: Tensor) -> Tensor:
        return jvp(layer, (a,), (v,))[1]

    h = 1e-5
    finite = (along_v(x + h * v) - along_v(x - h * v)) / (2 * h)  # error O(h²) + O(ε/h)
    _, _, second = TaylorPropagator(nn.Sequential(layer))(x, v[None], v)
    torch.testing.assert_close(second, finite.reshape(3, -1), rtol=1e-6, atol=1e-6)
