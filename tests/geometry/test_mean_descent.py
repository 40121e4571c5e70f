"""The Fréchet mean's descent: its pairs' bookkeeping and what it asks of log maps."""

from __future__ import annotations

import torch

from latentgeo.geometry.mean_descent import SetPairs


def test_set_pairs_keep_positive_weights_and_average_per_set() -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(2, 3, 2)
    w = torch.tensor([[1.0, 0.0, 3.0], [2.0, 2.0, 0.0]], dtype=torch.float64)
    pairs = SetPairs(x, w)
    assert pairs.set_idx.tolist() == [0, 0, 1, 1] and pairs.pt_idx.tolist() == [0, 2, 0, 1]
    values = torch.tensor([1.0, 5.0, 2.0, torch.inf], dtype=torch.float64)
    torch.testing.assert_close(pairs.weighted_mean(values)[0], torch.tensor(4.0).double())
    assert pairs.weighted_mean(values)[1] == torch.inf  # an unbounded error stays unbounded
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    length = torch.tensor([1.0, 2.0, 3.0, 1.0], dtype=torch.float64)
    f, vbar = pairs.summarise(torch.arange(4), v, length)
    torch.testing.assert_close(f, torch.tensor([0.5 * (1 + 12) / 4, 0.5 * (18 + 2) / 4]).double())
    torch.testing.assert_close(vbar, torch.tensor([[0.25, 0.75], [1.0, 1.0]]).double())
