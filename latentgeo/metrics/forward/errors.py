"""The errors of the forward-mode engine, and how out-of-memory errors are told apart.

:class:`UnsupportedOperation` is the one exception the engine raises when a
fast path cannot handle a module (a node that returns a dictionary, a module
that returns a tuple...). Callers catch it *by name*, announce the slower
exact path once with a :class:`~latentgeo.exceptions.PerformanceWarning` and
use it; every other exception (the user's own bugs, out-of-memory) propagates.
"""

from __future__ import annotations

from latentgeo.exceptions import LatentgeoError
from latentgeo.memory import is_out_of_memory

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
