"""Independent references for the metric tests: plain autograd Jacobians, one point at a time."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Normal


def autograd_jacobian(f: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """``(N, m, d)`` Jacobians of ``f: (1, d) -> (1, m)`` by reverse-mode autograd, per point."""
    rows = []
    for zi in z:
        jac = torch.autograd.functional.jacobian(lambda x: f(x.unsqueeze(0)).reshape(-1), zi)
        rows.append(jac)
    return torch.stack(rows)


class GaussianMLP(nn.Module):
    """A small Gaussian decoder: tanh MLP with a mean head and a softplus std head."""

    def __init__(self, d: int, m: int, hidden: int = 16, *, independent: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.Tanh())
        self.mean = nn.Linear(hidden, m)
        self.std = nn.Sequential(nn.Linear(hidden, m), nn.Softplus())
        self.independent = independent

    def mu(self, z: Tensor) -> Tensor:
        return self.mean(self.body(z))

    def sigma(self, z: Tensor) -> Tensor:
        return self.std(self.body(z)) + 1e-3

    def forward(self, z: Tensor) -> object:
        dist = Normal(self.mu(z), self.sigma(z))
        if self.independent:
            return torch.distributions.Independent(dist, 1)
        return dist


def mlp(d: int, m: int, hidden: int = 16) -> nn.Module:
    """A deterministic tanh MLP decoder ``R^d -> R^m``."""
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, m))
