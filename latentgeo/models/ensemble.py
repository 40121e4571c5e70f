"""Ensembles of decoders (Syrota et al. 2024)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

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
            torch.stack([o.loc for o in outputs]), torch.stack([o.scale for o in outputs])
        )
    raise TypeError(
        f"EnsembleDecoder can stack Tensor, Normal and Independent(Normal) outputs, "
        f"got {type(first).__name__}"
    )


class EnsembleDecoder(nn.Module):
    """K decoders whose metric is the mean of the members' metrics.

    ``forward`` stacks the members' outputs on a new leading dimension of size K.
    :func:`latentgeo.metrics.as_metric` turns it into
    ``(1/K) Σ_k G_k(z)``.

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

    def member(self, k: int) -> Callable[[Tensor], Any]:
        """The k-th member decoder."""
        if not 0 <= k < len(self.members):
            raise IndexError(f"k must be in [0, {len(self.members)}), got {k}")
        return self.members[k]

    def sample_member(self, generator: torch.Generator | None = None) -> Callable[[Tensor], Any]:
        """One member drawn uniformly at random (reproducible with ``generator``)."""
        k = int(torch.randint(len(self.members), (1,), generator=generator).item())
        return self.members[k]
