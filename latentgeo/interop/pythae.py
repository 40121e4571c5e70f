"""pythae models as metrics: ``as_metric(model)``, ``as_metric(model.decoder)``.

pythae (``pip install "latentgeo[pythae]"``) is never imported here: its models
are recognised by their classes' module (``pythae.…``), so that this module costs
nothing where pythae is not installed. What each object gives:

=================================  ==================================================
the object                         its metric
=================================  ==================================================
``model.decoder`` (any pythae      the pull-back of its ``reconstruction`` (picked
decoder)                           from the ``ModelOutput`` it returns): ``Jᵀ J``
a pythae model (``VAE``, ``AE``,   the decoder's metric under the likelihood it was
``BetaVAE``...)                    trained with: ``reconstruction_loss="mse"`` is a
                                   Gaussian with unit variance (``Jᵀ J``), ``"bce"`` a
                                   Bernoulli with ``probs = reconstruction``
                                   (Fisher–Rao)
a pythae ``RHVAE``                 its learned metric,
                                   :meth:`~latentgeo.metrics.RHVAEMetric.from_pythae`
``model.G`` / ``model.G_inv``      refused: they are the RHVAE's metric tensor and
                                   its inverse, not decoders
=================================  ==================================================

A decoder alone does not know the loss it was trained with: for a model trained
with ``"bce"``, use ``as_metric(model)`` (or ``as_metric(model.decoder,
output=lambda out: Bernoulli(probs=out.reconstruction))``).
"""

from __future__ import annotations

import abc
import types
from typing import Any

from torch.distributions import Bernoulli

from latentgeo.metrics import Metric, RHVAEMetric, as_metric
from latentgeo.metrics.dispatch import decoder_metric
from latentgeo.metrics.outputs import OutputSpec

__all__ = ["is_pythae_model", "pythae_metric"]


def _pythae_classes(cls: type) -> list[str]:
    return [c.__name__ for c in cls.__mro__ if c.__module__.startswith("pythae.")]


def is_pythae_model(obj: object) -> bool:
    """Whether ``obj`` is a pythae model (a subclass of pythae's ``BaseAE``).

    Example:
        >>> import torch
        >>> is_pythae_model(torch.nn.Linear(2, 3))
        False
    """
    return "BaseAE" in _pythae_classes(type(obj))


class _PythaeModel(abc.ABC):  # noqa: B024  (a virtual class: no abstract methods)
    """Every pythae model, as a virtual base class (for ``as_metric``'s dispatch)."""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        return "BaseAE" in _pythae_classes(other)


def _reconstruction_bernoulli(out: Any) -> Bernoulli:
    return Bernoulli(probs=out["reconstruction"])


def pythae_metric(
    model: Any, *, output: OutputSpec = None, latent_dim: int | None = None
) -> Metric:
    """The metric of a pythae model (what ``as_metric(model)`` returns).

    Args:
        model: a pythae model (``VAE``, ``AE``, ``RHVAE``...), in eval mode.
        output: overrides the likelihood: what to pick from the decoder's
            ``ModelOutput`` (see :func:`~latentgeo.metrics.as_metric`).
        latent_dim: checked against ``model.model_config.latent_dim``.

    Returns:
        An ``RHVAEMetric`` for an ``RHVAE`` (its learned metric, not a pull-back);
        otherwise the pull-back metric of ``model.decoder`` under the model's
        likelihood.

    Raises:
        ValueError: the model's ``reconstruction_loss`` has no likelihood here
            (pass ``output=``), or ``latent_dim`` disagrees with the model.
    """
    config = getattr(model, "model_config", None)
    expected = getattr(config, "latent_dim", None)
    if latent_dim is not None and expected is not None and latent_dim != expected:
        raise ValueError(
            f"the pythae model has latent dimension {expected}, got latent_dim={latent_dim}"
        )
    if "RHVAE" in _pythae_classes(type(model)) and output is None:
        return RHVAEMetric.from_pythae(model)
    if output is None:
        loss = getattr(config, "reconstruction_loss", "mse")
        if loss == "mse":
            output = "reconstruction"
        elif loss == "bce":
            output = _reconstruction_bernoulli
        else:
            raise ValueError(
                f"the pythae model was trained with reconstruction_loss={loss!r}, which has no "
                "likelihood in latentgeo; pass as_metric(model, output=...) picking a Tensor or "
                "distribution from the decoder's ModelOutput"
            )
    return decoder_metric(model.decoder, output=output, latent_dim=latent_dim or expected)


@as_metric.register(_PythaeModel)
def _(obj: Any, *, output: OutputSpec = None, latent_dim: int | None = None) -> Metric:
    return pythae_metric(obj, output=output, latent_dim=latent_dim)


def _pythae_metric_function(fn: object) -> str | None:
    """``"G"`` or ``"G_inv"`` if ``fn`` is a pythae RHVAE's metric function, else ``None``."""
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", "")
    if module.startswith("pythae.") and name in ("G", "G_inv"):
        return name
    return None


_FUNCTION_METRIC = as_metric.dispatch(types.FunctionType)


@as_metric.register(types.FunctionType)
def _(obj: Any, **options: Any) -> Metric:
    name = _pythae_metric_function(obj)
    if name is not None:
        what = "metric tensor G(z)" if name == "G" else "inverse metric tensor G(z)⁻¹"
        raise TypeError(
            f"model.{name} is the pythae RHVAE's {what}, not a decoder: its pull-back would be "
            "another metric. Use as_metric(model) or RHVAEMetric.from_pythae(model) for the "
            "RHVAE's learned metric"
        )
    return _FUNCTION_METRIC(obj, **options)
