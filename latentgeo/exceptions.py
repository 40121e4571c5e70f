"""latentgeo's error and warning classes, and :func:`warn_once`.

Every error latentgeo raises on purpose is a :class:`LatentgeoError` (or a
built-in ``ValueError``/``TypeError`` for bad arguments); every warning is a
:class:`LatentgeoWarning`, so a user can silence or escalate them by class:

.. code-block:: python

    import warnings
    from latentgeo.exceptions import PerformanceWarning

    warnings.simplefilter("error", PerformanceWarning)   # fail instead of a slow path

* :class:`PerformanceWarning`: a fast path cannot apply (an operation the
  traced forward mode has no rule for, say) and a slower exact one is used.
* :class:`NumericsWarning`: a number may not mean what it seems (an
  indefinite metric, a loss of precision).

This module sits below every layer: anything in latentgeo may import it.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

__all__ = [
    "LatentgeoError",
    "LatentgeoWarning",
    "NumericsWarning",
    "PerformanceWarning",
    "warn_once",
]


class LatentgeoError(Exception):
    """Base class of the errors latentgeo raises on purpose (solver failures under
    ``throw=True``, damaged checkpoints, ...)."""


class LatentgeoWarning(UserWarning):
    """Base class of latentgeo's warnings."""


class PerformanceWarning(LatentgeoWarning):
    """A fast path cannot apply; a slower exact one is used (named once per object)."""


class NumericsWarning(LatentgeoWarning):
    """A computed number may not be what it seems (precision, indefinite metric...)."""


# owner -> messages already shown; weakly keyed so that owners can be freed
_SHOWN: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_SHOWN_BY_ID: dict[int, set[str]] = {}


def warn_once(owner: object, warning: LatentgeoWarning, *, stacklevel: int = 3) -> bool:
    """Emit ``warning`` unless the same message was already emitted for ``owner``.

    Args:
        owner: the object the warning is about (a metric, a decoder); the
            message is shown once per owner and per text.
        warning: the warning instance.
        stacklevel: passed to :func:`warnings.warn`.

    Returns:
        Whether the warning was emitted now.

    Example:
        >>> import warnings
        >>> class Thing: ...
        >>> thing = Thing()
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     first = warn_once(thing, PerformanceWarning("slow path"))
        ...     second = warn_once(thing, PerformanceWarning("slow path"))
        >>> first, second, len(caught)
        (True, False, 1)
    """
    text = f"{type(warning).__name__}: {warning}"
    try:
        shown = _SHOWN.setdefault(owner, set())
    except TypeError:  # not weakly referenceable: keep it by id (rare; a few bytes each)
        shown = _SHOWN_BY_ID.setdefault(id(owner), set())
    if text in shown:
        return False
    shown.add(text)
    warnings.warn(warning, stacklevel=stacklevel)
    return True
