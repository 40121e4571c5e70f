"""Bring your own model: pythae VAE and RHVAE, a plain function, a dict, a ContinuousBernoulli.

Each gives its metric in one line; geodesics follow. The pythae parts need
``pip install "latentgeo[pythae]"`` and are skipped (with a note) without it.

    python examples/bring_your_model.py            # writes runs/examples/bring_your_model_*.png
    python examples/bring_your_model.py --quick    # tiny training, coarse grid
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import ContinuousBernoulli

from latentgeo.data import ring
from latentgeo.metrics import Metric, RHVAEMetric, as_metric
from latentgeo.solvers import connecting_geodesic
from latentgeo.viz import (
    bounds_around,
    latent_grid,
    log_volume_map,
    new_figure,
    plot_background,
    plot_curves,
    plot_points,
    save_figure,
)

D = 8  # data dimension


def data(n: int) -> Tensor:
    """Points on a noisy circle in R^8, scaled into [0, 1] (pythae's "bce" wants probabilities)."""
    x = ring(n, ambient_dim=D, noise=0.05, seed=0).x
    return (x - x.min(0).values) / (x.max(0).values - x.min(0).values)


def train(model: Any, x: Tensor, epochs: int) -> Any:
    """Adam on mini-batches; ``model.update()`` after each epoch, as pythae's trainer does."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(x.shape[0]).split(64):
            loss = model({"data": x[batch]}).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        if hasattr(model, "update"):
            model.update()
    return model.eval()


def geodesics_figure(metric: Metric, z: Tensor, title: str, path: Path, cells: int) -> None:
    """Geodesics between 6 pairs of encoded points over the log volume element."""
    z0, z1 = z[:6], z[-6:]
    result = connecting_geodesic(metric, z0, z1)
    print(f"{title}: {result.num_converged}/6 geodesics converged, lengths {result.length}")
    extent = bounds_around(z)
    fig, (ax,) = new_figure()
    plot_background(ax, log_volume_map(metric, latent_grid(extent, cells)), extent,
                    label="log volume element")  # fmt: skip
    plot_points(ax, z, size=3.0, alpha=0.4)
    plot_curves(ax, result.curve(torch.linspace(0, 1, 64, dtype=z.dtype)).detach())
    ax.set_title(title)
    print(f"wrote {save_figure(fig, path)}")


def pythae_part(args: argparse.Namespace, out: Path) -> None:
    from pythae.models import RHVAE, VAE, RHVAEConfig, VAEConfig

    x = data(256 if args.quick else 1024)
    epochs = 2 if args.quick else 40
    cells = 20 if args.quick else 80

    # a VAE trained with a Bernoulli likelihood: its metric is the Fisher–Rao pull-back
    vae = train(VAE(VAEConfig(input_dim=(D,), latent_dim=2, reconstruction_loss="bce")), x, epochs)
    metric = as_metric(vae)  # == as_metric(vae.decoder, output=lambda o: Bernoulli(probs=...))
    with torch.no_grad():
        z = vae.encoder(x).embedding
    geodesics_figure(metric, z, "pythae VAE (bce)", out / "bring_your_model_vae.png", cells)

    # an RHVAE: its own learned metric, exactly as pythae evaluates it
    rhvae = train(RHVAE(RHVAEConfig(input_dim=(D,), latent_dim=2, n_lf=1)), x, epochs)
    learned = RHVAEMetric.from_pythae(rhvae)  # == as_metric(rhvae)
    with torch.no_grad():
        z = rhvae.encoder(x).embedding
        gap = (learned.metric_tensor(z[:50]) - rhvae.G(z[:50])).abs().max()
    print(f"RHVAEMetric.from_pythae vs pythae's G on 50 codes: max |difference| {gap:.2e}")
    path = out / "bring_your_model_rhvae.png"
    geodesics_figure(learned, z, "pythae RHVAE (learned metric)", path, cells)


def plain_part() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, D)).double()

    def decoder(z: Tensor) -> Tensor:  # a plain function: traced like a module
        return torch.sigmoid(net(z))

    def dict_decoder(z: Tensor) -> dict[str, Any]:  # a container: the one tensor is picked
        return {"reconstruction": torch.sigmoid(net(z)), "note": "anything else"}

    z = torch.randn(5, 2, dtype=torch.float64)
    g_fn = as_metric(decoder).metric_tensor(z)
    g_dict = as_metric(dict_decoder).metric_tensor(z)
    g_module = as_metric(nn.Sequential(net, nn.Sigmoid())).metric_tensor(z)
    print(f"function vs module: max |ΔG| {(g_fn - g_module).abs().max():.1e}")
    print(f"dict vs module:     max |ΔG| {(g_dict - g_module).abs().max():.1e}")
    try:
        as_metric(dict_decoder, latent_dim=3)
    except ValueError as err:
        print(f"wrong latent size, caught in as_metric: {err}")

    # a continuous Bernoulli likelihood (MNIST VAEs): G = J_ηᵀ diag(Var(η)) J_η
    cb = as_metric(lambda z: ContinuousBernoulli(logits=net(z)))
    result = connecting_geodesic(cb, z[:2], z[2:4])
    print(
        f"continuous Bernoulli: G at one point {cb.metric_tensor(z[0]).diagonal().detach()}, "
        f"geodesic lengths {result.length}, {result.status}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny training, coarse grid")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    plain_part()
    if importlib.util.find_spec("pythae") is None:
        print('pythae is not installed (pip install "latentgeo[pythae]"): skipping its part')
        return
    pythae_part(args, Path(args.out))


if __name__ == "__main__":
    main()
