"""Input checks shared by the public API.

Every public entry point validates its tensors once, with an error that names
the argument and says what was expected; hot inner loops then call the
unchecked private methods.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_alike", "check_finite", "check_points", "check_same_shape", "check_tangent"]


def check_points(z: object, name: str = "z", *, dim: int | None = None) -> Tensor:
    """Check that ``z`` is a finite floating tensor of shape ``(..., d)``.

    Args:
        z: the candidate points.
        name: the argument's name, used in error messages.
        dim: the expected last dimension ``d``, if known.

    Returns:
        ``z`` itself.

    Raises:
        TypeError: ``z`` is not a floating-point tensor.
        ValueError: ``z`` is 0-d, empty, has the wrong last dimension or holds NaN/Inf.
    """
    if not isinstance(z, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., d), got {type(z).__name__}")
    if not torch.is_floating_point(z):
        raise TypeError(f"{name} must have a floating dtype (float32 or float64), got {z.dtype}")
    if z.ndim == 0:
        raise ValueError(
            f"{name} must have shape (..., d) with at least one dimension, got a scalar"
        )
    if z.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(z.shape)}")
    if dim is not None and z.shape[-1] != dim:
        raise ValueError(
            f"{name} must have last dimension d={dim} (shape (..., {dim})), "
            f"got shape {tuple(z.shape)}"
        )
    return check_finite(z, name)


def check_finite(x: Tensor, name: str) -> Tensor:
    """``x`` itself; ``ValueError`` naming ``name`` if it holds NaN or Inf."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def check_tangent(z: Tensor, v: object, name: str = "v") -> Tensor:
    """Check that the tangent vectors ``v`` fit the base points ``z``.

    ``v`` must be a finite floating tensor with the same last dimension as
    ``z``, broadcastable against it, on the same device and of the same dtype.

    Raises:
        TypeError: ``v`` is not a floating tensor or has another dtype than ``z``.
        ValueError: shapes do not match, or ``v`` holds NaN/Inf, or lives on another device.
    """
    v = check_points(v, name, dim=z.shape[-1])
    try:
        torch.broadcast_shapes(z.shape, v.shape)
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(v.shape)} does not broadcast against the points "
            f"of shape {tuple(z.shape)}"
        ) from None
    check_alike(
        v,
        z,
        "{name} has dtype {x.dtype} but the points have dtype {like.dtype}",
        "{name} is on {x.device} but the points are on {like.device}",
        name=name,
    )
    return v


def check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape, dtype and device."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} "
            f"and {tuple(b.shape)}"
        )
    check_alike(
        a,
        b,
        "{a} and {b} must have the same dtype, got {x.dtype} and {like.dtype}",
        "{a} and {b} must be on the same device, got {x.device} and {like.device}",
        a=name_a,
        b=name_b,
    )


def check_alike(x: Tensor, like: Tensor, dtype_error: str, device_error: str, **names: str) -> None:
    """Raise ``TypeError`` when ``x`` has another dtype than ``like``, ``ValueError`` when
    it is on another device.

    The messages are :meth:`str.format` templates over ``x``, ``like`` and ``names``
    (``"{name} has dtype {x.dtype} but ..."``), formatted only when one is raised.
    """
    if x.dtype != like.dtype:
        raise TypeError(dtype_error.format(x=x, like=like, **names))
    if x.device != like.device:
        raise ValueError(device_error.format(x=x, like=like, **names))
