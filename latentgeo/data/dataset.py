"""The container every loader returns."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["LabeledData"]


class LabeledData(NamedTuple):
    """Data with labels: unpack as ``x, y = data`` or use ``data.x``, ``data.y``.

    Attributes:
        x: the data, ``(N, D)``.
        y: one label per row, ``(N,)``: a class (``int64``) or a position along
            the generating curve (floating, e.g. the angle on a ring).
    """

    x: Tensor
    y: Tensor
