"""Multi-layer perceptrons: the building block of latentgeo's encoders and decoders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from latentgeo.models.config import register_model

__all__ = ["ACTIVATIONS", "MLP"]

#: Activation names accepted by :class:`MLP`. Smooth ones (``tanh``,
#: ``softplus``, ``elu``...) give smooth metrics; ``relu`` gives a metric that
#: is piecewise constant, with zero Christoffel symbols almost everywhere.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def _activation(name: str, arg: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"{arg} must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def _check_dim(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@register_model
class MLP(nn.Module):
    """A fully connected network ``in_dim -> hidden... -> out_dim``.

    Rows are processed independently (batch-separable), and the forward pass
    has no data-dependent control flow, so it works under ``torch.func.jvp``
    and ``vmap`` (what the metrics need).

    Args:
        in_dim: input size.
        out_dim: output size.
        hidden: hidden layer widths (empty: a single affine map).
        activation: name of the hidden activation (see :data:`ACTIVATIONS`).
        output_activation: name of the activation after the last layer
            (``"identity"``: none; ``"sigmoid"`` for data in [0, 1];
            ``"softplus"`` for a positive output such as a scale).

    Example:
        >>> import torch
        >>> net = MLP(2, 5, hidden=(16, 16), activation="tanh")
        >>> net(torch.zeros(7, 2)).shape
        torch.Size([7, 5])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (64, 64),
        *,
        activation: str = "tanh",
        output_activation: str = "identity",
    ) -> None:
        super().__init__()
        self.in_dim = _check_dim(in_dim, "in_dim")
        self.out_dim = _check_dim(out_dim, "out_dim")
        self.hidden = [_check_dim(h, "hidden width") for h in hidden]
        self.activation = activation
        self.output_activation = output_activation
        widths = [self.in_dim, *self.hidden, self.out_dim]
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            last = i == len(widths) - 2
            act = _activation(
                output_activation if last else activation,
                "output_activation" if last else "activation",
            )
            if not isinstance(act, nn.Identity):
                layers.append(act)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(..., in_dim)`` to ``(..., out_dim)``."""
        return self.net(x)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        return {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MLP:
        """Rebuild from :meth:`config` (fresh weights)."""
        return cls(**config)
