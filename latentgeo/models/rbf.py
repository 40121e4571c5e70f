"""The RBF-precision scale of Arvanitidis, Hansen & Hauberg (2018, "Latent Space Oddity").

The decoder's precision (inverse variance) is a positive combination of
Gaussian bumps around the training codes plus a floor:

    β(z) = W v(z) + ζ,    v_k(z) = exp(−λ_k ‖z − c_k‖²),    W ≥ 0,    σ(z) = β(z)^(−1/2).

Near the data the bumps are large and σ matches the data's noise; far away
every bump vanishes, β → ζ and σ → ζ^(−1/2): the decoder admits it does not
know, and geodesics of the expected metric avoid the empty regions.

It is fitted in a second stage, with the decoder's mean frozen
(:func:`fit_rbf_precision`; for a VAE, :func:`latentgeo.models.calibrate_rbf`):

1. centres ``c_k`` by k-means on the latent codes (scikit-learn);
2. bandwidths from the clusters, by one of two rules (``a`` is the
   "curvature" hyper-parameter):

   * ``"mean_dist"`` (default; LSO and GenerativeLatentSpace):
     ``λ_k = ½ (a · mean_{z∈C_k} ‖z − c_k‖)⁻²``;
   * ``"mean_sq_dist"`` (the decoder-ensembling code):
     ``λ_k = ½ (a · mean_{z∈C_k} ‖z − c_k‖²)⁻²``;

3. ``W`` by maximum Gaussian likelihood of the data given the frozen mean.

Positivity of ``W`` is kept either by a softplus parametrisation
(``positivity="softplus"``, the ensembling code) or by projection onto
``W ≥ 0`` after every step (``"projection"``, LSO's projected gradient).
Internally ``W = w_scale ⊙ u`` with ``u = softplus(raw)`` (or ``u = raw``) and
a fixed per-output ``w_scale`` (the inverse residual variance), so that one
learning rate suits data of any scale.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from latentgeo.models.config import register_model

__all__ = ["BANDWIDTH_RULES", "RBFPrecision", "fit_rbf_precision"]

BANDWIDTH_RULES = ("mean_dist", "mean_sq_dist")
POSITIVITY = ("softplus", "projection")


def _inverse_softplus(y: Tensor) -> Tensor:
    y = y.clamp_min(1e-12)
    return y + torch.log(-torch.expm1(-y))


@register_model
class RBFPrecision(nn.Module):
    """``σ(z) = (W v(z) + ζ)^(−1/2)``: an RBF network for the precision of a Gaussian decoder.

    Use it as the ``scale`` of a :class:`~latentgeo.models.GaussianDecoder`.
    Until it is fitted (:func:`fit_rbf_precision`) ``W ≈ 0`` and ``σ ≈ ζ^(−1/2)``
    everywhere. ``forward`` is batch-separable with no data-dependent control
    flow, so the expected metric works under ``torch.func``.

    Args:
        latent_dim: ``d``.
        out_dim: ``D``, the decoder's output size.
        num_centres: ``K``, the number of RBF centres.
        zeta: the precision floor ``ζ > 0``; far from the data ``σ → ζ^(−1/2)``.
        bandwidth: ``"mean_dist"`` or ``"mean_sq_dist"`` (see the module docstring).
        a: the bandwidth's curvature hyper-parameter (larger: wider bumps).
        positivity: ``"softplus"`` or ``"projection"``.

    Example:
        >>> import torch
        >>> rbf = RBFPrecision(2, 3, num_centres=4, zeta=0.01)
        >>> rbf(torch.zeros(5, 2))  # not fitted yet: ζ^(-1/2) = 10
        tensor([[10., 10., 10.],
                [10., 10., 10.],
                [10., 10., 10.],
                [10., 10., 10.],
                [10., 10., 10.]], grad_fn=<RsqrtBackward0>)
    """

    centres: Tensor
    bandwidths: Tensor
    w_scale: Tensor

    def __init__(
        self,
        latent_dim: int,
        out_dim: int,
        num_centres: int = 10,
        *,
        zeta: float = 1e-2,
        bandwidth: str = "mean_dist",
        a: float = 1.0,
        positivity: str = "softplus",
    ) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(num_centres, bool) or not isinstance(num_centres, int) or num_centres < 1:
            raise ValueError(f"num_centres must be a positive int, got {num_centres!r}")
        if not (zeta > 0.0 and math.isfinite(zeta)):
            raise ValueError(f"zeta must be a finite positive number, got {zeta!r}")
        if not (a > 0.0 and math.isfinite(a)):
            raise ValueError(f"a must be a finite positive number, got {a!r}")
        if bandwidth not in BANDWIDTH_RULES:
            raise ValueError(f"bandwidth must be one of {BANDWIDTH_RULES}, got {bandwidth!r}")
        if positivity not in POSITIVITY:
            raise ValueError(f"positivity must be one of {POSITIVITY}, got {positivity!r}")
        self.latent_dim = latent_dim
        self.out_dim = out_dim
        self.num_centres = num_centres
        self.zeta = float(zeta)
        self.bandwidth = bandwidth
        self.a = float(a)
        self.positivity = positivity
        self.register_buffer("centres", torch.zeros(num_centres, latent_dim))
        self.register_buffer("bandwidths", torch.ones(num_centres))
        self.register_buffer("w_scale", torch.ones(out_dim))
        init = -30.0 if positivity == "softplus" else 0.0  # W ≈ 0: σ = ζ^(-1/2) until fitted
        self.raw_weight = nn.Parameter(torch.full((out_dim, num_centres), init))

    # ------------------------------------------------------------------ the map
    @property
    def weight(self) -> Tensor:
        """``W ≥ 0`` of shape ``(D, K)``."""
        raw = self.raw_weight
        u = nn.functional.softplus(raw) if self.positivity == "softplus" else raw
        return self.w_scale[:, None] * u

    def kernels(self, z: Tensor) -> Tensor:
        """``v(z)``: the K bumps at ``z`` of shape ``(..., d)``, shape ``(..., K)``."""
        sq = ((z.unsqueeze(-2) - self.centres) ** 2).sum(-1)
        return torch.exp(-self.bandwidths * sq)

    def precision(self, z: Tensor) -> Tensor:
        """``β(z) = W v(z) + ζ``, shape ``(..., D)``."""
        return self.kernels(z) @ self.weight.mT + self.zeta

    def forward(self, z: Tensor) -> Tensor:
        """``σ(z) = β(z)^(−1/2)``, shape ``(..., D)``."""
        return torch.rsqrt(self.precision(z))

    @torch.no_grad()
    def project_(self) -> None:
        """Project ``W`` onto ``W ≥ 0`` (a no-op for the softplus parametrisation)."""
        if self.positivity == "projection":
            self.raw_weight.clamp_(min=0.0)

    # ----------------------------------------------------------------- fitting
    @torch.no_grad()
    def fit_centres(self, z: Tensor, *, seed: int = 0, n_init: int = 10) -> Tensor:
        """Place the centres by k-means on codes ``z`` and set the bandwidths by the rule.

        Args:
            z: latent codes of shape ``(N, d)``, ``N ≥ num_centres``.
            seed: k-means random state.
            n_init: k-means restarts.

        Returns:
            The cluster index of every code, shape ``(N,)``.
        """
        from sklearn.cluster import KMeans

        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if z.shape[0] < self.num_centres:
            raise ValueError(
                f"k-means needs at least num_centres={self.num_centres} codes, got {z.shape[0]}"
            )
        zc = z.detach().to("cpu", torch.float64)
        km = KMeans(n_clusters=self.num_centres, n_init=n_init, random_state=seed)
        labels = torch.as_tensor(km.fit_predict(zc.numpy()), dtype=torch.long)
        centres = torch.as_tensor(km.cluster_centers_, dtype=torch.float64)
        dist = (zc - centres[labels]).norm(dim=-1)
        if self.bandwidth == "mean_sq_dist":
            dist = dist**2
        counts = torch.bincount(labels, minlength=self.num_centres).to(torch.float64)
        spread = torch.zeros(self.num_centres, dtype=torch.float64).index_add_(0, labels, dist)
        spread = spread / counts.clamp_min(1.0)
        good = spread > 0
        # singleton (or empty) clusters have no spread: borrow the median of the others
        fallback = spread[good].median() if bool(good.any()) else torch.tensor(1.0)
        spread = torch.where(good, spread, fallback)
        self.centres.copy_(centres)
        self.bandwidths.copy_(0.5 / (self.a * spread) ** 2)
        return labels.to(z.device)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        names = ("latent_dim", "out_dim", "num_centres", "zeta", "bandwidth", "a", "positivity")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RBFPrecision:
        """Rebuild from :meth:`config` (fresh, unfitted buffers and weights)."""
        return cls(**config)


def fit_rbf_precision(
    rbf: RBFPrecision,
    z: Tensor,
    mean: Tensor,
    x: Tensor,
    *,
    epochs: int = 300,
    lr: float = 0.05,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Fit an :class:`RBFPrecision` to data given the frozen decoder mean.

    Places the centres (k-means on ``z``), sets the bandwidths, then fits
    ``W`` by maximising ``Σ_n log N(x_n | mean_n, diag β(z_n)⁻¹)`` with Adam.
    Only ``W`` is trained. ``W`` starts from the clusters' inverse residual
    variances; the problem is convex in ``W``.

    Args:
        rbf: the precision network (modified in place).
        z: latent codes ``(N, d)`` (encoder means, or samples).
        mean: the decoder's mean at ``z``, ``(N, D)`` (any trailing shape; flattened).
        x: the data, same shape as ``mean``.
        epochs: passes over the data.
        lr: Adam's learning rate (on the scale-free parameter, see the module docstring).
        batch_size: mini-batch size (``None``: full batch).
        seed: seeds k-means and the mini-batch order.
        progress: show a tqdm progress bar.

    Returns:
        The mean negative log-likelihood per data point after every epoch
        (up to the constant ``D/2 · log 2π``).
    """
    n = z.shape[0]
    mean = mean.detach().reshape(n, -1)
    x = x.detach().reshape(n, -1)
    if mean.shape != x.shape or x.shape[1] != rbf.out_dim:
        raise ValueError(
            f"mean and x must both have shape (N, {rbf.out_dim}) with N={n}, got "
            f"{tuple(mean.shape)} and {tuple(x.shape)}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    labels = rbf.fit_centres(z, seed=seed)
    z = z.detach()
    resid2 = (x - mean) ** 2  # (N, D)
    with torch.no_grad():
        var = resid2.mean(0)
        floor = 1e-4 * float(var.mean()) + 1e-12
        rbf.w_scale.copy_(1.0 / (var + floor))
        # start from each cluster's local precision: W_jk = 1/var_jk - ζ  (≥ 0)
        counts = torch.bincount(labels, minlength=rbf.num_centres).clamp_min(1)
        local = torch.zeros(rbf.num_centres, x.shape[1], dtype=x.dtype, device=x.device)
        local = local.index_add_(0, labels, resid2) / counts[:, None]
        w0 = (1.0 / (local.mT + floor) - rbf.zeta).clamp_min(0.0) / rbf.w_scale[:, None]
        w0 = w0.to(rbf.raw_weight)
        rbf.raw_weight.copy_(_inverse_softplus(w0) if rbf.positivity == "softplus" else w0)

    params = [rbf.raw_weight]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")

    def nll(zb: Tensor, rb: Tensor) -> Tensor:
        beta = rbf.precision(zb)
        return (0.5 * (beta * rb - torch.log(beta))).sum(-1).mean()

    history: list[float] = []
    try:
        for _ in tqdm(range(epochs), desc="rbf", disable=not progress, leave=False):
            order = torch.randperm(n, generator=gen).to(z.device) if bs < n else None
            for start in range(0, n, bs):
                idx = order[start : start + bs] if order is not None else slice(None)
                loss = nll(z[idx], resid2[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rbf.project_()
            with torch.no_grad():
                history.append(float(nll(z, resid2)))
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
    return history
