"""Training a NeuralGeodesic by hand: an MLP curve whose energy you minimise.

``NeuralGeodesic`` (AutoEncoderToolkit.jl) is a curve ``t ↦ z`` given by an MLP,
corrected so its end points hold exactly. Any optimiser can train it: the
loss is the curve energy ``∫ γ̇ᵀ G(γ) γ̇ dt``. (``connecting_geodesic(...,
method="neural")`` does the same with a per-pair L-BFGS.)

    python examples/neural_geodesic.py
    python examples/neural_geodesic.py --quick
"""

from __future__ import annotations

import argparse

import torch

from latentgeo.curves import NeuralGeodesic, curve_energy, curve_length
from latentgeo.testing import StereographicSphere


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    sphere = StereographicSphere()
    z0 = torch.tensor([[1.0, 0.5], [-1.0, 1.0]], dtype=torch.float64)
    z1 = torch.tensor([[-0.5, 2.0], [1.0, 1.5]], dtype=torch.float64)
    curve = NeuralGeodesic(z0, z1, hidden=(16, 16)).double()

    optimiser = torch.optim.Adam(curve.parameters(), lr=1e-2)
    steps = 100 if args.quick else 1000
    for step in range(steps + 1):
        energy = curve_energy(sphere, curve, num_points=64)  # (B,)
        if step % (steps // 5) == 0:
            print(f"step {step:4d}: energy {energy.detach().tolist()}")
        optimiser.zero_grad()
        energy.sum().backward()  # pairs are independent: summing keeps their gradients apart
        optimiser.step()

    length = curve_length(sphere, curve).detach()
    exact = sphere.distance(z0, z1)
    print(f"length {length.tolist()} vs great circle {exact.tolist()}")


if __name__ == "__main__":
    main()
