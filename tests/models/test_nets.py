"""MLP: widths and activations as asked, batch-separable, refused arguments named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latentgeo.models import MLP
from latentgeo.models.nets import ACTIVATIONS


def test_layers_follow_the_widths_and_activations() -> None:
    net = MLP(3, 5, hidden=(8, 4), activation="elu", output_activation="sigmoid")
    linears = [m for m in net.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 8), (8, 4), (4, 5)]
    kinds = [type(m) for m in net.net if not isinstance(m, nn.Linear)]
    assert kinds == [nn.ELU, nn.ELU, nn.Sigmoid]
    affine = MLP(2, 3, hidden=())
    assert [type(m) for m in affine.net] == [nn.Linear]  # identity output: no extra module


def test_rows_are_independent_and_leading_shapes_are_kept() -> None:
    net = MLP(2, 4, hidden=(6,)).double()
    z = torch.randn(5, 2, dtype=torch.float64)
    rows = torch.cat([net(z[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(net(z), rows)
    assert net(torch.randn(3, 7, 2, dtype=torch.float64)).shape == (3, 7, 4)


def test_config_rebuilds_the_same_architecture() -> None:
    net = MLP(2, 3, hidden=(5,), activation="gelu", output_activation="softplus")
    again = MLP.from_config(net.config())
    assert again.config() == net.config() == {
        "in_dim": 2, "out_dim": 3, "hidden": [5], "activation": "gelu",
        "output_activation": "softplus",
    }  # fmt: skip
    assert [type(m) for m in again.net] == [type(m) for m in net.net]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_dim": 0, "out_dim": 3}, "in_dim must be a positive int, got 0"),
        ({"in_dim": 2, "out_dim": True}, "out_dim must be a positive int, got True"),
        ({"in_dim": 2, "out_dim": 3, "hidden": (4, 0)}, "hidden width must be a positive int"),
        ({"in_dim": 2, "out_dim": 3, "activation": "swishy"}, "activation must be one of"),
        ({"in_dim": 2, "out_dim": 3, "output_activation": "x"}, "output_activation must be"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_every_listed_activation_builds() -> None:
    for name in ACTIVATIONS:
        assert MLP(2, 2, hidden=(3,), activation=name)(torch.zeros(1, 2)).shape == (1, 2)
