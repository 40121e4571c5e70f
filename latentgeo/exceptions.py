"""latentgeo's error and warning classes, :func:`warn` and :func:`warn_once`.

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

Warnings point at the caller's line, not into latentgeo: :func:`warn` finds
the first frame outside latentgeo (and outside torch, ``functools`` and
``contextlib``, which call back into it), however deep the call that warns.

This module sits below every layer: anything in latentgeo may import it.
"""

from __future__ import annotations

import inspect
import sys
import warnings
import weakref
from typing import Any

__all__ = [
    "LatentgeoError",
    "LatentgeoWarning",
    "NumericsWarning",
    "PerformanceWarning",
    "callable_owner",
    "user_stacklevel",
    "warn",
    "warn_once",
    "warn_slower_path",
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


#: top-level modules whose frames a warning skips on its way to the caller's line
_INTERNAL_MODULES = frozenset({"latentgeo", "torch", "functools", "contextlib"})


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn`, called by the function that
    calls this one, point at the first frame outside latentgeo (see the module doc)."""
    frame = sys._getframe(1)  # the function about to warn: stacklevel 1
    level = 1
    while frame.f_back is not None and _is_internal(frame):
        frame, level = frame.f_back, level + 1
    return level


def _is_internal(frame: Any) -> bool:
    if frame.f_code.co_filename.startswith("<doctest"):  # runs in a module's globals
        return False
    module = frame.f_globals.get("__name__") or ""
    return str(module).partition(".")[0] in _INTERNAL_MODULES


def warn(warning: LatentgeoWarning) -> None:
    """Emit ``warning`` at the caller's line, the first frame outside latentgeo."""
    warnings.warn(warning, stacklevel=user_stacklevel())


def warn_once(
    owner: object,
    warning: LatentgeoWarning,
    *,
    stacklevel: int | None = None,
    key: str | None = None,
) -> bool:
    """Emit ``warning`` (as :func:`warn`) unless the same message was already emitted for
    ``owner``.

    Args:
        owner: the object the warning is about (a metric, a decoder); the
            message is shown once per owner and per text (or ``key``).
        warning: the warning instance.
        key: what makes two warnings the same, for messages that quote figures of
            the occasion (default: the text).
        stacklevel: passed to :func:`warnings.warn` (``None``: the caller's line,
            :func:`user_stacklevel`).

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
    text = f"{type(warning).__name__}: {warning}" if key is None else f"key {key}"
    try:
        shown = _SHOWN.setdefault(owner, set())
    except TypeError:  # not weakly referenceable: keep it by id (rare; a few bytes each)
        shown = _SHOWN_BY_ID.setdefault(id(owner), set())
    if text in shown:
        return False
    shown.add(text)
    warnings.warn(warning, stacklevel=user_stacklevel() if stacklevel is None else stacklevel)
    return True


def callable_owner(f: object) -> object:
    """The object a bound method (or a bound builtin such as ``tensor.add``) belongs to,
    else ``f`` itself (a function, a module, a builtin like ``torch.sin``).

    Example:
        >>> class Model:
        ...     def decode(self): ...
        >>> model = Model()
        >>> callable_owner(model.decode) is model, callable_owner(len) is len
        (True, True)
    """
    bound = getattr(f, "__self__", None)
    return f if bound is None or inspect.ismodule(bound) else bound


def warn_slower_path(owner: object, text: str) -> bool:
    """Say once per ``owner`` that it takes a slower exact path: a :class:`PerformanceWarning`
    ``"<name>: <text>"`` (:func:`warn_once`, once per :func:`callable_owner`).

    Args:
        owner: what is slower: a module (named by its class), a function or a bound
            method (by its qualified name, ``VAE.decode``) or any object (by its class).
        text: what cannot apply and what is used instead.

    Returns:
        Whether the warning was emitted now.

    Example:
        >>> import warnings
        >>> def decoder(z): ...
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = warn_slower_path(decoder, "no traced fast path")
        >>> str(caught[0].message)
        'decoder: no traced fast path'
    """
    name = getattr(owner, "__qualname__", type(owner).__name__)
    return warn_once(callable_owner(owner), PerformanceWarning(f"{name}: {text}"))
