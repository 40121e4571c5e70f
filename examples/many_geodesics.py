"""Many geodesics at once: 1000 pairs in one batched call, checked on the sphere.

The unit sphere, through inverse stereographic projection, is a decoder whose
geodesic distances are known in closed form (great-circle angles).

    python examples/many_geodesics.py            # 1000 pairs
    python examples/many_geodesics.py --quick    # 50 pairs
"""

from __future__ import annotations

import argparse
import time

import torch

from latentgeo.solvers import connecting_geodesic
from latentgeo.testing import StereographicSphere


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 pairs instead of 1000")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    sphere = StereographicSphere()  # any decoder works the same way
    n = 50 if args.quick else 1000
    z0 = torch.randn(n, 2, dtype=torch.float64)
    z1 = torch.randn(n, 2, dtype=torch.float64)

    start = time.perf_counter()
    result = connecting_geodesic(sphere, z0, z1)  # all n pairs: one optimisation
    seconds = time.perf_counter() - start

    curves = result.curve(torch.linspace(0, 1, 50, dtype=torch.float64))  # (n, 50, 2)
    error = (result.length - sphere.distance(z0, z1)).abs().max()
    print(f"{n} geodesics in {seconds:.1f} s; curves {tuple(curves.shape)}")
    print(f"converged {int(result.converged.sum())}/{n}; max |length - great circle| {error:.2e}")


if __name__ == "__main__":
    main()
