"""Pull-back metrics ``G(z) = J(z)ᵀ J(z)`` of a map ``embed: (..., d) -> (..., m)``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from latentgeo._validation import check_points, check_tangent
from latentgeo.metrics.base import Metric
from latentgeo.metrics.jacobians import chunks, forward_jacobian, jvp_flat, reverse_jacobian

__all__ = ["PullbackMetric"]


def _check_module_dtype(module: object, z: Tensor, name: str = "the decoder") -> None:
    """Raise a clear error when a module's floating parameters differ from ``z`` in dtype/device."""
    if not isinstance(module, nn.Module):
        return
    for p in module.parameters():
        if torch.is_floating_point(p):
            if p.dtype != z.dtype:
                raise TypeError(
                    f"z has dtype {z.dtype} but {name}'s parameters are {p.dtype}; convert one "
                    f"of them (e.g. metric.to({z.dtype}) or z.to({p.dtype}))"
                )
            if p.device != z.device:
                raise ValueError(
                    f"z is on {z.device} but {name}'s parameters are on {p.device}; move one "
                    f"of them (e.g. metric.to(z.device))"
                )
            return


class PullbackMetric(Metric):
    """The pull-back ``G(z) = J(z)ᵀ J(z)`` of the Euclidean metric through ``embed``.

    ``squared_norm`` is one forward-mode product, ``‖J v‖²``, never a
    Jacobian; ``metric_tensor`` builds ``J`` by forward mode (reverse mode when
    the output is narrower than the latent space), in chunks of at most
    ``chunk_size`` points to bound memory.

    ``embed`` must treat the rows of its input independently (any decoder in
    eval mode does). Its output may have any trailing shape (``(N, m)``,
    ``(N, 1, 28, 28)``...): it is flattened to ``(N, m)``.

    Args:
        embed: the map, a module or function taking ``(N, d)``.
        chunk_size: at most this many points per Jacobian evaluation
            (``None``: all at once). For ``metric_tensor`` the memory is about
            ``chunk_size · d · m`` numbers.
        latent_dim: ``d``, if known (used to check inputs).

    Example:
        >>> import torch
        >>> a = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
        >>> g = PullbackMetric(lambda z: z @ a.T)
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[10.,  2.],
                [ 2.,  5.]])
        >>> g.squared_norm(torch.zeros(2), torch.tensor([1.0, 0.0]))
        tensor(10.)
    """

    def __init__(
        self,
        embed: Callable[[Tensor], Tensor],
        *,
        chunk_size: int | None = None,
        latent_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not callable(embed):
            raise TypeError(f"embed must be callable, got {type(embed).__name__}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.embed = embed
        self.chunk_size = chunk_size
        self.latent_dim = latent_dim
        self._out_dim: int | None = None

    # ------------------------------------------------------------------ helpers
    def _flat_embed(self, z: Tensor) -> Tensor:
        out = self.embed(z)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"embed must return a torch.Tensor, got {type(out).__name__}; use "
                "latentgeo.metrics.as_metric(decoder) for decoders returning distributions"
            )
        return out.reshape(z.shape[0], -1)

    def metric_tensor(self, z: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        _check_module_dtype(self.embed, z)
        return self._metric_tensor(z)

    def squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        v = check_tangent(z, v, "v")
        _check_module_dtype(self.embed, z)
        return self._squared_norm(z, v)

    def inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z = check_points(z, "z", dim=self.latent_dim)
        u = check_tangent(z, u, "u")
        v = check_tangent(z, v, "v")
        _check_module_dtype(self.embed, z)
        return self._inner(z, u, v)

    def jacobian(self, z: Tensor) -> Tensor:
        """The Jacobian of ``embed`` (output flattened).

        Args:
            z: points of shape ``(..., d)``.

        Returns:
            ``J`` of shape ``(..., m, d)``.
        """
        z = check_points(z, "z", dim=self.latent_dim)
        _check_module_dtype(self.embed, z)
        return self._jacobian(z)

    def _jacobian(self, z: Tensor) -> Tensor:
        batch, d = z.shape[:-1], z.shape[-1]
        flat = z.reshape(-1, d)
        parts = []
        for sl in chunks(flat.shape[0], self.chunk_size):
            zc = flat[sl]
            if self._out_dim is not None and self._out_dim < d:
                jac = reverse_jacobian(self._flat_embed, zc)
            else:
                jac = forward_jacobian(self._flat_embed, zc)
                self._out_dim = jac.shape[1]
            parts.append(jac)
        jac = torch.cat(parts, 0)
        return jac.reshape(*batch, jac.shape[1], d)

    # ------------------------------------------------------------ the protocol
    def _metric_tensor(self, z: Tensor) -> Tensor:
        jac = self._jacobian(z)
        return jac.mT @ jac

    def _squared_norm(self, z: Tensor, v: Tensor) -> Tensor:
        z, v = torch.broadcast_tensors(z, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, vf = z.reshape(-1, d), v.reshape(-1, d)
        parts = []
        for sl in chunks(zf.shape[0], self.chunk_size):
            _, jv = jvp_flat(self._flat_embed, zf[sl], vf[sl])
            parts.append((jv * jv).sum(-1))
        return torch.cat(parts, 0).reshape(batch)

    def _inner(self, z: Tensor, u: Tensor, v: Tensor) -> Tensor:
        z, u, v = torch.broadcast_tensors(z, u, v)
        batch, d = z.shape[:-1], z.shape[-1]
        zf, uf, vf = z.reshape(-1, d), u.reshape(-1, d), v.reshape(-1, d)
        parts = []
        for sl in chunks(zf.shape[0], self.chunk_size):
            ju = jvp_flat(self._flat_embed, zf[sl], uf[sl])[1]
            jv = jvp_flat(self._flat_embed, zf[sl], vf[sl])[1]
            parts.append((ju * jv).sum(-1))
        return torch.cat(parts, 0).reshape(batch)
