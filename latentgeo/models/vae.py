"""Variational auto-encoders with any of latentgeo's decoders."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from latentgeo.models.config import from_spec, register_model, to_spec
from latentgeo.models.decoders import output_mean, output_sample
from latentgeo.models.ensemble import EnsembleDecoder

__all__ = ["ENSEMBLE_MODES", "VAE"]

#: How a mini-batch meets the members of an :class:`EnsembleDecoder` in training:
#: ``"partition"``: row ``i`` of the batch goes to member ``(i + r) mod K`` with a
#: random offset ``r``, so every member is updated at every step on about
#: ``B/K`` rows (what the decoder-ensembling code does);
#: ``"random_member"``: the whole batch goes to one member drawn uniformly (what
#: the paper's text says); ``"all"``: every member sees every row.
ENSEMBLE_MODES = ("partition", "random_member", "all")

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@register_model
class VAE(nn.Module):
    """A VAE ``p(z) = N(0, I)``, ``q(z | x)`` from ``encoder``, ``p(x | z)`` from ``decoder``.

    ELBO(x) = E_q[log p(x | z)] − β KL(q(z | x) ‖ p(z)), one reparameterised
    sample. The likelihood is what the decoder returns:

    * a ``Normal``/``Bernoulli`` (:class:`GaussianDecoder`, :class:`BernoulliDecoder`):
      its own ``log_prob``;
    * a Tensor (a deterministic decoder such as an :class:`MLP`): a Gaussian
      with standard deviation ``obs_std`` (1 when ``obs_std`` is None);
    * an :class:`EnsembleDecoder`: the members' log-likelihoods averaged (or
      one member per row / per batch in training, see :data:`ENSEMBLE_MODES`).

    A number ``obs_std`` overrides the decoder's own scale: the likelihood is
    then ``N(x | mean of the decoder, obs_std²)``. That is the "constant
    variance" first stage of an RBF-precision VAE, after which
    :func:`~latentgeo.models.calibrate_rbf` fits σ and resets ``obs_std`` to
    None. (The decoder-ensembling code's loss ``‖x − μ‖² + 0.05 KL`` is
    ``obs_std = 1/√2`` and ``beta = 0.05`` up to a constant.)

    Args:
        encoder: a module ``x -> Normal`` over ``(N, d)``, e.g. :class:`GaussianEncoder`.
        decoder: any decoder above.
        beta: weight of the KL term (β-VAE); must be positive.
        obs_std: ``None`` or a positive constant observation noise (see above).

    Example:
        >>> import torch
        >>> from latentgeo.models import MLP, GaussianEncoder
        >>> vae = VAE(GaussianEncoder(3, 2, hidden=(8,)), MLP(2, 3, hidden=(8,)), obs_std=0.1)
        >>> x = torch.randn(10, 3)
        >>> vae.elbo(x).shape, vae.sample(4).shape
        (torch.Size([10]), torch.Size([4, 3]))
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        *,
        beta: float = 1.0,
        obs_std: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise TypeError(
                f"encoder and decoder must be nn.Modules, got {type(encoder).__name__} and "
                f"{type(decoder).__name__}"
            )
        if not (isinstance(beta, (int, float)) and beta > 0 and math.isfinite(beta)):
            raise ValueError(f"beta must be a finite positive number, got {beta!r}")
        if obs_std is not None and not (obs_std > 0 and math.isfinite(obs_std)):
            raise ValueError(f"obs_std must be None or a finite positive number, got {obs_std!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.obs_std = None if obs_std is None else float(obs_std)

    # ------------------------------------------------------------------ basics
    @property
    def latent_dim(self) -> int:
        """``d``, taken from the encoder's ``latent_dim``."""
        d = getattr(self.encoder, "latent_dim", None)
        if d is None:
            raise AttributeError("the encoder has no latent_dim attribute; set encoder.latent_dim")
        return int(d)

    def encode(self, x: Tensor) -> Normal:
        """``q(z | x)``, a Normal of batch shape ``(N, d)``."""
        q: Normal = self.encoder(x)
        return q

    def decode(self, z: Tensor) -> Any:
        """``p(x | z)``: what the decoder returns (stacked ``(K, N, ...)`` for an ensemble)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction: the decoder's mean at the posterior mean (ensemble: members' mean)."""
        out = output_mean(self.decode(self.encode(x).mean))
        return out.mean(0) if isinstance(self.decoder, EnsembleDecoder) else out

    # -------------------------------------------------------------- likelihood
    def _log_lik(self, output: object, x: Tensor, batch_ndim: int = 1) -> Tensor:
        """Log-likelihood summed over the ``x.ndim - batch_ndim`` trailing (event) dimensions.

        ``output`` may carry extra leading dimensions (a stacked ensemble); they broadcast.
        A decoder with flat outputs ``(N, D)`` fits data of any shape ``(N, ...)``
        with ``D`` entries per row.
        """
        event_ndim = x.ndim - batch_ndim
        out_shape = (
            output.shape
            if isinstance(output, Tensor)
            else cast(Distribution, output).batch_shape + cast(Distribution, output).event_shape
        )
        if event_ndim > 1 and tuple(out_shape[-event_ndim:]) != tuple(x.shape[batch_ndim:]):
            x, event_ndim = x.flatten(batch_ndim), 1  # e.g. images (N, 1, 28, 28), flat decoder
        if self.obs_std is not None or isinstance(output, Tensor):
            std = 1.0 if self.obs_std is None else self.obs_std
            r = (x - output_mean(output)) / std
            lp = -0.5 * r * r - (_HALF_LOG_2PI + math.log(std))
        else:
            dist = output.base_dist if isinstance(output, Independent) else output
            lp = cast(Distribution, dist).log_prob(x)
        return lp.flatten(-event_ndim).sum(-1) if event_ndim > 0 else lp

    def log_likelihood(self, x: Tensor, z: Tensor, *, member: int | Tensor | None = None) -> Tensor:
        """``log p(x_n | z_n)`` per row, shape ``(N,)``.

        Args:
            x: data ``(N, ...)``.
            z: codes ``(N, d)``.
            member: for an ensemble decoder: ``None`` averages the members'
                log-likelihoods, an int uses that member, a long tensor of
                shape ``(N,)`` gives each row its member. Ignored otherwise.
        """
        dec = self.decoder
        if not isinstance(dec, EnsembleDecoder):
            return self._log_lik(dec(z), x)
        if member is None:
            k = len(dec)
            return self._log_lik(dec.forward_stacked(z.expand(k, *z.shape)), x).mean(0)
        if isinstance(member, int):
            return self._log_lik(dec.member(member)(z), x)
        if member.shape != (x.shape[0],):
            raise ValueError(f"member must have shape ({x.shape[0]},), got {tuple(member.shape)}")
        out = x.new_empty(x.shape[0])
        for k in range(len(dec)):
            rows = (member == k).nonzero().squeeze(-1)
            if rows.numel() > 0:
                out[rows] = self._log_lik(dec.member(k)(z[rows]), x[rows])
        return out

    def kl(self, q: Normal) -> Tensor:
        """``KL(q ‖ N(0, I))`` per row, shape ``(N,)``."""
        mu, std = q.mean, q.stddev
        return 0.5 * (mu * mu + std * std - 1.0 - 2.0 * torch.log(std)).sum(-1)

    def elbo(
        self,
        x: Tensor,
        *,
        generator: torch.Generator | None = None,
        member: int | Tensor | None = None,
    ) -> Tensor:
        """The evidence lower bound per data point, shape ``(N,)`` (one reparameterised sample).

        Args:
            x: data ``(N, ...)``.
            generator: for the reparameterisation noise (reproducible runs).
            member: which ensemble member(s) to use (see :meth:`log_likelihood`).
        """
        q = self.encode(x)
        mu, std = q.mean, q.stddev
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + std * eps
        return self.log_likelihood(x, z, member=member) - self.beta * self.kl(q)

    def training_loss(
        self,
        x: Tensor,
        *,
        generator: torch.Generator | None = None,
        ensemble_mode: str = "partition",
    ) -> Tensor:
        """Mean negative ELBO of a mini-batch, what :func:`~latentgeo.models.fit` minimises.

        Args:
            x: the mini-batch ``(B, ...)``.
            generator: for the noise and the member choice.
            ensemble_mode: one of :data:`ENSEMBLE_MODES` (ignored without an ensemble).
        """
        if ensemble_mode not in ENSEMBLE_MODES:
            raise ValueError(
                f"ensemble_mode must be one of {ENSEMBLE_MODES}, got {ensemble_mode!r}"
            )
        dec = self.decoder
        if not isinstance(dec, EnsembleDecoder) or ensemble_mode == "all":
            return -self.elbo(x, generator=generator).mean()
        k = len(dec)
        dev = generator.device if generator is not None else x.device
        r = int(torch.randint(k, (1,), generator=generator, device=dev).item())
        if ensemble_mode == "random_member":
            return -self.elbo(x, generator=generator, member=r).mean()
        # partition: row i goes to member (i + r) mod K, so member j gets rows
        # (j - r) mod K, + K, + 2K, ... (padded to equal counts, padding masked out)
        q = self.encode(x)
        mu, std = q.mean, q.stddev
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + std * eps
        n = x.shape[0]
        per = -(-n // k)
        first = (torch.arange(k, device=x.device) - r) % k
        idx = first[:, None] + k * torch.arange(per, device=x.device)  # (K, per)
        valid = idx < n
        idx = idx.clamp_max(n - 1)
        out = dec.forward_stacked(z[idx])
        ll = (self._log_lik(out, x[idx], batch_ndim=2) * valid).sum()
        return -(ll - self.beta * self.kl(q).sum()) / x.shape[0]

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(
        self, n: int, *, mean: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``n`` data points: ``z ~ N(0, I)``, then ``x ~ p(x | z)``.

        Args:
            n: how many.
            mean: return the decoder's mean instead of a draw.
            generator: for reproducible draws (on the model's device).

        Returns:
            ``(n, ...)``. With an ensemble, each row comes from a member drawn uniformly.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        if isinstance(self.decoder, EnsembleDecoder):
            ks = torch.randint(len(self.decoder), (n,), generator=generator, device=p.device)
            rows = []
            for k in range(len(self.decoder)):
                rows.append(self._draw(self.decoder.member(k)(z), mean, generator))
            stacked = torch.stack(rows)  # (K, n, ...)
            return stacked[ks, torch.arange(n, device=p.device)]
        return self._draw(self.decoder(z), mean, generator)

    def _draw(self, output: object, mean: bool, generator: torch.Generator | None) -> Tensor:
        if mean:
            return output_mean(output)
        if self.obs_std is not None or isinstance(output, Tensor):
            loc = output_mean(output)
            std = 1.0 if self.obs_std is None else self.obs_std
            noise = torch.randn(loc.shape, generator=generator, dtype=loc.dtype, device=loc.device)
            return loc + std * noise
        return output_sample(output, generator)

    # ------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """Constructor arguments (see :mod:`latentgeo.models.config`)."""
        return {
            "encoder": to_spec(self.encoder),
            "decoder": to_spec(self.decoder),
            "beta": self.beta,
            "obs_std": self.obs_std,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        """Rebuild from :meth:`config` (fresh weights)."""
        return cls(
            from_spec(config["encoder"]),
            from_spec(config["decoder"]),
            beta=config["beta"],
            obs_std=config["obs_std"],
        )
