"""LabeledData: what every loader returns, unpacked or by name."""

from __future__ import annotations

import torch

from latentgeo.data import LabeledData, digits, ring


def test_unpacks_and_names_its_parts() -> None:
    x, y = torch.zeros(3, 2), torch.arange(3)
    data = LabeledData(x, y)
    a, b = data
    assert a is x and b is y and data.x is x and data.y is y
    assert data._replace(y=y + 1).y.tolist() == [1, 2, 3]


def test_loaders_return_it_with_one_label_per_row() -> None:
    for data in (ring(20, seed=0), digits(classes=(0, 1))):
        assert isinstance(data, LabeledData)
        assert data.x.ndim == 2 and data.y.shape == (data.x.shape[0],)
    assert digits(classes=(0, 1)).y.dtype == torch.int64
