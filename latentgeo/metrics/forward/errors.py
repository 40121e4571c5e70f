"""The errors of the forward-mode engine, and how out-of-memory errors are told apart.

:class:`UnsupportedOperation` is the one exception the engine raises when a
fast path cannot handle a module (a node that returns a dictionary, a module
that returns a tuple...). Callers catch it *by name*, announce the slower
exact path once with a :class:`~latentgeo.exceptions.PerformanceWarning` and
use it; every other exception (the user's own bugs, out-of-memory) propagates.
"""

from __future__ import annotations

import torch

from latentgeo.exceptions import LatentgeoError

__all__ = ["UnsupportedOperation", "is_out_of_memory"]


class UnsupportedOperation(LatentgeoError):
    """A traced fast path cannot handle an operation; the exact generic path can.

    Attributes:
        operation: the operation, as the warnings name it (``"torch.atan2"``,
            ``"module 'net.3' (nn.LSTM)"``...).
    """

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` reports an exhausted allocator (CUDA or CPU).

    Such errors are never taken as "this path does not apply": they propagate
    (or, later, make the caller shrink its chunks), so that a fast path is
    never switched off because a batch was too large.

    Example:
        >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
        True
        >>> is_out_of_memory(RuntimeError("vmap: data-dependent control flow"))
        False
    """
    if isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(err)
    return "out of memory" in text or "can't allocate memory" in text
