"""Checkpoints: a model's architecture, weights, a format version and a checksum in one file.

A checkpoint is a ``torch.save`` file holding a plain dictionary::

    {"format": "latentgeo-checkpoint", "version": 2,
     "model": {"class": ..., "config": ...},     # see latentgeo.models.config
     "dtype": "float32", "state_dict": {...}, "latentgeo_version": "0.1.0",
     "sha256": "…"}                               # of everything above

``sha256`` is the SHA-256 of a canonical encoding of every other entry (the
tensors' dtypes, shapes and raw bytes, the configuration, the versions), so a
flipped bit anywhere that matters is caught on load. :func:`load` uses
``torch.load(..., weights_only=True)``, so loading never runs code from the
file, and raises :class:`CheckpointError` naming the file and what is wrong
(damaged or truncated, not a latentgeo checkpoint, a newer format, a checksum
mismatch, another kind of model than expected). Files of format version 1
(latentgeo 0.1.0 before checksums) still load, with a warning that they
cannot be verified. :func:`save` writes a temporary file next to the
destination and renames it into place, so an interrupted save leaves any
earlier checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentgeo._atomic import atomic_path
from latentgeo.exceptions import LatentgeoError, LatentgeoWarning, warn
from latentgeo.models.config import from_spec, to_spec

__all__ = ["FORMAT", "FORMAT_VERSION", "CheckpointError", "checksum", "load", "save"]

FORMAT = "latentgeo-checkpoint"
FORMAT_VERSION = 2
#: Versions :func:`load` reads (1: no checksum).
READABLE_VERSIONS = (1, 2)


class CheckpointError(LatentgeoError, ValueError):
    """A file is not a sound latentgeo checkpoint: damaged, foreign, of an unknown
    version, failing its checksum, or holding another kind of model than expected."""


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` to the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().reshape(-1).contiguous()
        h.update(f"T{obj.dtype!s}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for key in sorted(obj, key=str):
            _feed(h, key)
            _feed(h, obj[key])
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)}:".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, str):
        data = obj.encode()
        h.update(f"S{len(data)}:".encode() + data)
    elif obj is None or isinstance(obj, bool | int | float):
        h.update(f"J{json.dumps(obj)};".encode())
    else:
        raise TypeError(f"cannot checksum a {type(obj).__name__} in a checkpoint")


def checksum(payload: dict[str, Any]) -> str:
    """The SHA-256 (hex) of every entry of a checkpoint's dictionary but ``"sha256"``.

    Example:
        >>> a = checksum({"w": torch.zeros(2)})
        >>> a == checksum({"w": torch.zeros(2), "sha256": "x"}), a == checksum({"w": torch.ones(2)})
        (True, False)
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != "sha256"})
    return h.hexdigest()


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
    payload["sha256"] = checksum(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load(
    path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    expected: type[nn.Module] | None = None,
) -> Any:
    """Rebuild the model saved by :func:`save` at ``path``, after checking its checksum.

    Args:
        path: the checkpoint file.
        map_location: device to put the model on.
        expected: the class the model must be an instance of (e.g. ``VAE``);
            ``None``: any registered model.

    Returns:
        The model, with the saved weights and dtype, on ``map_location``, in evaluation
        mode (ready for its metric: Dropout off, BatchNorm on its running statistics;
        call ``.train()`` to train it further).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is damaged or truncated (unreadable, or its
            checksum does not match), not a latentgeo checkpoint, of an unknown
            format version, its weights do not fit its architecture, or the
            model is not an ``expected``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = _read(path)
    try:
        model = from_spec(payload["model"])
        if payload.get("dtype") is not None:
            model = model.to(getattr(torch, payload["dtype"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the saved model: {err}") from err
    if expected is not None and not isinstance(model, expected):
        raise CheckpointError(
            f"{path} holds a {type(model).__name__}, expected a {expected.__name__}"
        )
    return model.to(map_location).eval()


def _read(path: Path) -> dict[str, Any]:
    """The verified dictionary of the checkpoint at ``path`` (on the CPU)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for damaged files; re-raised with context
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (damaged or truncated file, or not written "
            f"by torch.save): {type(err).__name__}: {reason}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a latentgeo checkpoint (no '{FORMAT}' marker; latentgeo.models.load "
            "reads files written by latentgeo.models.save)"
        )
    version = payload.get("version")
    if version is None:
        raise CheckpointError(f"{path} is damaged: its format version is missing")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this latentgeo reads versions "
            f"{list(READABLE_VERSIONS)} (the file was saved by latentgeo "
            f"{payload.get('latentgeo_version', '?')}: upgrade latentgeo to read it)"
        )
    if version == 1:
        warn(
            LatentgeoWarning(
                f"{path} is a format-1 checkpoint without a checksum: it cannot be verified; "
                "save it again to add one"
            )
        )
        return payload
    stored = payload.get("sha256")
    if not isinstance(stored, str):
        raise CheckpointError(f"{path} is damaged: its checksum (sha256) is missing")
    try:
        actual = checksum(payload)
    except (TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} is damaged: {err}") from err
    if actual != stored:
        raise CheckpointError(
            f"{path} is damaged: the SHA-256 of its contents is {actual[:12]}…, "
            f"the file says {stored[:12]}… (a changed bit in the weights or settings)"
        )
    return payload
