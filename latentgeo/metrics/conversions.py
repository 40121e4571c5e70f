"""Conversions that copy: a metric's ``.to()``, ``.double()``, ... never change the user's module.

``nn.Module.to`` converts a module in place, and a metric holds the user's decoder:
converting the metric that way would convert the decoder behind the user's back.
:class:`CopyingConversions` gives a module the conversions of ``nn.Module`` that
return a converted deep copy instead; :class:`~latentgeo.metrics.Metric` has them.
A submodule that cannot be copied faithfully (a plain function closing over modules)
says why through a ``conversion_problem()`` method, and the conversion refuses.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from typing_extensions import Self

__all__ = ["CopyingConversions"]


class CopyingConversions(nn.Module):
    """``nn.Module``'s conversions, each returning a converted deep copy (see :meth:`to`)."""

    def _converted(self, method: str, *args: Any, **kwargs: Any) -> Self:
        """A deep copy of the metric (decoders included), converted by ``nn.Module.<method>``."""
        for module in self.modules():
            problem = getattr(module, "conversion_problem", None)
            reason = problem() if callable(problem) else None
            if reason is not None:
                raise TypeError(f"cannot convert this metric with .{method}(): {reason}")
        clone = copy.deepcopy(self)
        getattr(nn.Module, method)(clone, *args, **kwargs)
        return clone

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """A copy of the metric on another device or dtype; **the metric itself is unchanged**.

        Unlike ``nn.Module.to``, which converts a module in place, this returns a new
        metric over a deep copy of the decoder (latentgeo never changes a user's
        module): write ``metric = metric.to(torch.float64)``. The same holds for
        ``double``, ``float``, ``half``, ``bfloat16``, ``cuda``, ``cpu`` and ``type``.
        A decoder given as a plain function that calls modules cannot be copied
        with them: convert the modules and build a new metric.

        Example:
            >>> import torch
            >>> net = torch.nn.Linear(2, 3)
            >>> from latentgeo.metrics import as_metric
            >>> g = as_metric(net).to(torch.float64)
            >>> net.weight.dtype, g.metric_tensor(torch.zeros(2, dtype=torch.float64)).dtype
            (torch.float32, torch.float64)
        """
        return self._converted("to", *args, **kwargs)

    def double(self) -> Self:
        """A float64 copy (see :meth:`to`)."""
        return self._converted("double")

    def float(self) -> Self:
        """A float32 copy (see :meth:`to`)."""
        return self._converted("float")

    def half(self) -> Self:
        """A float16 copy (see :meth:`to`)."""
        return self._converted("half")

    def bfloat16(self) -> Self:
        """A bfloat16 copy (see :meth:`to`)."""
        return self._converted("bfloat16")

    def cuda(self, device: int | torch.device | None = None) -> Self:
        """A copy on a CUDA device (see :meth:`to`)."""
        return self._converted("cuda", device)

    def cpu(self) -> Self:
        """A copy on the CPU (see :meth:`to`)."""
        return self._converted("cpu")

    def type(self, dst_type: torch.dtype | str) -> Self:
        """A copy of another dtype (see :meth:`to`)."""
        return self._converted("type", dst_type)
