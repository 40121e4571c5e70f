"""Neural-network curves (Chen et al. 2018; AutoEncoderToolkit.jl), batched over pairs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.curves.base import Curve

__all__ = ["NeuralGeodesic"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": nn.functional.softplus,
    "gelu": nn.functional.gelu,
    "sin": torch.sin,
}


class NeuralGeodesic(Curve):
    r"""B curves, each an MLP ``g_b : t ↦ R^d``, corrected so that the end points hold exactly.

    .. math:: γ_b(t) = z0_b + t\,(z1_b − z0_b) + g_b(t) − (1 − t)\, g_b(0) − t\, g_b(1)

    The correction is exact and never divides (AutoEncoderToolkit.jl rescales
    by ``g(0) − g(1)``, which is singular when the two coincide). All B MLPs
    are evaluated together with batched matrix products: the weights of layer
    ``l`` form one tensor of shape ``(B, out, in)``. The last layer starts at
    zero, so the curves start as straight lines at constant speed. Velocities
    are exact, by forward-mode differentiation in ``t`` (``torch.func.jvp``).

    Args:
        z0: start points, shape ``(B, d)``.
        z1: end points, shape ``(B, d)``.
        hidden: widths of the hidden layers.
        activation: ``"tanh"`` (default), ``"sigmoid"``, ``"softplus"``,
            ``"gelu"``, ``"sin"`` or a callable acting elementwise; bounded,
            smooth activations suit curves best.
        generator: random generator for the initial hidden weights.

    Example:
        >>> import torch
        >>> z0, z1 = torch.zeros(4, 2), torch.ones(4, 2)
        >>> curve = NeuralGeodesic(z0, z1, hidden=(16, 16))
        >>> curve(torch.tensor([0.0, 1.0]))[:, 1]  # end points exactly
        tensor([[1., 1.],
                [1., 1.],
                [1., 1.],
                [1., 1.]], grad_fn=<SelectBackward0>)
    """

    def __init__(
        self,
        z0: Tensor,
        z1: Tensor,
        hidden: Sequence[int] = (32, 32),
        activation: str | Callable[[Tensor], Tensor] = "tanh",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(z0, z1)
        widths = [int(h) for h in hidden]
        if not widths or any(h < 1 for h in widths):
            raise ValueError(
                f"hidden must be a non-empty sequence of positive ints, got {hidden!r}"
            )
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"activation must be one of {sorted(ACTIVATIONS)} or a callable, "
                    f"got {activation!r}"
                )
            self.activation = ACTIVATIONS[activation]
        elif callable(activation):
            self.activation = activation
        else:
            raise TypeError(f"activation must be a str or callable, got {type(activation)}")
        b, d = self.z0.shape
        sizes = [1, *widths, d]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = layer == len(sizes) - 2
            bound = 1.0 / math.sqrt(n_in)
            w = torch.rand(b, n_out, n_in, generator=generator, dtype=self.z0.dtype)
            c = torch.rand(b, n_out, generator=generator, dtype=self.z0.dtype)
            w, c = (2.0 * w - 1.0) * bound, (2.0 * c - 1.0) * bound
            if last:
                w, c = torch.zeros_like(w), torch.zeros_like(c)
            self.weights.append(nn.Parameter(w.to(self.z0.device)))
            self.biases.append(nn.Parameter(c.to(self.z0.device)))

    def breakpoints(self) -> Tensor:
        """Just ``[0, 1]``: the curve is smooth; shape ``(B, 2)``."""
        t = torch.tensor([0.0, 1.0], dtype=self.z0.dtype, device=self.z0.device)
        return t.expand(self.z0.shape[0], -1)

    def _mlp(self, t: Tensor) -> Tensor:
        """``g(t)`` for ``t`` of shape ``(B, T)`` -> ``(B, T, d)``."""
        x = t[..., None]
        last = len(self.weights) - 1
        for layer, (w, c) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(c[:, None], x, w.mT)
            if layer < last:
                x = self.activation(x)
        return x

    def _evaluate(self, t: Tensor, *, derivative: bool) -> tuple[Tensor, Tensor | None]:
        ends = self._mlp(torch.stack([torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])], 1))
        g0, g1 = ends[:, :1], ends[:, 1:]
        line = (self.z1 - self.z0)[:, None]
        s = t[..., None]
        if derivative:
            t = t.contiguous()
            out = jvp(self._mlp, (t,), (torch.ones_like(t),))
            g, dg = out[0], out[1]
            vel = line + dg + g0 - g1
        else:
            g, vel = self._mlp(t), None
        pos = self.z0[:, None] + s * line + g - (1.0 - s) * g0 - s * g1
        return pos, vel
