"""The memory budget, in bytes, that every batched path of latentgeo obeys.

One setting bounds the memory of the heavy computations (the energies and
gradients of a batch of curves, the solver's preconditioner, ``metric_tensor``
and ``squared_norm`` of many points, the geodesic ODE of exp/log maps,
distance matrices):

* :func:`set_memory_budget` sets it for the process (``None``: back to the default);
* :func:`memory_budget` sets it inside a ``with`` block (and thread or task);
* the heavy entry points take a ``memory_budget=`` keyword that does the same
  for one call (``connecting_geodesic``, ``exp_map``, ``log_map``,
  ``geodesic_distances``, ``parallel_transport``, ``frechet_mean``, ``fit_land``,
  ``scalar_curvature``...).

The default is a modest share (:data:`DEFAULT_SHARE`) of the memory available
now: on CUDA the device's free memory (``torch.cuda.mem_get_info``), on the
CPU the system's available memory (``/proc/meminfo`` where it exists, else
``psutil`` if installed), there at most :data:`CPU_DEFAULT_CAP`.
:func:`current_memory_budget` says what is in force.

Chunk sizes come from the budget and the decoder's measured bytes per point
(see :mod:`latentgeo._chunked`), on the CPU at most :data:`CPU_CHUNK_BYTES` a chunk
(the budget bounds memory; that cap keeps each chunk in the caches); an
out-of-memory error inside a chunk halves the chunk and retries, and never
switches a fast path off. A single point (or pair of curves) that alone needs
more than the budget is computed anyway, and announced once. Chunks bound the
work, not what their results keep: results that hold an autograd graph of a
decoder's parameters (which require grad, as PyTorch's modules do by default)
grow with the number of points, and beyond the budget that is announced once
too (use ``torch.no_grad()`` when no gradient of the parameters is needed).

Example:
    >>> import latentgeo
    >>> with latentgeo.memory_budget(256 * 2**20):  # 256 MiB inside the block
    ...     latentgeo.current_memory_budget()
    268435456
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = [
    "CPU_CHUNK_BYTES",
    "CPU_DEFAULT_CAP",
    "DEFAULT_SHARE",
    "current_memory_budget",
    "default_memory_budget",
    "is_out_of_memory",
    "memory_budget",
    "set_memory_budget",
    "use_memory_budget",
]

#: share of the available memory the default budget takes
DEFAULT_SHARE = 0.25
#: most bytes of the default budget on the CPU, where larger chunks are no faster
CPU_DEFAULT_CAP = 1 << 30
#: most bytes one chunk's tensors may hold on the CPU, whatever the budget: chunks with
#: larger working sets spill out of the processor's caches and cost more per point
#: (``python benchmarks/real_decoders.py --only chunks``: ``metric_tensor`` of the
#: transposed-convolution decoder 1.4–1.7× more per point in chunks of 128 MiB than of 32 MiB,
#: 1.8–2× in one of 430 MiB; an MLP's 0.9–1.3× from run to run)
CPU_CHUNK_BYTES = 32 << 20
_FALLBACK_BYTES = 4 << 30  # when the available memory cannot be read
_REFRESH_S = 1.0  # the default is re-read at most this often

_GLOBAL: int | None = None
_SCOPED: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "latentgeo_memory_budget", default=None
)
_DEFAULTS: dict[str, tuple[float, int]] = {}  # device -> (time read, bytes)


def _check_budget(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of bytes >= 1 (an int, or a float such as 2e9), "
            f"got {type(value).__name__}"
        )
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{name} must be a number of bytes >= 1, got {value!r}")
    return int(value)


def set_memory_budget(nbytes: int | None) -> None:
    """Set the process-wide memory budget.

    Args:
        nbytes: the budget in bytes (``>= 1``), or ``None`` for the default
            (:func:`default_memory_budget`).

    Raises:
        TypeError: ``nbytes`` is not a number.
        ValueError: ``nbytes`` is below 1 or not finite.
    """
    global _GLOBAL
    _GLOBAL = None if nbytes is None else _check_budget(nbytes, "nbytes")


@contextmanager
def memory_budget(nbytes: int) -> Iterator[int]:
    """Use a memory budget of ``nbytes`` inside a ``with`` block.

    Args:
        nbytes: the budget in bytes (``>= 1``).

    Yields:
        The budget.

    Raises:
        TypeError: ``nbytes`` is not a number.
        ValueError: ``nbytes`` is below 1 or not finite.
    """
    value = _check_budget(nbytes, "nbytes")
    token = _SCOPED.set(value)
    try:
        yield value
    finally:
        _SCOPED.reset(token)


@contextmanager
def use_memory_budget(nbytes: int | None) -> Iterator[None]:
    """:func:`memory_budget` for an entry point's ``memory_budget=`` keyword: ``None``
    keeps the budget in force.

    Raises:
        TypeError, ValueError: as :func:`memory_budget`, naming ``memory_budget``.
    """
    if nbytes is None:
        yield
        return
    value = _check_budget(nbytes, "memory_budget")
    token = _SCOPED.set(value)
    try:
        yield
    finally:
        _SCOPED.reset(token)


def current_memory_budget(device: torch.device | str | None = None) -> int:
    """The budget in force, in bytes: the innermost :func:`memory_budget` block, else
    :func:`set_memory_budget`'s value, else :func:`default_memory_budget` for ``device``.

    Args:
        device: the device the computation runs on (default: the CPU).
    """
    scoped = _SCOPED.get()
    if scoped is not None:
        return scoped
    if _GLOBAL is not None:
        return _GLOBAL
    return default_memory_budget(device)


def default_memory_budget(device: torch.device | str | None = None) -> int:
    """:data:`DEFAULT_SHARE` of the memory available on ``device`` now, at most
    :data:`CPU_DEFAULT_CAP` on the CPU (re-read at most once a second).

    On the CPU, chunks beyond a few hundred MiB gain no speed (the work per
    point is the same and larger working sets fall out of the caches), hence
    the cap; a GPU gains from large batches, so there it is the share alone.

    Args:
        device: a CUDA device (its free memory) or the CPU (the system's available
            memory); default the CPU.
    """
    dev = torch.device("cpu" if device is None else device)
    key = str(dev)
    now = time.monotonic()
    cached = _DEFAULTS.get(key)
    if cached is not None and now - cached[0] < _REFRESH_S:
        return cached[1]
    if dev.type == "cuda":
        value = int(DEFAULT_SHARE * _cuda_free(dev))
    else:
        value = min(int(DEFAULT_SHARE * _cpu_available()), CPU_DEFAULT_CAP)
    value = max(1, value)
    _DEFAULTS[key] = (now, value)
    return value


def _cuda_free(device: torch.device) -> int:
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def _cpu_available() -> int:
    """The system's available memory in bytes: ``MemAvailable`` of ``/proc/meminfo``
    where it exists (Linux, where psutil reports the same figure but its import costs
    ~25 CPU-ms of a fresh process's first call), else psutil's, else a fixed 4 GiB."""
    found = _read_meminfo()
    if found is not None:
        return found
    try:
        import psutil
    except ImportError:
        return _FALLBACK_BYTES
    return int(psutil.virtual_memory().available)


def _read_meminfo() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (``None`` where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` reports an exhausted allocator (CUDA or CPU).

    Such errors are never taken as "this path does not apply": they propagate,
    or make the chunked paths halve their chunk and retry, so that a fast
    path is never switched off because a batch was too large.

    Example:
        >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
        True
        >>> is_out_of_memory(RuntimeError("vmap: data-dependent control flow"))
        False
    """
    if isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    if not isinstance(err, RuntimeError):
        return False
    text = str(err)
    return "out of memory" in text or "can't allocate memory" in text
