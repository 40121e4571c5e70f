"""Picking the tensor or distribution out of what a decoder returns.

Decoders written for other libraries return containers: pythae's decoders a
``ModelOutput`` holding ``reconstruction``, others a ``dict``, a dataclass or
a named tuple. :func:`select_output` picks the one value the metric is made
of, by the ``output=`` option of :func:`~latentgeo.metrics.as_metric`:

* ``None`` (default): a Tensor or a distribution is used as is; a container
  (``Mapping``, dataclass, named tuple) holding exactly one Tensor or
  distribution gives that one;
* a string: that key of a mapping, else that attribute;
* an int: that position of a tuple or list;
* a callable: ``output(returned)``, e.g.
  ``lambda out: Bernoulli(probs=out["reconstruction"])``.

Selection is plain Python on the container, so it runs unchanged while
``torch.fx`` traces the decoder (the values are then proxies): decoders with
containers keep the traced fast path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, fx
from torch.distributions import Distribution

__all__ = [
    "OutputSpec",
    "UnsupportedOutput",
    "check_output_spec",
    "describe_output",
    "select_output",
]

#: what ``as_metric(decoder, output=...)`` accepts
OutputSpec = str | int | Callable[[Any], Any] | None


def _how(out: object, name: str) -> str:
    """How to pick entry ``name`` of ``out``: by its position in a plain tuple or list
    (``output=0``, not ``output='0'``), by its key or attribute name otherwise."""
    tail = "or a callable returning a Tensor or distribution (output=lambda out: ...)"
    if isinstance(out, (tuple, list)) and not hasattr(out, "_fields"):
        return f"pick it with as_metric(decoder, output=...): a position (output={name}), {tail}"
    return (
        "pick it with as_metric(decoder, output=...): a key or attribute name "
        f"(output={name!r}), a position in a tuple (output=0), {tail}"
    )


class UnsupportedOutput(TypeError):
    """A decoder's output has no metric (or is ambiguous); the message says how to pick."""


def check_output_spec(output: object) -> OutputSpec:
    """Check the ``output=`` option of ``as_metric`` (a str, an int, a callable or ``None``)."""
    if output is None or isinstance(output, (str, int)) or callable(output):
        if isinstance(output, bool):
            raise TypeError("output must be a key, an attribute name, an index or a callable")
        return output
    raise TypeError(
        "output must be a key or attribute name (str), an index (int), a callable or None, "
        f"got {type(output).__name__}"
    )


def _is_value(x: object) -> bool:
    """A Tensor (or an ``fx`` proxy of one, while tracing) or a distribution."""
    return isinstance(x, (Tensor, fx.Proxy, Distribution))


def _items(out: object) -> list[tuple[str, Any]] | None:
    """The named entries of a container output, or ``None`` if it is none."""
    if isinstance(out, Mapping):
        return [(str(k), v) for k, v in out.items()]
    if isinstance(out, tuple) and hasattr(out, "_fields"):  # a named tuple
        return list(zip(out._fields, out, strict=True))
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [(f.name, getattr(out, f.name)) for f in dataclasses.fields(out)]
    if isinstance(out, (tuple, list)):
        return [(str(i), v) for i, v in enumerate(out)]
    return None


def _describe_value(x: object) -> str:
    if isinstance(x, Tensor):
        return f"Tensor {tuple(x.shape)}"
    if isinstance(x, fx.Proxy):
        return "Tensor"
    return type(x).__name__


def describe_output(out: object) -> str:
    """A short description of what a decoder returned, entry by entry for containers.

    Example:
        >>> import torch
        >>> describe_output({"mu": torch.zeros(1, 3), "n": 4})
        "dict with 'mu': Tensor (1, 3), 'n': int"
    """
    items = _items(out)
    if items is None:
        return _describe_value(out)
    if not items:
        return f"an empty {type(out).__name__}"
    entries = ", ".join(f"{k!r}: {_describe_value(v)}" for k, v in items[:12])
    more = f" (and {len(items) - 12} more)" if len(items) > 12 else ""
    return f"{type(out).__name__} with {entries}{more}"


def _auto(out: object) -> Any:
    if _is_value(out):
        return out
    items = _items(out)
    if items is None:
        return out  # not a container: output_embedding says whether it is supported
    values = [(k, v) for k, v in items if _is_value(v)]
    if len(values) == 1:
        return values[0][1]
    what = "no Tensor or distribution" if not values else "more than one Tensor or distribution"
    name = values[0][0] if values else "name"
    raise UnsupportedOutput(
        f"the decoder returned {describe_output(out)}: {what}, so latentgeo cannot tell which "
        f"one the metric is made of; {_how(out, name)}"
    )


def select_output(out: object, output: OutputSpec = None) -> Any:
    """The Tensor or distribution of a decoder's output ``out`` that the metric is made of.

    Args:
        out: what the decoder returned.
        output: the ``output=`` option of ``as_metric`` (see the module docstring).

    Returns:
        The selected value (checked to be supported by ``output_embedding`` later).

    Raises:
        TypeError: the output is ambiguous, or ``output`` names nothing in it; the
            message lists what was returned and how to pick from it.

    Example:
        >>> import torch
        >>> select_output({"reconstruction": torch.ones(2, 3)}).shape
        torch.Size([2, 3])
        >>> select_output((torch.ones(2), torch.zeros(2)), 1)
        tensor([0., 0.])
    """
    if output is None:
        return _auto(out)
    if isinstance(output, str):
        if isinstance(out, Mapping) and output in out:
            return out[output]
        if not isinstance(out, Mapping) and hasattr(out, output):
            return getattr(out, output)
    elif isinstance(output, int):
        if isinstance(out, (tuple, list)) and -len(out) <= output < len(out):
            return out[output]
    else:
        return output(out)
    items = _items(out)
    name = items[0][0] if items else "name"
    raise UnsupportedOutput(
        f"output={output!r}: the decoder returned {describe_output(out)}, which has no such "
        f"entry; {_how(out, name)}"
    )
