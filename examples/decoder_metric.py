"""Your own decoder's expected metric and volume element.

A Gaussian decoder ``z ↦ N(μ(z), σ(z)²)`` induces the expected metric
``G(z) = J_μᵀ J_μ + J_σᵀ J_σ`` (Arvanitidis et al. 2018). latentgeo builds it
from what the decoder returns; nothing to register.

    python examples/decoder_metric.py            # writes runs/examples/decoder_metric.png
    python examples/decoder_metric.py --quick    # coarser grid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Independent, Normal

from latentgeo.metrics import as_metric, condition_number, volume_element
from latentgeo.viz import latent_grid, log_volume_map, new_figure, plot_background, save_figure


class MyDecoder(nn.Module):
    """A small Gaussian decoder 2 -> 10 whose σ grows away from the unit disk."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, z: torch.Tensor) -> Independent:
        sigma = 0.05 + 0.5 * torch.sigmoid(4.0 * (z.pow(2).sum(-1, keepdim=True) - 1.0))
        return Independent(Normal(self.mean(z), sigma.expand(-1, 10)), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grid")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    decoder = MyDecoder()
    metric = as_metric(decoder)  # the expected metric of a Gaussian decoder
    z = torch.randn(1000, 2)
    g = metric.metric_tensor(z)  # (1000, 2, 2)
    vol = volume_element(metric, z)  # (1000,), sqrt(det G)
    print(f"G(z) for 1000 points: {tuple(g.shape)}; volume element median {vol.median():.3f}")
    print(f"condition number median {condition_number(metric, z).median():.1f}")

    extent = (-2.0, 2.0, -2.0, 2.0)
    grid = latent_grid(extent, 30 if args.quick else 120)
    fig, (ax,) = new_figure()
    plot_background(ax, log_volume_map(metric, grid), extent, label="log volume element")
    ax.set_title("the expected metric grows where σ changes")
    path = save_figure(fig, Path(args.out) / "decoder_metric.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
