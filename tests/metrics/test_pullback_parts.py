"""Linear heads: the Gram form where it is cheaper, the layer applied where it is not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.metrics.pullback_parts import check_module_dtype, head_chords, through_head


def test_through_head_picks_the_cheaper_form_and_both_agree() -> None:
    torch.manual_seed(0)
    head = nn.Linear(4, 50).double()
    for rows in (2, 200):  # 2 vectors: apply W; 200: WᵀW is cheaper
        t = torch.randn(rows, 4, dtype=torch.float64)
        (out,), weights = through_head(head, t)
        if rows == 2:
            assert weights is None and out.shape == (2, 50)
            quadratic = (out * out).sum(-1)
        else:
            assert weights is not None and out.shape == (200, 4)
            quadratic = ((out @ weights) * out).sum(-1)
        torch.testing.assert_close(quadratic, (head(t) - head.bias).pow(2).sum(-1))


def test_head_chords_either_way() -> None:
    torch.manual_seed(1)
    head = nn.Linear(3, 40).double()
    for points in (2, 100):
        h = torch.randn(1, points, 3, dtype=torch.float64)
        out = head(h)
        expected = ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)
        torch.testing.assert_close(head_chords(h, head), expected)


def test_dtype_mismatch_is_explained() -> None:
    with pytest.raises(TypeError, match="float64"):
        check_module_dtype(nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.float64))


def test_module_mismatch_names_the_module_and_the_fix() -> None:
    z = torch.zeros(1, 2, dtype=torch.float64)
    message = (
        r"^z has dtype torch\.float64 but the head's parameters are torch\.float32; convert one "
        r"of them \(e\.g\. metric\.to\(torch\.float64\) or z\.to\(torch\.float32\)\)$"
    )
    with pytest.raises(TypeError, match=message):
        check_module_dtype(nn.Linear(2, 2), z, "the head")
    check_module_dtype(nn.Linear(2, 2).double(), z)  # alike: no error
    on_meta = nn.Linear(2, 2).to(device="meta", dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^z is on cpu but the decoder's parameters are on meta"):
        check_module_dtype(on_meta, z)
