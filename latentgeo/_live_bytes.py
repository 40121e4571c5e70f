"""The bytes a computation holds at its peak, as PyTorch allocates them.

:func:`measure_peak` runs a function under a ``TorchDispatchMode`` that tracks
the storages of the tensors created under it, live until they are freed: the
peak of their total is what the computation needed beyond what existed before
(a view of an earlier tensor, such as a chunk ``points[i:j]`` of the caller's
points, allocates nothing; an operation that gives an earlier tensor new
storage, ``out=`` or ``resize_``, does). It does not see the scratch space
inside a kernel nor the allocator's own overhead. :mod:`latentgeo._chunked`
sizes its chunks by it.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["measure_peak"]

T = TypeVar("T")


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of the storages held by tensors created under it, and their peak.

    Its ``__torch_dispatch__`` is left unwrapped: by default torch wraps every mode's
    handler in ``torch._disable_dynamo``, whose first call imports ``torch._dynamo``
    (about 2 CPU-s, most of a fresh process's first ``metric_tensor``). Without
    ``torch._dynamo`` loaded nothing can be compiling, so the wrapper has nothing to
    do; once it is loaded, :func:`measure_peak` uses :class:`_LiveBytesUnderDynamo`.
    (A decoder compiled on its first call inside a measurement has dynamo trace into
    this handler, which graph-breaks: slower once, the same peak.)
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # read by TorchDispatchMode.__init_subclass__
        return False

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [bytes, tensors]
        self._tensors: set[int] = set()

    def _release(self, tensor_id: int, key: int) -> None:
        self._tensors.discard(tensor_id)
        entry = self._storages.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._storages[key]
            self.live -= entry[0]

    @staticmethod
    def _storage_of(t: torch.Tensor) -> tuple[int, int] | None:
        """``(data pointer, bytes)`` of ``t``'s storage (``None``: a wrapper or no storage)."""
        try:
            storage = t.untyped_storage()
            return storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # a wrapper (functorch) or no storage
            return None

    def _outside(self, args: Any, kwargs: Any) -> set[int]:
        """The storages of an operation's inputs that were not allocated under the tracker:
        a view of one (a chunk ``points[sl]`` of all the points) allocates nothing."""
        keys = set()
        for a in tree_flatten((args, kwargs))[0]:
            found = self._storage_of(a) if isinstance(a, torch.Tensor) else None
            if found is not None and found[0] not in self._storages:
                keys.add(found[0])
        return keys

    def _track(self, t: torch.Tensor, outside: set[int]) -> None:
        if id(t) in self._tensors:
            return
        found = self._storage_of(t)
        if found is None or found[1] == 0 or found[0] in outside:
            return
        key, nbytes = found
        entry = self._storages.get(key)
        if entry is None:
            self._storages[key] = [nbytes, 1]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            entry[1] += 1
        self._tensors.add(id(t))
        weakref.finalize(t, self._release, id(t), key)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        outside = self._outside(args, kwargs)  # before: ``out=`` or ``resize_`` reallocate
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t, outside)
        return out


class _LiveBytesUnderDynamo(_LiveBytes):
    """:class:`_LiveBytes` with torch's default: the handler is hidden from ``torch._dynamo``."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return True

    __torch_dispatch__ = _LiveBytes.__torch_dispatch__  # wrapped by __init_subclass__


def measure_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` and the peak bytes of the tensors it allocated that were alive together."""
    mode = _LiveBytesUnderDynamo if "torch._dynamo" in sys.modules else _LiveBytes
    with mode() as tracker:
        out = fn()
    return out, tracker.peak
