"""The ``"graph"`` method on a transposed-convolution VAE's latent space: the points' graph
built once and kept, and each pair's path independent of the rest of its batch.

Not a test. One thread, float64, the conv VAE decoder of ``real_decoders.py`` (d = 16,
random weights) and ``--points`` latent codes drawn from N(0, I). Prints:

* seconds of ``connecting_geodesic(method="graph", refine=False)`` over ``--pairs``
  pairs in chunks of ``--chunk`` (as ``geodesic_distances`` solves them): the first
  chunk, which builds the points' k-NN graph (``points · k`` segments), and the mean
  of the later ones, which reuse it;
* the largest difference between the graph lengths of the pairs solved together and
  one at a time (0: a pair's path does not depend on its batch).

Usage::

    python benchmarks/graph_start.py [--points 1000] [--pairs 32] [--chunk 8] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_decoders import conv_decoder

from latentgeo.metrics import as_metric
from latentgeo.solvers import connecting_geodesic


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="60 points, 4 pairs, chunks of 2")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.pairs, args.chunk = 60, 4, 2
    torch.set_num_threads(1)
    dt = torch.float64
    metric = as_metric(conv_decoder(16).to(dt))
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(args.points, 16, generator=gen, dtype=dt)
    z0, z1 = torch.randn(2, args.pairs, 16, generator=gen, dtype=dt)
    options = {"method": "graph", "points": points, "k": args.k, "refine": False}
    print(f"torch {torch.__version__}, 1 thread, float64, conv VAE d=16, {args.points} points, "
          f"k={args.k}, {args.pairs} pairs in chunks of {args.chunk}")  # fmt: skip
    seconds, together = [], []
    with torch.no_grad():
        for start in range(0, args.pairs, args.chunk):
            rows = slice(start, start + args.chunk)
            began = time.perf_counter()
            res = connecting_geodesic(metric, z0[rows], z1[rows], **options)
            seconds.append(time.perf_counter() - began)
            together.append(res.info["graph_length"])
        alone = [
            connecting_geodesic(metric, z0[p : p + 1], z1[p : p + 1], **options).info[
                "graph_length"
            ]
            for p in range(args.pairs)
        ]
    later = seconds[1:] or [float("nan")]
    gap = (torch.cat(together) - torch.cat(alone)).abs().nan_to_num(0.0).max()
    print("| first chunk (builds the graph) | later chunks (mean) | together − alone (max) |")
    print("|---|---|---|")
    print(f"| {seconds[0]:.2f} s | {sum(later) / len(later):.2f} s | {float(gap):.1e} |")


if __name__ == "__main__":
    main()
