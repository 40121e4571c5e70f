"""Checkpoints: a model's architecture, weights and a format version in one file.

A checkpoint is a ``torch.save`` file holding a plain dictionary::

    {"format": "latentgeo-checkpoint", "version": 1,
     "model": {"class": ..., "config": ...},     # see latentgeo.models.config
     "dtype": "float32", "state_dict": {...}, "latentgeo_version": "0.1.0"}

It is loaded with ``torch.load(..., weights_only=True)``, so loading never
runs code from the file. :func:`save` writes a temporary file next to the
destination and renames it into place, so an interrupted save leaves any
earlier checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentgeo._atomic import atomic_path
from latentgeo.models.config import from_spec, to_spec

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckpointError", "load", "save"]

FORMAT = "latentgeo-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable latentgeo checkpoint (corrupt, foreign or of an unknown version)."""


def _dtype_of(model: nn.Module) -> torch.dtype | None:
    for t in (*model.parameters(), *model.buffers()):
        if torch.is_floating_point(t):
            return t.dtype
    return None


def save(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` (architecture + weights) to ``path``, atomically.

    Args:
        model: a registered latentgeo model (``VAE``, a decoder, an encoder,
            an ``MLP``...) or any class decorated with
            :func:`~latentgeo.models.register_model`.
        path: the destination; parent folders are created.

    Returns:
        The path written.

    Raises:
        TypeError: the model (or one of its parts) cannot be described by a configuration.

    Example:
        >>> import tempfile, pathlib, torch
        >>> from latentgeo.models import MLP
        >>> net = MLP(2, 3, hidden=(8,))
        >>> path = save(net, pathlib.Path(tempfile.mkdtemp()) / "net.pt")
        >>> torch.equal(load(path)(torch.ones(1, 2)), net(torch.ones(1, 2)))
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    from latentgeo._version import __version__

    dtype = _dtype_of(model)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": to_spec(model),
        "dtype": None if dtype is None else str(dtype).removeprefix("torch."),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "latentgeo_version": __version__,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
    """Rebuild the model saved by :func:`save` at ``path``.

    Args:
        path: the checkpoint file.
        map_location: device to load the weights onto.

    Returns:
        The model, with the saved weights and dtype, on ``map_location``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is corrupt, not a latentgeo checkpoint, of an
            unknown format version, or its weights do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds for damaged files
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated file?): {err}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a latentgeo checkpoint (no '{FORMAT}' marker)")
    version = payload.get("version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this latentgeo reads version "
            f"{FORMAT_VERSION} (saved by latentgeo {payload.get('latentgeo_version', '?')})"
        )
    try:
        model = from_spec(payload["model"])
        if payload.get("dtype") is not None:
            model = model.to(getattr(torch, payload["dtype"]))
        model = model.to(map_location)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the saved model: {err}") from err
    return model
