"""Decoders and models whose latent geometry latentgeo measures, and how to train them.

* Networks: :class:`MLP`; :class:`GaussianEncoder`.
* Decoders: :class:`GaussianDecoder` (``Normal`` output; σ from a network, a
  constant or an :class:`RBFPrecision`), :class:`BernoulliDecoder`,
  :class:`EnsembleDecoder`; any ``nn.Module`` returning a Tensor is a
  deterministic decoder. Every one of them works with
  :func:`latentgeo.metrics.as_metric`.
* :class:`VAE` with ``encode``/``decode``/``elbo``/``sample``.
* Training: :func:`fit` (ensemble modes ``"partition"`` and
  ``"random_member"``), :func:`calibrate_rbf` / :func:`fit_rbf_precision`.
* Checkpoints: :func:`save` / :func:`load` (configuration scheme in
  :mod:`latentgeo.models.config`).
* Ready-made models: :func:`make_ensemble_vae`, :func:`make_rbf_vae`.

Example:
    >>> from latentgeo.data import ring
    >>> from latentgeo.models import fit, make_ensemble_vae
    >>> vae = make_ensemble_vae(2, num_members=3, hidden=(16,), seed=0)
    >>> history = fit(vae, ring(300, seed=0), epochs=2, progress=False)
    >>> len(history.train_loss)
    2
"""

from latentgeo.models import metric_embeddings  # noqa: F401  (registers the models' metrics)
from latentgeo.models.calibration import calibrate_rbf
from latentgeo.models.checkpoints import CheckpointError, load, save
from latentgeo.models.config import from_spec, register_model, to_spec
from latentgeo.models.decoders import BernoulliDecoder, GaussianDecoder
from latentgeo.models.encoders import GaussianEncoder
from latentgeo.models.ensemble import EnsembleDecoder
from latentgeo.models.nets import MLP
from latentgeo.models.presets import make_ensemble_vae, make_rbf_vae
from latentgeo.models.rbf import RBFPrecision, fit_rbf_precision
from latentgeo.models.training import History, fit
from latentgeo.models.vae import ENSEMBLE_MODES, VAE

__all__ = [
    "ENSEMBLE_MODES",
    "MLP",
    "VAE",
    "BernoulliDecoder",
    "CheckpointError",
    "EnsembleDecoder",
    "GaussianDecoder",
    "GaussianEncoder",
    "History",
    "RBFPrecision",
    "calibrate_rbf",
    "fit",
    "fit_rbf_precision",
    "from_spec",
    "load",
    "make_ensemble_vae",
    "make_rbf_vae",
    "register_model",
    "save",
    "to_spec",
]
