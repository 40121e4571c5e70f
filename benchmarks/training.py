"""Training throughput of ensemble-decoder VAEs (samples per second).

A 10-member ensemble VAE (``make_ensemble_vae``: one Gaussian encoder,
K = 10 tanh MLP decoders, d = 2) trained with :func:`latentgeo.models.fit` on

* ``digits``: scikit-learn's 1797 8×8 digits (D = 64), hidden (256, 128);
* ``ring``: 2000 points on a circle (D = 2), hidden (64, 64);

in the three ensemble modes (``partition``, ``random_member``, ``all``), plus a
single-decoder VAE of the same size as the baseline. Ratios are to the
single-decoder VAE measured in the same run. One thread by default; the first
epoch of every configuration is a warm-up and is not timed.

Run: ``python benchmarks/training.py [--device cuda] [--threads 1] [--epochs 3] [--batch-size 128]``
"""

from __future__ import annotations

import argparse
import time

import torch

from latentgeo.data import digits, ring
from latentgeo.models import VAE, fit, make_ensemble_vae

MODES = ("partition", "random_member", "all")


def throughput(
    model: VAE, x: torch.Tensor, *, epochs: int, batch_size: int, mode: str, device: torch.device
) -> float:
    """Samples per second of ``fit`` after a one-epoch warm-up."""
    fit(model, x, epochs=1, batch_size=batch_size, ensemble_mode=mode, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fit(model, x, epochs=epochs, batch_size=batch_size, ensemble_mode=mode, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--members", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    datasets = {
        "digits": (digits().x, (256, 128)),
        "ring": (ring(2000, noise=0.05, seed=0).x, (64, 64)),
    }
    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", threads {torch.get_num_threads()}, members K={args.members}, latent d=2, "
        f"batch {args.batch_size}, {args.epochs} timed epochs, float32"
    )
    print(f"{'data':8} {'N x D':>10} {'model':24} {'samples/s':>11} {'vs 1 decoder':>13}")
    for name, (x, hidden) in datasets.items():
        x = x.to(device)
        shape = f"{x.shape[0]}x{x.shape[1]}"
        single = make_ensemble_vae(x.shape[1], num_members=1, hidden=hidden, seed=0).to(device)
        base = throughput(
            single, x, epochs=args.epochs, batch_size=args.batch_size, mode="all", device=device
        )
        print(f"{name:8} {shape:>10} {'1 decoder':24} {base:11.0f} {1.0:13.2f}")
        for mode in MODES:
            vae = make_ensemble_vae(x.shape[1], num_members=args.members, hidden=hidden, seed=0)
            vae = vae.to(device)
            sps = throughput(
                vae, x, epochs=args.epochs, batch_size=args.batch_size, mode=mode, device=device
            )
            label = f"K={args.members} {mode}"
            print(f"{name:8} {shape:>10} {label:24} {sps:11.0f} {sps / base:13.2f}")


if __name__ == "__main__":
    main()
