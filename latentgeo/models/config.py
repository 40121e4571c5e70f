"""Architecture configurations: how a model is rebuilt from plain data.

Every model class that can be saved implements two methods:

* ``config(self) -> dict``: the constructor arguments as plain JSON-like
  data (numbers, strings, lists, dicts, and the *specs* of sub-modules);
* ``from_config(cls, config) -> instance`` (a classmethod): the inverse.

A *spec* is ``{"class": "Name", "config": {...}}``. :func:`to_spec` and
:func:`from_spec` turn modules into specs and back through a registry of
class names; :func:`register_model` adds a class of your own (the built-in
models are registered where they are defined). A checkpoint
(:mod:`latentgeo.models.checkpoints`) stores a spec plus the weights.

Example:
    >>> from latentgeo.models import MLP
    >>> spec = to_spec(MLP(2, 3, hidden=(4,)))
    >>> spec["class"], spec["config"]["hidden"]
    ('MLP', [4])
    >>> type(from_spec(spec)).__name__
    'MLP'
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["from_spec", "register_model", "to_spec"]

_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register_model(cls: T) -> T:
    """Class decorator: make ``cls`` known to :func:`from_spec` (and so to ``load``).

    ``cls`` must define ``config()`` and the classmethod ``from_config(config)``.
    It is registered under its ``__name__``.

    Raises:
        TypeError: ``cls`` lacks ``config`` or ``from_config``.
        ValueError: another class is registered under the same name.
    """
    for method in ("config", "from_config"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"{cls.__name__} must define {method}() to be registered")
    name = cls.__name__
    known = _REGISTRY.get(name)
    if known is not None and known is not cls:
        raise ValueError(f"another class is already registered as {name!r}: {known!r}")
    _REGISTRY[name] = cls
    return cls


def to_spec(obj: object) -> dict[str, Any]:
    """``{"class": name, "config": obj.config()}`` for a registered model.

    Raises:
        TypeError: ``obj``'s class is not registered (it cannot be rebuilt).
    """
    name = type(obj).__name__
    if _REGISTRY.get(name) is not type(obj):
        raise TypeError(
            f"cannot describe a {name} by configuration: only registered latentgeo models "
            "(MLP, GaussianEncoder, GaussianDecoder, RBFPrecision, BernoulliDecoder, "
            "EnsembleDecoder, VAE, ...) or classes decorated with "
            "latentgeo.models.register_model can be saved"
        )
    return {"class": name, "config": obj.config()}  # type: ignore[attr-defined]


def from_spec(spec: object) -> Any:
    """Rebuild a model (with fresh weights) from a spec made by :func:`to_spec`.

    Raises:
        ValueError: ``spec`` is malformed or names an unknown class.
    """
    if not isinstance(spec, dict) or "class" not in spec or "config" not in spec:
        raise ValueError(f"a model spec must be a dict with 'class' and 'config', got {spec!r}")
    cls = _REGISTRY.get(spec["class"])
    if cls is None:
        raise ValueError(
            f"unknown model class {spec['class']!r} (known: {sorted(_REGISTRY)}); register "
            "it with latentgeo.models.register_model before loading"
        )
    return cls.from_config(spec["config"])  # type: ignore[attr-defined]
