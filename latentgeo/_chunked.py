"""Work split into chunks sized by the memory budget (:mod:`latentgeo.memory`).

A batched computation over ``n`` items (points, or pairs of ``weight``
points each) runs as ``fn(slice)`` on consecutive chunks. The first time a
given computation (``key``) runs for an ``owner`` (a metric) on more than
``3 p`` items (``p`` items hold :data:`PROBE_POINTS` points; a smaller call
measures its first item alone, a provisional footprint that takes all of its
bytes per point, until a larger call probes), it is run on the
first item and the first two, then on the first ``p`` and ``2 p`` items
(``p`` lowered until ``2 p`` items fit in the budget by the one- and two-item
fit, so that the probe keeps to it too), under a tracker of the bytes held by live
tensors (those results are dropped: the chunks, and so the results, never
depend on what was measured before), and the two peaks fit

.. math:: \\text{peak}(u) = \\text{fixed} + \\text{per\\_point} · u

for ``u`` points. That footprint is cached for the owner, and later chunks
hold as many items as fit in :data:`TARGET` of the budget in force, and on the
CPU in :data:`~latentgeo.memory.CPU_CHUNK_BYTES` (larger chunks are slower
there: their tensors fall out of the caches). The
tracker sees every tensor torch allocates through its dispatcher, not the
scratch space inside a kernel, hence the margin. A chunk holds at least one
item: one that alone needs more than the whole budget runs anyway, and a
:class:`~latentgeo.exceptions.PerformanceWarning` says so once per owner and
computation.

An out-of-memory error inside a chunk halves the chunk and retries it (each
size once; a :class:`~latentgeo.exceptions.PerformanceWarning` says so once
per owner and computation), and the halved size caps that computation's later
chunks, in later calls too, whether they are sized by the budget or given a
fixed ``chunk_size``. Any other error propagates unchanged.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch.utils._pytree import tree_flatten

from latentgeo._live_bytes import measure_peak
from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.memory import CPU_CHUNK_BYTES, current_memory_budget, is_out_of_memory

__all__ = [
    "PROBE_POINTS",
    "TARGET",
    "Footprint",
    "footprint",
    "measure_peak",
    "run_chunked",
    "run_over_points",
]

T = TypeVar("T")

PROBE_POINTS = 16  # points in the first probe chunk (the second has twice as many)
TARGET = 0.5  # share of the budget a chunk is sized for


@dataclass
class Footprint:
    """Measured memory of one computation: ``fixed + per_point · u`` bytes for ``u`` points.

    Attributes:
        per_point: bytes per point (``> 0``; NaN: not measured, only :attr:`cap`
            is known, from an out-of-memory error at a fixed chunk size).
        fixed: bytes whatever the chunk's size (``>= 0``).
        cap: most points per chunk, lowered by out-of-memory errors (remembered
            across calls, with a fixed ``chunk_size`` too).
        provisional: measured on one item of a call too small to probe, all of its
            bytes taken as per point (an upper bound); the first call large enough
            to probe measures it properly.
    """

    per_point: float
    fixed: float = 0.0
    cap: float = math.inf
    provisional: bool = False

    def points(self, budget: int, limit: float = math.inf) -> float:
        """Most points per chunk under ``budget`` bytes, a chunk holding at most ``limit``
        bytes (may be below 1)."""
        room = max(min(TARGET * budget, limit) - self.fixed, 0.0)
        return min(self.cap, room / self.per_point)


_FOOTPRINTS: weakref.WeakKeyDictionary[Any, dict[Hashable, Footprint]]
_FOOTPRINTS = weakref.WeakKeyDictionary()


def footprint(owner: object, key: Hashable) -> Footprint | None:
    """The cached footprint of computation ``key`` of ``owner`` (``None``: not measured)."""
    try:
        return _FOOTPRINTS.get(owner, {}).get(key)
    except TypeError:  # not weakly referenceable: never cached
        return None


def _store(owner: object, key: Hashable, value: Footprint) -> None:
    """Cache ``value`` (keeping the cap an earlier out-of-memory error left)."""
    known = footprint(owner, key)
    if known is not None:
        value.cap = min(value.cap, known.cap)
    try:
        _FOOTPRINTS.setdefault(owner, {})[key] = value
    except TypeError:
        pass


def run_chunked(
    fn: Callable[[slice], T],
    n: int,
    *,
    owner: object,
    key: Hashable,
    weight: float = 1.0,
    device: torch.device | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> list[T]:
    """``[fn(s) for s in chunks]`` over ``range(n)``, chunked by the memory budget.

    Args:
        fn: the work on one slice of the items.
        n: number of items (``>= 1``).
        owner: whose footprint this is (a metric; cached weakly).
        key: which computation of the owner (with what affects bytes per point:
            dtype, device, estimator...).
        weight: points per item (a pair of curves evaluated at ``T`` points: ``T``).
        device: where the work runs (for the default budget).
        chunk_size: a fixed number of items per chunk instead (still halved on
            out-of-memory).
        generator: a random generator ``fn`` draws from: its state, and the global
            one's, are put back after a measurement, so that the same seed gives the
            same results whether a footprint was known or not.

    Returns:
        The results, in order.
    """
    out: list[T] = []
    start = 0
    fixed = None if chunk_size is None else max(1, chunk_size)
    if fixed is None:
        known = _measured(owner, key)
        small = n <= 3 * max(1, int(PROBE_POINTS // weight))  # no more than a probe takes
        if known is None and n == 1:
            fixed = 1  # nothing to chunk
        elif known is None and small:
            with _random_state_kept(generator, device):
                _measure_small(fn, owner, key, weight, current_memory_budget(device))
        elif known is None or (known.provisional and not small):
            with _random_state_kept(generator, device):
                _probe(fn, owner, key, weight, device)
    if fixed is not None:
        fixed = _capped(fixed, owner, key, weight)
    while start < n:
        size = fixed if fixed is not None else _items(owner, key, weight, device)
        size = min(size, n - start)
        result = _attempt(fn, slice(start, start + size))
        if result is _OOM:
            fixed = _halve(owner, key, size, weight)
            continue
        out.append(result)  # type: ignore[arg-type]
        start += size
    return out


def run_over_points(
    fn: Callable[[slice], T],
    flat: torch.Tensor,
    *,
    owner: object,
    kind: Hashable,
    chunk_size: int | None = None,
) -> list[T]:
    """:func:`run_chunked` over the points ``flat (N, d)``, the footprint keyed by ``kind``,
    ``d``, dtype, device and gradient mode (a decoder whose parameters require grad
    records a graph with it: 2.5 × the bytes of an MLP's metric tensor)."""
    key = (kind, flat.shape[-1], flat.dtype, flat.device, torch.is_grad_enabled())
    parts = run_chunked(
        fn, flat.shape[0], owner=owner, key=key, device=flat.device, chunk_size=chunk_size
    )
    if torch.is_grad_enabled() and not flat.requires_grad:
        _warn_if_graph_kept(parts, owner, key, flat)
    return parts


def _warn_if_graph_kept(parts: list[Any], owner: object, key: Hashable, flat: torch.Tensor) -> None:
    """Say once when results ``parts`` keep an autograd graph that the points ``flat`` did
    not ask for (the decoder's parameters require grad) and that outgrows the budget: chunks
    bound the work, not what their results keep (an audit: ``metric_tensor`` of 4000 points
    of a conv decoder kept 12 GB under a 64 MiB budget, 0.4 GB per 1000 under no_grad)."""
    leaves = tree_flatten(parts)[0]
    if not any(isinstance(t, torch.Tensor) and t.requires_grad for t in leaves):
        return
    known = _measured(owner, key)
    budget = current_memory_budget(flat.device)
    kept = math.inf if known is None else known.fixed + known.per_point * flat.shape[0]
    if known is None or kept <= budget:
        return
    what = " ".join(_names(key)) or repr(key)
    warn_once(
        owner,
        PerformanceWarning(
            f"{type(owner).__name__}, {what}: the results keep an autograd graph of the "
            f"decoder's parameters (they require grad; the points do not) of about "
            f"{_size(kept)}, beyond the memory budget of {_size(budget)}, which chunks cannot "
            "bound: call it under torch.no_grad() (or decoder.requires_grad_(False)) unless "
            "you need gradients with respect to the parameters"
        ),
        key=f"graph kept: {what}",
    )


_OOM = object()


def _attempt(fn: Callable[[slice], T], sl: slice) -> T | object:
    """``fn(sl)``, or ``_OOM`` if it ran out of memory (the error's frames are dropped
    before the retry, so their tensors are freed)."""
    try:
        return fn(sl)
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err) or sl.stop - sl.start <= 1:
            raise
    return _OOM


