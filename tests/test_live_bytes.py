"""The live-bytes tracker: tensors made under it, views of earlier ones, reallocations."""

from __future__ import annotations

import torch
from torch import Tensor

from latentgeo._live_bytes import measure_peak


def test_measured_peak_counts_live_tensors_only() -> None:
    def work() -> Tensor:
        a = torch.ones(1000, dtype=torch.float64)  # 8000 bytes, freed at the end
        b = torch.ones(500, dtype=torch.float64)  # 4000 bytes, returned
        return b + a[:500].sum()

    out, peak = measure_peak(work)
    # a, b and the sum (a 0-d tensor) and the result were alive together at most
    assert 12_000 <= peak <= 12_000 + 4000 + 64
    assert out.shape == (500,)


def test_views_of_tensors_made_before_allocate_nothing() -> None:
    """A chunk of all the points, ``points[sl]``, shares their storage: counted, 1e6
    points of d = 16 made a 128 MB "fixed" cost of every chunk."""
    points = torch.ones(100_000, 16, dtype=torch.float64)  # 12.8 MB, made before

    def work() -> Tensor:
        chunk = points[10:20]  # a view: nothing allocated
        chunk.add_(0.0)  # in place on it: nothing either
        return chunk * 2.0  # 1280 bytes

    out, peak = measure_peak(work)
    assert 1280 <= peak <= 1280 + 64 and out.shape == (10, 16)
    _, peak = measure_peak(lambda: (points[:10] * 2.0)[2:4] + 1.0)  # views of new ones count
    assert 1280 + 256 <= peak <= 1280 + 256 + 64


def test_storage_an_operation_reallocates_is_counted() -> None:
    """``out=`` and ``resize_`` on a tensor made before give it new storage: counted."""
    buf, small = torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.float64)
    w = torch.ones(16, 16, dtype=torch.float64)
    x = torch.ones(1000, 16, dtype=torch.float64)
    assert measure_peak(lambda: torch.matmul(x, w, out=buf))[1] >= 128_000
    assert measure_peak(lambda: small.resize_(1000, 16).fill_(1.0))[1] >= 128_000
