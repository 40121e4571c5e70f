"""Batched Jacobian-vector products and Jacobians of maps ``(N, d) -> (N, m)``.

Decoders are tall (``m ≫ d``), so everything here is forward mode: a single
``torch.func.jvp`` gives ``J v`` for a whole batch at the cost of about two
forward passes, and the full Jacobian is ``d`` such products with the tangents
batched by ``torch.func.vmap`` (the primal pass is shared). Where ``vmap``
cannot trace a module, the batch is replicated ``d`` times instead, which
works with any module. Reverse mode is used only for narrow maps (``m < d``).

Every map ``f`` here must be *batch-separable*: row ``n`` of ``f(z)`` depends
only on row ``n`` of ``z`` (true for decoders in eval mode).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.func import jvp, vjp, vmap

from latentgeo.exceptions import callable_owner, warn_slower_path
from latentgeo.metrics.forward.errors import is_out_of_memory

__all__ = [
    "chunks",
    "forward_jacobian",
    "nested_forward_mode",
    "push_tangents",
    "reverse_jacobian",
]

FlatMap = Callable[[Tensor], Tensor]
F = TypeVar("F", bound=Callable[..., Any])


def nested_forward_mode(fn: F) -> F:
    """Run ``fn``, which nests forward-mode products (a JVP of a JVP), even through activations
    whose second-order forward rule PyTorch has only with gradients on.

    Under ``torch.no_grad`` PyTorch (2.13) raises ``NotImplementedError`` for a ``jvp`` of a
    ``jvp`` through ``silu`` or ``mish`` (``aten::silu_backward`` has no forward rule),
    while with gradient mode the same call works. So where gradients are off (the solvers'
    integrators, a user's block), ``fn`` runs as it is, and where it meets such an operation
    it runs again with gradients on, from then on every time for the same owner (the first
    argument, or the decoder a metric was made from: the rule is the decoder's; a failed try
    costs a pass; a ``PerformanceWarning`` says so once per owner). Its tensors are then
    returned as copies made without gradients, so that no graph outlives the call
    (``detach`` would also drop the tangents of a ``torch.func.jvp`` around the call: a
    LAND's volume is one). The results are the same either way; with gradients on, the
    decoder's parameters record a graph while the call lasts (a scalar curvature of an MLP
    decoder 50 → 784: 0.88 → 1.34 GB peak).
    """
    needs_grad: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    def owner(args: tuple[Any, ...]) -> Any:
        first = args[0] if args else None
        first = callable_owner(first)  # a bound method: its object
        shared = getattr(first, "footprint_owner", None)  # a metric: its decoder, if any
        return shared()[0] if callable(shared) else first

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled():
            return fn(*args, **kwargs)
        who = owner(args)
        try:
            known = needs_grad.get(who, False)
        except TypeError:  # not weakly referable: decided call by call
            known = False
        reason = None
        if not known:
            try:
                return fn(*args, **kwargs)
            except NotImplementedError as err:
                if "forward AD" not in str(err):
                    raise
                reason = str(err).split(" that ")[0]
        with torch.enable_grad():
            out = fn(*args, **kwargs)
        if reason is not None:  # the first time for this owner: say so, once
            with contextlib.suppress(TypeError):
                needs_grad[who] = True
            warn_slower_path(who,
                f"its second-order forward products run with gradients on (PyTorch: "
                f"{reason!r} has no rule without them), recording a graph of the decoder's "
                "parameters while each call lasts (more memory)"
            )  # fmt: skip
        with torch.no_grad():
            return _copies(out)

    return wrapper  # type: ignore[return-value]


def _copies(out: Any) -> Any:
    """Tensors, and tensors in (named) tuples, copied (under ``no_grad``: without a graph)."""
    if isinstance(out, Tensor):
        return out.clone()
    if isinstance(out, tuple):
        items = [_copies(x) for x in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return out


def chunks(n: int, chunk_size: int | None) -> Iterator[slice]:
    """Slices ``[start, stop)`` covering ``range(n)`` in pieces of at most ``chunk_size``."""
    step = n if chunk_size is None or chunk_size <= 0 else chunk_size
    step = max(step, 1)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def push_tangents(f: FlatMap, z: Tensor, tangents: Tensor) -> Tensor:
    """``J_f(z) T`` for K tangents at once: ``z (N, d)``, ``tangents (K, N, d)`` -> ``(K, N, m)``.

    The primal pass is shared (``vmap`` over the tangents of one ``jvp``); where
    ``vmap`` cannot trace ``f``, the batch is replicated K times instead.
    """
    k, n, d = tangents.shape
    if k == 1:
        return jvp(f, (z,), (tangents[0],))[1].unsqueeze(0)

    def push(t: Tensor) -> Tensor:
        return jvp(f, (z,), (t,))[1]

    try:
        return vmap(push)(tangents)
    except (RuntimeError, NotImplementedError, ValueError) as err:
        # vmap could not trace this map (data-dependent control flow, an in-place write,
        # an unsupported op...): replicate the batch K times instead. Out of memory is not
        # "cannot trace": it propagates.
        if is_out_of_memory(err):
            raise
        warn_slower_path(f, "torch.func.vmap cannot batch it; its batch is replicated instead")
        z_rep = z.unsqueeze(0).expand(k, n, d).reshape(k * n, d)
        return jvp(f, (z_rep,), (tangents.reshape(k * n, d),))[1].reshape(k, n, -1)


def forward_jacobian(f: FlatMap, z: Tensor) -> Tensor:
    """Jacobians of a batch-separable map by forward mode.

    Args:
        f: map from ``(N, d)`` to ``(N, m)``.
        z: points of shape ``(N, d)``.

    Returns:
        ``J`` of shape ``(N, m, d)`` with ``J[n] = ∂f(z)[n] / ∂z[n]``.
    """
    n, d = z.shape
    basis = torch.eye(d, dtype=z.dtype, device=z.device).unsqueeze(1).expand(d, n, d)
    return push_tangents(f, z, basis).permute(1, 2, 0)


def reverse_jacobian(f: FlatMap, z: Tensor) -> Tensor:
    """Jacobians of a batch-separable map by reverse mode (for narrow maps, ``m < d``).

    Args:
        f: map from ``(N, d)`` to ``(N, m)``.
        z: points of shape ``(N, d)``.

    Returns:
        ``J`` of shape ``(N, m, d)``.
    """
    out, pull = vjp(f, z)[:2]
    n, m = out.shape
    basis = torch.eye(m, dtype=out.dtype, device=out.device).unsqueeze(1).expand(m, n, m)
    try:
        rows = vmap(pull)(basis)[0]  # (m, N, d)
    except (RuntimeError, NotImplementedError, ValueError) as err:
        if is_out_of_memory(err):
            raise
        warn_slower_path(
            f, "torch.func.vmap cannot batch its reverse mode; rows are pulled one by one"
        )
        rows = torch.stack([pull(basis[i])[0] for i in range(m)])
    return rows.permute(1, 0, 2)
