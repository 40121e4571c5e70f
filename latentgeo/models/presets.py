"""Ready-made VAEs: the two models the papers compare, in one line each.

* :func:`make_ensemble_vae`: one Gaussian encoder, K deterministic MLP
  decoders (Syrota et al. 2024). Train with :func:`~latentgeo.models.fit`.
* :func:`make_rbf_vae`: one Gaussian encoder, a Gaussian decoder whose σ is
  an :class:`~latentgeo.models.RBFPrecision` (Arvanitidis et al. 2018).
  Train the mean with :func:`~latentgeo.models.fit`, then fit σ with
  :func:`~latentgeo.models.calibrate_rbf`.

Both use smooth (tanh) hidden layers, so the metrics and their derivatives
(Christoffel symbols) are smooth, and a constant observation noise
``obs_std`` while the means are trained. The defaults are sized for
low-dimensional toy data such as :func:`latentgeo.data.ring`; use wider
layers for images.

Tested recipe for the ring (1000 points, ``noise=0.05``, d = 2):
``fit(vae, x, epochs=60, batch_size=64, lr=3e-3)`` for either model (and
``calibrate_rbf(vae, x)`` for the RBF one). Both latent spaces come out as a
ring around a hole, the RBF precision puts a wall of high volume along the
ring's edges, and the ensemble's mean metric is largest inside the hole.
On one CPU core this takes about 10 s per model for K = 10 members (20
epochs already give the ring, in a few seconds); the first optimiser of a
process also pays a one-off import of a few seconds inside ``torch.optim``.

Example (the whole recipe on the ring, about ten seconds on one CPU core):
    >>> from latentgeo.data import ring
    >>> from latentgeo.models import fit, calibrate_rbf, make_ensemble_vae, make_rbf_vae
    >>> from latentgeo.metrics import as_metric
    >>> x, angle = ring(500, noise=0.05, seed=0)
    >>> ens = make_ensemble_vae(2, latent_dim=2, num_members=4, seed=0)
    >>> _ = fit(ens, x, epochs=5, batch_size=64, progress=False)
    >>> rbf = make_rbf_vae(2, latent_dim=2, num_centres=16, seed=0)
    >>> _ = fit(rbf, x, epochs=5, batch_size=64, progress=False)
    >>> _ = calibrate_rbf(rbf, x, progress=False)
    >>> z = ens.encode(x).mean[:3]
    >>> as_metric(ens.decoder).metric_tensor(z).shape, as_metric(rbf.decoder).metric_tensor(z).shape
    (torch.Size([3, 2, 2]), torch.Size([3, 2, 2]))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from latentgeo.models.decoders import GaussianDecoder
from latentgeo.models.encoders import GaussianEncoder
from latentgeo.models.ensemble import EnsembleDecoder
from latentgeo.models.nets import MLP
from latentgeo.models.rbf import RBFPrecision
from latentgeo.models.vae import VAE

__all__ = ["make_ensemble_vae", "make_rbf_vae"]


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed torch's RNG inside the block only (no-op for ``None``)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def make_ensemble_vae(
    data_dim: int,
    latent_dim: int = 2,
    *,
    num_members: int = 10,
    hidden: Sequence[int] = (64, 64),
    activation: str = "tanh",
    output_activation: str = "identity",
    beta: float = 1.0,
    obs_std: float = 0.1,
    seed: int | None = None,
) -> VAE:
    """A VAE with one :class:`GaussianEncoder` and an :class:`EnsembleDecoder` of MLPs.

    The members are deterministic MLPs ``d -> hidden -> data_dim``, each with
    its own random initialisation; the encoder mirrors them
    (``data_dim -> reversed(hidden) -> 2d``). Its metric,
    ``as_metric(vae.decoder)``, is the mean of the members' pull-backs.

    Args:
        data_dim: ``D`` (flattened data size).
        latent_dim: ``d``.
        num_members: ``K``.
        hidden: hidden widths of each decoder.
        activation: hidden activation.
        output_activation: the decoders' output activation (``"sigmoid"`` for data in [0, 1]).
        beta: KL weight.
        obs_std: observation noise of the Gaussian likelihood ``N(x | f_k(z), obs_std²)``;
            about the data's noise level (0.1 suits unit-scale toy data).
        seed: if given, the initial weights come from ``torch.manual_seed(seed)``
            without disturbing the global random state.

    Returns:
        An untrained :class:`VAE`; train it with :func:`~latentgeo.models.fit`.
    """
    with _seeded(seed):
        encoder = GaussianEncoder(
            data_dim, latent_dim, tuple(reversed(hidden)), activation=activation
        )
        members = [
            MLP(
                latent_dim,
                data_dim,
                hidden,
                activation=activation,
                output_activation=output_activation,
            )
            for _ in range(num_members)
        ]
    return VAE(encoder, EnsembleDecoder(members), beta=beta, obs_std=obs_std)


def make_rbf_vae(
    data_dim: int,
    latent_dim: int = 2,
    *,
    num_centres: int = 32,
    hidden: Sequence[int] = (64, 64),
    activation: str = "tanh",
    output_activation: str = "identity",
    zeta: float = 1e-2,
    a: float = 1.0,
    bandwidth: str = "mean_dist",
    positivity: str = "softplus",
    beta: float = 1.0,
    obs_std: float = 0.1,
    seed: int | None = None,
) -> VAE:
    """A VAE whose decoder is ``N(μ(z), σ(z)²)`` with an RBF-precision ``σ``.

    Train in two stages: :func:`~latentgeo.models.fit` trains the encoder and
    the mean with the constant noise ``obs_std``; then
    :func:`~latentgeo.models.calibrate_rbf` places ``num_centres`` RBF centres
    by k-means on the codes and fits ``σ`` (mean frozen). Far from the data
    ``σ → zeta^(−1/2)``.

    Args:
        data_dim: ``D``.
        latent_dim: ``d``.
        num_centres: ``K`` RBF centres.
        hidden: hidden widths of the mean network (the encoder mirrors them).
        activation: hidden activation.
        output_activation: the mean's output activation.
        zeta: precision floor (``σ`` far from the data is ``zeta^(−1/2)``; 1e-2 gives 10).
        a: bandwidth curvature parameter.
        bandwidth: ``"mean_dist"`` or ``"mean_sq_dist"``.
        positivity: ``"softplus"`` or ``"projection"``.
        beta: KL weight.
        obs_std: the constant observation noise of the first stage.
        seed: if given, seeds the initial weights (global random state untouched).

    Returns:
        An untrained :class:`VAE`.
    """
    with _seeded(seed):
        encoder = GaussianEncoder(
            data_dim, latent_dim, tuple(reversed(hidden)), activation=activation
        )
        mean = MLP(
            latent_dim, data_dim, hidden, activation=activation, output_activation=output_activation
        )
    scale = RBFPrecision(
        latent_dim,
        data_dim,
        num_centres,
        zeta=zeta,
        bandwidth=bandwidth,
        a=a,
        positivity=positivity,
    )
    return VAE(encoder, GaussianDecoder(mean, scale), beta=beta, obs_std=obs_std)
