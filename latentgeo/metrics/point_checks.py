"""How a metric checks the points its public methods are given, before any decoder runs.

:class:`PointChecks` gives :class:`~latentgeo.metrics.Metric` its input checks: a
finite floating tensor ``(..., d)`` of the metric's latent dimension, that the
metric's modules can take (:meth:`PointChecks.check_like`: their dtype and device,
which metrics holding modules override), and tangent vectors at those points. An
entry point refuses bad input at once, naming the argument, rather than failing
deep inside a traced layer.
"""

from __future__ import annotations

import re

from torch import Tensor

from latentgeo._validation import check_points, check_tangent

__all__ = ["PointChecks"]


class PointChecks:
    """The input checks of a metric of latent dimension :attr:`latent_dim`.

    Attributes:
        latent_dim: ``d`` if it is known in advance, else ``None`` (then any
            last dimension is accepted).
    """

    latent_dim: int | None = None

    def validated_points(self, z: object, name: str = "z") -> Tensor:
        """``z`` checked as points of this metric, as its public methods check theirs: a
        finite floating tensor ``(..., d)`` (``d`` the metric's ``latent_dim`` if known)
        that its modules can take (:meth:`check_like`: their dtype and device, and their
        layers still in evaluation mode), so that an entry point refuses bad input before
        any decoder runs, naming the argument.

        Args:
            z: the points.
            name: the argument's name, for errors.

        Example:
            >>> import torch
            >>> from latentgeo.testing import PoincareDisk
            >>> PoincareDisk().validated_points(torch.tensor([[0.1, float("nan")]]), "z0")
            Traceback (most recent call last):
            ...
            ValueError: z0 contains NaN or Inf values
        """
        points = check_points(z, name, dim=self.latent_dim)
        try:
            self.check_like(points)
        except TypeError as err:  # its messages call the points z: name the argument
            if name == "z" or not str(err).startswith("z "):
                raise
            raise TypeError(re.sub(r"\bz\b", name, str(err))) from None
        return points

    def _validated(self, z: Tensor, **tangents: Tensor) -> list[Tensor]:
        """The public methods' one check of their input: ``[z, *tangents]``, ``z`` checked
        as points of this metric (``(..., d)``), then each tangent at them, named in errors
        by its keyword.

        Raises:
            TypeError: an input is not a floating tensor, a tangent's dtype is not ``z``'s,
                or ``z``'s is not the metric's modules' (:meth:`check_like`).
            ValueError: a shape does not fit, a value is NaN/Inf, or devices differ.
        """
        z = check_points(z, "z", dim=self.latent_dim)
        self.check_like(z)
        return [z, *(check_tangent(z, v, name) for name, v in tangents.items())]

    def check_like(self, z: Tensor) -> None:
        """Raise a clear error where points ``z`` cannot meet the metric's modules: another
        dtype or device than their parameters (entry points call it once, so that the error
        names the argument rather than coming from deep inside a traced layer).

        Raises:
            TypeError: naming both dtypes or devices and how to convert one.
        """
        del z