def _halve(owner: object, key: Hashable, size: int, weight: float) -> int:
    """Half of ``size`` (items) after an out-of-memory error; caps the owner's later chunks."""
    half = max(1, size // 2)
    name = type(owner).__name__
    warn_once(
        owner,
        PerformanceWarning(
            f"{name}: out of memory in a chunk of {key!r}; chunks are halved and retried "
            "(a smaller memory budget avoids the retries)"
        ),
    )
    known = footprint(owner, key)
    if known is None:  # a fixed chunk size: remembered as a cap of its own
        known = Footprint(per_point=math.nan)
        _store(owner, key, known)
    known.cap = min(known.cap, half * weight)
    return half


def _capped(size: int, owner: object, key: Hashable, weight: float) -> int:
    """A fixed chunk ``size`` (items) under the cap an earlier out-of-memory error left."""
    known = footprint(owner, key)
    if known is None or math.isinf(known.cap):
        return size
    return max(1, min(size, int(known.cap // weight)))


def _measured(owner: object, key: Hashable) -> Footprint | None:
    """The footprint of ``key`` if it was measured (not only capped by a fixed size's error)."""
    known = footprint(owner, key)
    return None if known is None or math.isnan(known.per_point) else known


def _items(owner: object, key: Hashable, weight: float, device: torch.device | None) -> int:
    """Items per chunk by the measured footprint: at least one, which is announced once
    when it alone needs more than the whole budget (it runs anyway: an item is not split)."""
    known = _measured(owner, key)
    assert known is not None
    on_cpu = device is None or device.type == "cpu"
    limit = CPU_CHUNK_BYTES if on_cpu else math.inf
    budget = current_memory_budget(device)
    items = int(known.points(budget, limit) // weight)
    need = known.fixed + known.per_point * weight
    if items < 1 and need > budget:
        what = " ".join(_names(key)) or repr(key)
        warn_once(
            owner,
            PerformanceWarning(
                f"{type(owner).__name__}, {what}: one item (a point, a plane, a pair of "
                f"curves) needs about {_size(need)}, more than the memory budget of "
                f"{_size(budget)}; each runs alone, over the budget (an item is not split): "
                "raise memory_budget"
            ),
            key=f"over budget: {what}",
        )
    return max(1, items)


def _names(key: object) -> list[str]:
    """The strings in a footprint's ``key`` (nested tuples), in order: what it computes."""
    if isinstance(key, str):
        return [key]
    if isinstance(key, tuple):
        return [name for part in key for name in _names(part)]
    return []


def _size(nbytes: float) -> str:
    """``nbytes`` in bytes, KiB or MiB."""
    if nbytes < 2**10:
        return f"{nbytes:.0f} bytes"
    return f"{nbytes / 2**10:.0f} KiB" if nbytes < 2**20 else f"{nbytes / 2**20:.1f} MiB"


@contextmanager
def _random_state_kept(
    generator: torch.Generator | None, device: torch.device | None
) -> Iterator[None]:
    """Put back the random state a measurement used: ``generator``'s, and the global one
    (of the CPU, and of ``device`` if it is a CUDA device)."""
    devices = [device] if device is not None and device.type == "cuda" else []
    state = None if generator is None else generator.get_state()
    with torch.random.fork_rng(devices=devices):
        yield
    if generator is not None and state is not None:
        generator.set_state(state)


def _measure_small(
    fn: Callable[[slice], T], owner: object, key: Hashable, weight: float, room: float
) -> None:
    """Store a provisional footprint from ``fn`` on the first item and the first two
    (results dropped; :func:`_one_two_fit`): a call too small to probe is still chunked by
    the budget (48 points of a large decoder at once were unmeasured)."""
    try:
        fitted, _ = _one_two_fit(fn, weight, room)
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        fitted = Footprint(1.0)  # out of memory already: one item a chunk from now on
        _halve(owner, key, 2, weight)
    fitted.provisional = True
    _store(owner, key, fitted)


def _one_two_fit(fn: Callable[[slice], T], weight: float, room: float) -> tuple[Footprint, int]:
    """The footprint fitted to ``fn`` on one item and two (a cost per call and one per
    item: a weight-norm layer's weight, built at every call, is not per item), and how
    many items ``2 p`` that fit says fit in ``room`` bytes, for the probe (``p``; ``0``:
    not even two items: then the footprint is one item's bytes, all per point)."""
    one = measure_peak(lambda: fn(slice(0, 1)))[1]
    if 2 * one > room:
        return Footprint(max(one, 1) / weight), 0
    two = measure_peak(lambda: fn(slice(0, 2)))[1]
    per_item, per_call = two - one, max(2 * one - two, 0)
    if per_item > 0:
        p = int((room - per_call) // (2 * per_item))
        return Footprint(per_item / weight, float(per_call)), max(p, 1)
    # nothing per item measured at one and two: as if all of it were
    return Footprint(max(two, 1) / (2 * weight)), max(int(room // max(two, 1)), 1)


def _probe(
    fn: Callable[[slice], T],
    owner: object,
    key: Hashable,
    weight: float,
    device: torch.device | None,
) -> None:
    """Measure ``fn`` on the first items (results dropped, so that the chunks, and hence
    the results, do not depend on whether a footprint was known) and store the fitted
    footprint.

    One item and two are measured first, and their fit (a cost per call and one per
    item) lowers ``p`` until ``2 p`` items fit in the budget, so that the probe keeps to
    it (a transposed-convolution decoder's metric needs 1.7 MB a point: the 32-point
    probe alone took 56 MB); then ``p`` and ``2 p`` items refine the fit where ``p > 2``.
    Where two items would not fit, one item's bytes are the footprint."""
    p = max(1, int(PROBE_POINTS // weight))
    room = current_memory_budget(device)  # the probe may use it all, once
    size = 2  # items of the probe running (at most; one alone running out re-raises later)
    try:
        fitted, fits = _one_two_fit(fn, weight, room)
        p = min(p, fits)
        if p <= 2:
            _store(owner, key, fitted)
            return
        size = p
        peak1 = measure_peak(lambda: fn(slice(0, p)))[1]
        size = 2 * p
        peak2 = measure_peak(lambda: fn(slice(0, 2 * p)))[1]
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err) or size <= 1:
            raise
        # out of memory already: no measure; chunks capped at half that probe from now on
        _store(owner, key, Footprint(1.0))
        _halve(owner, key, size, weight)
        return
    u1, u2 = p * weight, 2 * p * weight
    slope = (peak2 - peak1) / (u2 - u1)
    if slope <= 0.05 * peak2 / u2:  # noise or a constant cost: the one-size figure
        slope, offset = max(peak2, 1) / u2, 0.0
    else:
        offset = max(peak1 - slope * u1, 0.0)
    _store(owner, key, Footprint(slope, offset))
