"""The relative-improvement protocol of Michelis et al. (Algorithm 1) on a digits VAE.

Train an RBF-precision VAE on scikit-learn's 8x8 digits, draw z0 ~ N(0, I),
step along the top eigenvector of G(z0) towards the origin, and measure how
much shorter the geodesic is than the straight line.

    python examples/relative_improvement.py            # d = 8, 30 pairs
    python examples/relative_improvement.py --quick    # d = 2, 5 pairs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from latentgeo.analysis import monte_carlo_relative_improvement
from latentgeo.data import digits
from latentgeo.metrics import as_metric
from latentgeo.models import calibrate_rbf, fit, make_rbf_vae
from latentgeo.viz import plot_relative_improvement, save_figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    d, pairs, epochs = (2, 5, 5) if args.quick else (8, 30, 60)

    x, _ = digits()
    vae = make_rbf_vae(64, d, num_centres=4 * d, output_activation="sigmoid", seed=0)
    fit(vae, x, epochs=epochs, batch_size=64, lr=2e-3, progress=False)
    calibrate_rbf(vae, x, epochs=100, progress=False)

    result = monte_carlo_relative_improvement(
        as_metric(vae.decoder), pairs, latent_dim=d, step_size=1.0,
        generator=torch.Generator().manual_seed(0), max_iter=20 if args.quick else 100,
    )  # fmt: skip
    rel = result.relative_improvement
    print(
        f"mean relative improvement {100 * result.mean:.2f} % ± "
        f"{100 * result.standard_error:.2f} % (SE); min {100 * rel.min():.2f} %, "
        f"max {100 * rel.max():.2f} %"
    )
    print(f"wrote {save_figure(plot_relative_improvement(rel), Path(args.out) / 'rel.png')}")


if __name__ == "__main__":
    main()
