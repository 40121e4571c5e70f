"""The shortcuts read from the functional graph: final linear layers and concatenated heads."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentgeo.metrics.embeddings import ConcatEmbedding
from latentgeo.metrics.forward import Propagator


def test_final_linear_layer() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 9))
    assert Propagator(net).final_linear is net[2]

    class SigmoidInPlace(nn.Module):  # returns sigmoid(W h + b), written in place
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 9)

        def forward(self, z: Tensor) -> Tensor:
            out = self.b(torch.tanh(self.a(z)))
            out.sigmoid_()
            return out

    assert Propagator(SigmoidInPlace()).final_linear is None


def test_concatenated_heads() -> None:
    mean, scale = nn.Linear(4, 9), nn.Sequential(nn.Linear(2, 9), nn.Softplus())
    emb = ConcatEmbedding(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), mean), scale)
    parts = Propagator(emb).parts  # traced through the Sequential parts, to the mean head
    assert parts is not None and Propagator(emb).linear_of(parts[0]) is mean
    assert parts[1].linear is None
    assert Propagator(ConcatEmbedding(scale, scale)).parts is None  # no linear head

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk, self.mean, self.scale = nn.Linear(2, 4), nn.Linear(4, 9), nn.Linear(4, 9)

        def forward(self, z: Tensor) -> Tensor:
            h = torch.tanh(self.trunk(z))
            return torch.cat([self.mean(h), self.scale(h).exp().reshape(z.shape[0], -1)], -1)

    heads = Heads()
    parts = Propagator(heads).parts
    assert parts is not None and len(parts) == 2
    assert Propagator(heads).linear_of(parts[0]) is heads.mean
    assert parts[1].linear is None and parts[1].source.name == "exp"
    values = Propagator(heads).run(torch.zeros(3, 2), None, False, [p.target for p in parts])
    assert values[0][0].shape == (3, 4)  # the mean head's input, not its output
