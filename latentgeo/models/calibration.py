"""The second training stage of an RBF-precision VAE: :func:`calibrate_rbf`."""

from __future__ import annotations

import torch

from latentgeo.models.decoders import GaussianDecoder
from latentgeo.models.rbf import RBFPrecision, fit_rbf_precision
from latentgeo.models.training import _param, as_data_tensor
from latentgeo.models.vae import VAE

__all__ = ["calibrate_rbf"]


def calibrate_rbf(
    vae: VAE,
    data: object,
    *,
    codes: str = "mean",
    epochs: int = 300,
    lr: float = 0.05,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Second stage of an RBF-precision VAE: fit σ with the mean network frozen.

    Encodes the data, places the RBF centres by k-means on the codes, sets the
    bandwidths and fits ``W`` by Gaussian likelihood
    (:func:`latentgeo.models.fit_rbf_precision`). Afterwards ``vae.obs_std``
    is set to ``None``, so the VAE's likelihood is the decoder's own
    ``N(μ(z), σ(z)²)``.

    Args:
        vae: a VAE whose decoder is a :class:`GaussianDecoder` with an
            :class:`RBFPrecision` scale (e.g. from :func:`~latentgeo.models.make_rbf_vae`).
        data: a tensor ``(N, ...)`` or an ``(x, y)`` pair.
        codes: ``"mean"`` (the encoder means: LSO, GenerativeLatentSpace) or
            ``"sample"`` (one draw from ``q(z | x)``: the decoder-ensembling code).
        epochs, lr, batch_size: the optimisation of ``W`` (``batch_size=None``: full batch).
        seed: seeds k-means, the batch order and the code sampling.
        progress: show a tqdm progress bar.

    Returns:
        The mean negative log-likelihood per data point after every epoch.

    Example:
        >>> from latentgeo.data import ring
        >>> from latentgeo.models import fit, make_rbf_vae
        >>> vae = make_rbf_vae(2, num_centres=8, hidden=(16,), seed=0)
        >>> data = ring(200, seed=0)
        >>> _ = fit(vae, data, epochs=2, progress=False)
        >>> nll = calibrate_rbf(vae, data, epochs=20, progress=False)
        >>> nll[-1] < nll[0], vae.obs_std is None
        (True, True)
    """
    dec = getattr(vae, "decoder", None)
    if not isinstance(dec, GaussianDecoder) or not isinstance(dec.scale, RBFPrecision):
        raise TypeError(
            "calibrate_rbf needs a VAE whose decoder is a GaussianDecoder with an RBFPrecision "
            f"scale, got decoder {type(dec).__name__}"
        )
    if codes not in ("mean", "sample"):
        raise ValueError(f"codes must be 'mean' or 'sample', got {codes!r}")
    p0 = _param(vae)
    x = as_data_tensor(data).to(device=p0.device, dtype=p0.dtype)
    with torch.no_grad():
        q = vae.encode(x)
        if codes == "mean":
            z = q.mean
        else:
            gen = torch.Generator(device=p0.device).manual_seed(seed)
            noise = torch.randn(q.mean.shape, generator=gen, dtype=p0.dtype, device=p0.device)
            z = q.mean + q.stddev * noise
        mean = dec.mean_net(z)
    history = fit_rbf_precision(
        dec.scale,
        z,
        mean,
        x,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    vae.obs_std = None
    return history
