"""Neural-network curves (Chen et al. 2018; AutoEncoderToolkit.jl), batched over pairs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.curves.base import Curve, check_times

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

    def fit(self, t: Tensor, points: Tensor) -> Tensor:
        r"""Set the networks' weights, in place, so that the curves pass near ``points`` at ``t``.

        Least squares, ``min Σ_t ‖γ_b(t) − points_b(t)‖²`` for each curve, over the
        last layer for the hidden features as they are: a linear problem (the
        end-point correction is linear in it), solved by an SVD with singular values
        below ``√eps`` of the largest damped, so that the weights stay moderate. The
        hidden layers are not changed: how closely a curve can follow the points
        depends on them (the returned distance says it). No metric is evaluated: a
        start for the energy solver, e.g. from another solver's geodesic
        (``NeuralEnergy(init="spline")``). The ends stay where they are.

        Args:
            t: times in ``[0, 1]``, shape ``(T,)`` or ``(B, T)``, ``T >= 2``.
            points: the points to pass near, shape ``(B, T, d)``.

        Returns:
            The root-mean-square distance from each curve to its points, ``(B,)``.

        Example:
            >>> import torch
            >>> curve = NeuralGeodesic(torch.zeros(1, 2), torch.ones(1, 2), hidden=(8,))
            >>> t = torch.linspace(0, 1, 9)
            >>> arc = torch.stack([t, t + 0.2 * torch.sin(torch.pi * t)], -1)[None]
            >>> bool(curve.fit(t, arc) < 1e-3)
            True
        """
        times = self._batch_times(check_times(t, self.num_curves))
        if times.shape[1] < 2:
            raise ValueError(f"t must hold at least 2 times, got {tuple(t.shape)}")
        if points.shape != (*times.shape, self.dim):
            raise ValueError(
                f"points must have shape {(*times.shape, self.dim)}, got {tuple(points.shape)}"
            )
        target = points.detach().to(self.z0.dtype)
        with torch.no_grad():
            self._fit_last_layer(times, target, torch.finfo(target.dtype).eps ** 0.5)
            gap = self._evaluate(times, derivative=False)[0] - target
            return gap.square().sum(-1).mean(-1).sqrt()

    def _fit_last_layer(self, times: Tensor, target: Tensor, ridge: float) -> None:
        """The last layer's least-squares weights for the hidden features at ``times``,
        singular values below ``ridge`` times the largest damped (Tikhonov)."""
        ends = torch.stack([torch.zeros_like(times[:, 0]), torch.ones_like(times[:, 0])], 1)
        x, h = self._hidden(times), self._hidden(ends)  # h: at t = 0 and t = 1
        s = times[..., None]
        line = self.z0[:, None] + s * (self.z1 - self.z0)[:, None]
        # γ − line = W (h(t) − (1 − t) h(0) − t h(1)): the bias cancels
        features = x - (1.0 - s) * h[:, :1] - s * h[:, 1:]
        # by an SVD: rank-deficient features are common, and unlike lstsq's default
        # driver on the CPU its result does not depend on memory alignment
        u, sv, vh = torch.linalg.svd(features, full_matrices=False)
        damp = (ridge * sv[..., :1]) ** 2
        w = vh.mT @ ((sv / (sv * sv + damp))[..., None] * (u.mT @ (target - line)))
        self.weights[-1].copy_(w.mT)
        self.biases[-1].zero_()

    def _hidden(self, t: Tensor) -> Tensor:
        """The last hidden layer's features at ``t`` ``(B, T)`` -> ``(B, T, H)``."""
        x = t[..., None]
        for w, c in zip(list(self.weights)[:-1], list(self.biases)[:-1], strict=True):
            x = self.activation(torch.baddbmm(c[:, None], x, w.mT))
        return x

    def _mlp(self, t: Tensor) -> Tensor:
        """``g(t)`` for ``t`` of shape ``(B, T)`` -> ``(B, T, d)``."""
        return torch.baddbmm(self.biases[-1][:, None], self._hidden(t), self.weights[-1].mT)

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
