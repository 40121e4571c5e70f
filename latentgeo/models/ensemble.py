"""Ensembles of decoders (Syrota et al. 2024)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Independent, Normal

from latentgeo.models.config import from_spec, register_model, to_spec
from latentgeo.models.nets import MLP

__all__ = ["EnsembleDecoder"]


def _stack_outputs(outputs: list[Any]) -> Any:
    first = outputs[0]
    if isinstance(first, Tensor):
        return torch.stack(outputs)
    if isinstance(first, Independent):
        base = _stack_outputs([o.base_dist for o in outputs])
        return Independent(base, first.reinterpreted_batch_ndims)
    if isinstance(first, Normal):
        return Normal(
            torch.stack([o.loc for o in outputs]),
            torch.stack([o.scale for o in outputs]),
            validate_args=False,
        )
    if isinstance(first, Bernoulli):
        return Bernoulli(logits=torch.stack([o.logits for o in outputs]), validate_args=False)
    raise TypeError(
        f"EnsembleDecoder can stack Tensor, Normal, Independent(Normal) and Bernoulli outputs, "
        f"got {type(first).__name__}"
    )


@register_model
class EnsembleDecoder(nn.Module):
    """K decoders whose metric is the mean of the members' metrics.

    ``forward`` stacks the members' outputs on a new leading dimension of size K.
    :func:`latentgeo.metrics.as_metric` turns it into
    ``(1/K) Σ_k G_k(z)``.

    In a :class:`~latentgeo.models.VAE` the K members share one encoder;
    :func:`~latentgeo.models.fit` trains them in the ``"partition"`` or
    ``"random_member"`` mode (Syrota et al. 2024). Members may be
    deterministic (Tensor outputs) or stochastic (Gaussian, Bernoulli), but
    all of one kind. An ensemble of registered models (e.g. MLPs) can be
    saved with :func:`~latentgeo.models.save`.

    Args:
        members: the K decoders (modules, or plain callables).

    Example:
        >>> import torch
        >>> ens = EnsembleDecoder([torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)])
        >>> ens(torch.zeros(5, 2)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, members: Sequence[Callable[[Tensor], Any]]) -> None:
        super().__init__()
        members = list(members)
        if len(members) == 0:
            raise ValueError("members must hold at least one decoder, got none")
        for i, m in enumerate(members):
            if not callable(m):
                raise TypeError(f"members[{i}] must be callable, got {type(m).__name__}")
        self.members: Sequence[Callable[[Tensor], Any]]
        modules = [m for m in members if isinstance(m, nn.Module)]
        if len(modules) == len(members):
            self.members = cast(Sequence[Callable[[Tensor], Any]], nn.ModuleList(modules))
        else:
            self.members = members

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Callable[[Tensor], Any]]:
        return iter(self.members)

    def forward(self, z: Tensor) -> Any:
        """Every member's output at ``z``, stacked on a new leading dimension ``(K, ...)``."""
        return _stack_outputs([m(z) for m in self.members])

    @property
    def num_members(self) -> int:
        """K, the number of members."""
        return len(self.members)

    def forward_member(self, z: Tensor, k: int) -> Any:
        """The k-th member's output at ``z`` (no stacking)."""
        return self.member(k)(z)

    def forward_stacked(self, z: Tensor) -> Any:
        """Member k at its own points ``z[k]``: ``(K, n, d)`` -> outputs ``(K, n, ...)``.

        This is how training evaluates an ensemble on a partitioned batch. When
        every member is an :class:`MLP` of one architecture, the K networks
        run as one batched matrix product per layer instead of K passes.

        Example:
            >>> import torch
            >>> ens = EnsembleDecoder([MLP(2, 3, hidden=(4,)) for _ in range(2)])
            >>> z = torch.randn(2, 5, 2)
            >>> torch.allclose(ens.forward_stacked(z)[1], ens.member(1)(z[1]))
            True
        """
        if z.ndim != 3 or z.shape[0] != len(self.members):
            raise ValueError(
                f"z must have shape (K={len(self.members)}, n, d), got {tuple(z.shape)}"
            )
        members = list(self.members)
        first = members[0]
        if isinstance(first, MLP) and all(
            type(m) is MLP and m.config() == first.config() for m in members
        ):
            h = z
            for i, layer in enumerate(first.net):
                if isinstance(layer, nn.Linear):
                    w = torch.stack([m.net[i].weight for m in members])  # type: ignore[attr-defined]
                    b = torch.stack([m.net[i].bias for m in members])  # type: ignore[attr-defined]
                    h = torch.baddbmm(b.unsqueeze(1), h, w.mT)
                else:
                    h = layer(h)
            return h
        return _stack_outputs([m(z[k]) for k, m in enumerate(members)])

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        return {"members": [to_spec(m) for m in self.members]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EnsembleDecoder:
        """Rebuild from :meth:`config` (fresh weights)."""
        return cls([from_spec(spec) for spec in config["members"]])

    def member(self, k: int) -> Callable[[Tensor], Any]:
        """The k-th member decoder."""
        if not 0 <= k < len(self.members):
            raise IndexError(f"k must be in [0, {len(self.members)}), got {k}")
        return self.members[k]

    def sample_member(self, generator: torch.Generator | None = None) -> Callable[[Tensor], Any]:
        """One member drawn uniformly at random (reproducible with ``generator``)."""
        k = int(torch.randint(len(self.members), (1,), generator=generator).item())
        return self.members[k]
