"""Ensemble vs RBF-precision decoders around a hole (the demo, step by step).

Train both VAEs on ring data (2-d latents), connect codes on opposite sides of
the ring by geodesics, and compare with straight lines.

    python examples/ensemble_vs_rbf.py            # about a minute
    python examples/ensemble_vs_rbf.py --quick    # seconds
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from latentgeo.analysis import off_data_fraction, straight_line_length
from latentgeo.data import ring
from latentgeo.experiments.demo import pairs_across_ring
from latentgeo.metrics import as_metric
from latentgeo.models import calibrate_rbf, fit, make_ensemble_vae, make_rbf_vae
from latentgeo.solvers import connecting_geodesic
from latentgeo.viz import new_figure, plot_latent_space, save_figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    n, epochs = (400, 15) if args.quick else (1000, 60)

    x, angle = ring(n, noise=0.05, seed=0)
    ensemble = make_ensemble_vae(2, 2, num_members=4 if args.quick else 8, hidden=(32, 32), seed=0)
    fit(ensemble, x, epochs=epochs, batch_size=100, lr=3e-3, progress=False)
    rbf = make_rbf_vae(2, 2, num_centres=32 if args.quick else 64, hidden=(32, 32), seed=0)
    fit(rbf, x, epochs=epochs, batch_size=100, lr=3e-3, progress=False)
    calibrate_rbf(rbf, x, epochs=100, progress=False)

    i, j = pairs_across_ring(angle, 4 if args.quick else 8)
    fig, axes = new_figure(2)
    for ax, (name, vae) in zip(axes, [("ensemble", ensemble), ("rbf", rbf)], strict=True):
        with torch.no_grad():
            codes = vae.encode(x).mean
        metric = as_metric(vae.decoder)
        z0, z1 = codes[i], codes[j]
        # shortest paths through the codes under the metric, then (RBF) energy refinement
        result = connecting_geodesic(
            metric, z0, z1, method="graph", points=codes, refine=name == "rbf", max_iter=30
        )
        line = straight_line_length(metric, z0, z1)
        curves = result.curve(torch.linspace(0, 1, 64)).detach()
        off = off_data_fraction(curves, codes).mean()
        print(
            f"{name:8s} metric length: geodesic {result.length.mean():.3f}, "
            f"line {line.mean():.3f}; off-data share of the geodesics {off:.1%}"
        )
        plot_latent_space(
            decoder=vae.decoder, background="uncertainty", codes=codes, curves=curves,
            straight=(z0, z1), resolution=30 if args.quick else 80, title=name, ax=ax,
        )  # fmt: skip
    print(f"wrote {save_figure(fig, Path(args.out) / 'ensemble_vs_rbf.png')}")


if __name__ == "__main__":
    main()
