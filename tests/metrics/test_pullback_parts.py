"""Linear heads: the Gram form where it is cheaper, the layer applied where it is not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.metrics.forward import TangentPropagator
from latentgeo.metrics.pullback_parts import (
    check_module_dtype,
    head_chords,
    parts_match,
    through_head,
    traced_chords,
)


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


def _chords(f: nn.Module, pos: torch.Tensor) -> torch.Tensor:
    out = f(pos.reshape(-1, pos.shape[-1])).reshape(*pos.shape[:2], -1)
    return ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)


def test_traced_chords_through_a_widening_layer_or_linear_heads() -> None:
    from latentgeo.metrics.embeddings import DecoderEmbedding
    from latentgeo.models import MLP, GaussianDecoder

    torch.manual_seed(2)
    pos = torch.randn(3, 5, 2, dtype=torch.float64)
    widening = MLP(2, 30, hidden=(4,)).double().eval()
    prop = TangentPropagator(widening)
    got = traced_chords(prop, pos, lambda z: pytest.fail("the final layer suffices"))
    assert got is not None
    torch.testing.assert_close(got, _chords(widening, pos), rtol=1e-12, atol=1e-12)
    narrowing = MLP(2, 3, hidden=(8,)).double().eval()  # no head to reduce through
    assert traced_chords(TangentPropagator(narrowing), pos, lambda z: False) is None
    gaussian = DecoderEmbedding(GaussianDecoder(MLP(2, 30, hidden=(4,)), 0.5).double().eval())
    prop = TangentPropagator(gaussian)
    assert prop.chord_parts(pos[0]) is not None
    flat = pos[0]
    assert parts_match(prop, flat[:2], gaussian)
    assert not parts_match(prop, flat[:2], lambda z: gaussian(z) + 1.0)  # a different map
    got = traced_chords(prop, pos, lambda z: parts_match(prop, z[:2], gaussian))
    assert got is not None
    torch.testing.assert_close(got, _chords(gaussian, pos), rtol=1e-12, atol=1e-12)
    assert traced_chords(prop, pos, lambda z: False) is None


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


def _decoders() -> dict[str, nn.Module]:
    """A final widening linear layer (the ``J_h`` path), a narrowing one (the whole output)
    and a Gaussian decoder (its parts, the linear mean head before its layer)."""
    from latentgeo.models import MLP, GaussianDecoder

    torch.manual_seed(3)
    return {
        "widening": MLP(3, 40, (8,), activation="tanh"),
        "narrowing": MLP(3, 2, (8,), activation="tanh"),
        "parts": GaussianDecoder(
            MLP(3, 30, (8,), activation="tanh"),
            MLP(3, 30, (8,), activation="tanh", output_activation="softplus"),
        ),
    }


@pytest.mark.parametrize("kind", ["widening", "narrowing", "parts"])
@pytest.mark.parametrize("m", [1, 4])
def test_terms_along_several_velocities_are_those_of_each_velocity(kind: str, m: int) -> None:
    """``taylor_terms`` and ``nested_terms`` with ``v (M, N, d)``: ``J`` once, each ``b``
    as if alone (float64, to rounding)."""
    from latentgeo.metrics import as_metric
    from latentgeo.metrics.forward import TaylorPropagator
    from latentgeo.metrics.pullback_parts import nested_terms, taylor_terms

    decoder = _decoders()[kind].double()
    metric = as_metric(decoder)
    gen = torch.Generator().manual_seed(m)
    z = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(m, 5, 3, generator=gen, dtype=torch.float64)
    prop = TaylorPropagator(metric.embed)
    parts = kind == "parts"
    along = taylor_terms(prop, z, v, parts)
    nested = nested_terms(metric.flat_embedding, z, v)
    assert along.g.shape == (5, 3, 3) and along.b.shape == (m, 5, 3)
    for i in range(m):
        alone = taylor_terms(prop, z, v[i], parts)
        torch.testing.assert_close(along.g, alone.g, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(along.b[i], alone.b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(nested.b[i], alone.b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(nested.g, along.g, rtol=1e-12, atol=1e-12)
