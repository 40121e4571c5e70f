"""Independent references for the metric tests: plain autograd Jacobians, one point at a time."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal
from torch.func import jacrev, vmap

from latentgeo.metrics import ExplicitMetric


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


def jacrev_metric(decoder: Callable[[Tensor], Tensor], d: int) -> ExplicitMetric:
    """``G = JᵀJ`` with ``J`` by reverse mode (``torch.func.jacrev``): no forward-mode engine.

    Its geodesic terms (``form="christoffel"``) differentiate this ``G`` by forward mode
    over reverse mode: an independent reference for the engine's second order.
    """

    def tensor_fn(z: Tensor) -> Tensor:
        jac = vmap(jacrev(lambda x: decoder(x[None]).reshape(-1)))(z.reshape(-1, d))
        return (jac.mT @ jac).reshape(*z.shape[:-1], d, d)

    return ExplicitMetric(tensor_fn, latent_dim=d)


class InplaceDecoder(nn.Module):
    """A hand-written decoder using in-place operations everywhere a user might.

    ``x.tanh_()``, ``x += y``, ``x.mul_(p)``, ``F.elu(..., inplace=True)``,
    ``nn.ReLU(inplace=True)`` and a final ``torch.sigmoid_`` on a linear layer's output
    (which, read naively, makes the module look like it ends with that linear layer).
    """

    def __init__(self, d: int = 2, m: int = 9) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(d, 6), nn.Linear(6, 7), nn.Linear(7, m)
        self.relu = nn.ReLU(inplace=True)
        self.scale = nn.Parameter(torch.rand(7) + 0.5)

    def forward(self, z: Tensor) -> Tensor:
        h = self.a(z)
        h.tanh_()
        g = self.b(h)
        g += h.sum(-1, keepdim=True)
        g.mul_(self.scale)
        w = F.elu(g - 0.3, inplace=True)
        w = self.relu(w + 1.5)
        u = self.c(w)
        torch.sigmoid_(u)
        return u


class TanhInplace(nn.Module):
    """``x.tanh_()`` between two linear layers: the final-linear shortcut still applies."""

    def __init__(self, d: int = 2, m: int = 12) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(d, 5), nn.Linear(5, m)

    def forward(self, z: Tensor) -> Tensor:
        h = self.a(z)
        h.tanh_()
        return self.b(h)


def conv_decoder(d: int = 3, *, inplace: bool = False) -> nn.Sequential:
    """A conv VAE decoder: Linear → Unflatten → ConvTranspose2d → BatchNorm2d (eval) → GELU →
    ConvTranspose2d → GroupNorm → SiLU → Upsample → Conv2d → LayerNorm → Sigmoid (1×12×12)."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Linear(d, 16),
        nn.Unflatten(1, (4, 2, 2)),
        nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.GELU(),
        nn.ConvTranspose2d(4, 3, 3, stride=1, padding=1),
        nn.GroupNorm(1, 3),
        nn.SiLU(inplace=inplace),
        nn.Upsample(scale_factor=3, mode="bilinear"),
        nn.Conv2d(3, 1, 3, padding=1),
        nn.LayerNorm([12, 12]),
        nn.Sigmoid(),
    )
    with torch.no_grad():
        bn = net[3]
        bn.running_mean.copy_(0.1 * torch.randn(4))
        bn.running_var.copy_(torch.rand(4) + 0.5)
        bn.weight.copy_(torch.randn(4))
    return net.eval()
