"""The log map's honesty next to conjugate points: is every ``converged`` velocity within
its tolerance?

Not a test. On the stereographic sphere ``S^d``, 16 pairs 2.3 … 3.0 apart (π is the
conjugate point, where the exponential map's Jacobian is singular), the log map
starts from the exact answer moved ``off`` (relative) in a random direction, for a
few seeds, at a loose tolerance, and is compared with the closed form
(:meth:`latentgeo.testing.StereographicSphere.log`). Per start offset it prints the
worst error of a converged velocity in units of its tolerance (≤ 1 is honest), how
many converged, and the exponential maps per pair. ``docs/concepts.md`` quotes its
float32 run.

Usage::

    python benchmarks/logmap_conjugate.py                    # float32, rtol 1e-2 (~8 min)
    python benchmarks/logmap_conjugate.py --dtype float64 --rtol 1e-3
"""

from __future__ import annotations

import argparse

import torch

from latentgeo.solvers import log_map_result
from latentgeo.testing import StereographicSphere, near_conjugate_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--rtol", type=float, default=1e-2)
    parser.add_argument("--dim", type=int, default=2, help="latent dimension d")
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    sphere = StereographicSphere().to(dtype)
    z0, z1 = near_conjugate_pairs(args.dim)
    exact = StereographicSphere().log(z0, z1)
    size = exact.norm(dim=-1)
    print(f"sphere S^{args.dim}, {len(z0)} pairs 2.3-3.0 apart, {args.dtype}, rtol {args.rtol}")
    for off in args.offsets:
        worst, converged, total, maps = 0.0, 0, 0, 0
        for seed in args.seeds:
            gen = torch.Generator().manual_seed(seed)
            u = torch.randn(exact.shape, generator=gen, dtype=torch.float64)
            init = exact + off * size[:, None] * u / u.norm(dim=-1, keepdim=True)
            info = log_map_result(
                sphere, z0.to(dtype), z1.to(dtype), init=init.to(dtype), rtol=args.rtol, atol=0.0
            )
            err = (info.velocity.double() - exact).norm(dim=-1) / (args.rtol * size)
            if bool(info.converged.any()):
                worst = max(worst, float(err[info.converged].max()))
            converged += int(info.converged.sum())
            total, maps = total + len(z0), maps + int(info.exp_maps.sum())
        print(
            f"start {off:.0%} off, seeds {args.seeds}: converged {converged}/{total}, worst "
            f"converged error {worst:.3f} of the tolerance, {maps / total:.1f} exp maps per pair",
            flush=True,
        )


if __name__ == "__main__":
    main()
