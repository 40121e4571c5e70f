"""The ``"graph"`` method on real-sized decoders' latent spaces: the points' graph built
once and kept, and each pair's path independent of the rest of its batch.

Not a test. One thread, float64, the conv VAE decoder (d = 16) and the MLP (d = 50) of
``real_decoders.py`` (random weights) and ``--points`` latent codes drawn from N(0, I).
Prints, per decoder:

* seconds of ``connecting_geodesic(method="graph", refine=False)`` over ``--pairs``
  pairs in chunks of ``--chunk`` (as ``geodesic_distances`` solves them): the first
  chunk, which builds the points' k-NN graph (``points · k`` segments), and the mean
  of the later ones, which reuse it, and their peak tensor bytes (the budget's tracker);
* the largest difference between the graph lengths of the pairs solved together and
  one at a time (rounding only: a pair's path does not depend on its batch; the
  lengths of its end points' edges are computed in batches of another size).

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
from real_decoders import conv_decoder, mlp_decoder

from latentgeo._live_bytes import measure_peak
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
    print(f"torch {torch.__version__}, 1 thread, float64, {args.points} points, k={args.k}, "
          f"{args.pairs} pairs in chunks of {args.chunk}; peak: tracked tensor bytes")  # fmt: skip
    print("| decoder | first chunk (builds the graph) | later chunks (mean) "
          "| peak first / later | together − alone (max) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, decoder, d in (("conv VAE", conv_decoder(16), 16), ("MLP", mlp_decoder(50), 50)):
        print(_row(f"{name} d={d}", as_metric(decoder.double()), d, args))


def _row(name: str, metric: object, d: int, args: argparse.Namespace) -> str:
    """One decoder's times, peaks and largest together−alone difference."""
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(args.points, d, generator=gen, dtype=torch.float64)
    z0, z1 = torch.randn(2, args.pairs, d, generator=gen, dtype=torch.float64)
    options = {"method": "graph", "points": points, "k": args.k, "refine": False}
    seconds, peaks, together = [], [], []
    with torch.no_grad():
        for start in range(0, args.pairs, args.chunk):
            rows = slice(start, start + args.chunk)
            began = time.perf_counter()
            res, peak = measure_peak(
                lambda r=rows: connecting_geodesic(metric, z0[r], z1[r], **options)
            )
            seconds.append(time.perf_counter() - began)
            peaks.append(peak)
            together.append(res.info["graph_length"])
        alone = [
            connecting_geodesic(metric, z0[p : p + 1], z1[p : p + 1], **options).info[
                "graph_length"
            ]
            for p in range(args.pairs)
        ]
    later = seconds[1:] or [float("nan")]
    gap = (torch.cat(together) - torch.cat(alone)).abs().nan_to_num(0.0).max()
    mib = [x / 2**20 for x in (peaks[0], max(peaks[1:] or [0]))]
    return (
        f"| {name} | {seconds[0]:.2f} s | {sum(later) / len(later):.2f} s "
        f"| {mib[0]:.1f} / {mib[1]:.1f} MiB | {float(gap):.1e} |"
    )


if __name__ == "__main__":
    main()
