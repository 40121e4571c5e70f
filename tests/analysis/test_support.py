"""Is a curve on the data: spacing of the codes and the share of curve points far from them,
against brute-force distances; chunking changes nothing."""

from __future__ import annotations

import pytest
import torch

from latentgeo.analysis import nearest_neighbour_spacing, off_data_fraction


def _brute_spacing(codes: torch.Tensor) -> float:
    dist = torch.cdist(codes, codes) + torch.diag(torch.full((codes.shape[0],), torch.inf))
    return float(dist.amin(1).median())


def test_spacing_is_the_median_nearest_neighbour_distance_whatever_the_chunks() -> None:
    codes = torch.randn(57, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = _brute_spacing(codes)
    for chunk in (1, 7, 4096):
        assert nearest_neighbour_spacing(codes, chunk_size=chunk) == pytest.approx(want, rel=1e-12)


def test_off_data_fraction_counts_points_beyond_factor_times_the_spacing() -> None:
    gen = torch.Generator().manual_seed(1)
    codes = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    curves = 3 * torch.randn(5, 9, 2, generator=gen, dtype=torch.float64)
    limit = 2.0 * _brute_spacing(codes)
    far = torch.cdist(curves.reshape(-1, 2), codes).amin(1).reshape(5, 9) > limit
    want = far.double().mean(-1)
    for chunk in (1, 4, 4096):
        got = off_data_fraction(curves, codes, factor=2.0, chunk_size=chunk)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    one = off_data_fraction(curves[0], codes, spacing=limit / 2.0, factor=2.0)
    assert one.shape == () and float(one) == float(want[0])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: nearest_neighbour_spacing(torch.zeros(1, 2)), r"N >= 2"),
        (lambda: off_data_fraction(torch.zeros(2, 3, 2), torch.zeros(4, 3)), "differ in d"),
        (lambda: off_data_fraction(torch.zeros(2, 3, 2), torch.zeros(4, 2), factor=-1.0), "factor"),
        (lambda: nearest_neighbour_spacing(torch.zeros(3, 2), chunk_size=0), "chunk_size"),
    ],
)
def test_bad_input_is_refused_by_name(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_float32_codes_far_from_the_origin() -> None:
    """An audit: ``torch.cdist`` expands ``|x|² + |y|² − 2 x·y``, which in float32 lost the
    spacing of codes in a unit square shifted by 100 (0 instead of 0.021) and called a
    curve a tenth of the spacing from the codes off the data; centred, in float64, the
    float32 answers are those of float64 to the codes' own rounding."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.rand(500, 2, generator=gen, dtype=torch.float64) + 100.0
    curve = (codes[:30] + 0.002)[None]
    exact = nearest_neighbour_spacing(codes)
    assert 0.02 < exact < 0.022
    assert abs(nearest_neighbour_spacing(codes.float()) - exact) < 1e-3 * exact
    assert float(off_data_fraction(curve.float(), codes.float())) == 0.0
    assert float(off_data_fraction(curve + 0.2, codes)) > 0.0  # and far is still far


def test_non_finite_codes_are_refused() -> None:
    """One NaN code made every distance NaN and every curve "on the data" (a reviewer)."""
    codes = torch.tensor([[0.0, 0.0], [1.0, float("nan")], [2.0, 0.0]])
    with pytest.raises(ValueError, match="codes contains NaN or Inf"):
        nearest_neighbour_spacing(codes)
    with pytest.raises(ValueError, match="codes contains NaN or Inf"):
        off_data_fraction(torch.zeros(1, 3, 2), codes, spacing=1.0)
