"""Element-wise rules: activations and math functions ``y = σ(x)`` with ``σ′`` and ``σ″``.

Each entry gives ``σ′(x)`` and ``σ″(x)`` (in terms of ``x`` and the output
``y`` where that is cheaper); :func:`~latentgeo.metrics.forward.jet.elementwise`
turns them into ``ẏ = σ′ ẋ`` and ``ÿ = σ″ ẋ_v² + σ′ ẍ``. In-place variants
(``x.tanh_()``, ``torch.sigmoid_``, ``F.relu(x, inplace=True)``,
``nn.ReLU(inplace=True)``) use the same entries.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo.metrics.continuous_bernoulli import (
    continuous_bernoulli_embedding,
    continuous_bernoulli_variance,
    continuous_bernoulli_variance_slope,
)
from latentgeo.metrics.forward.jet import Call, Rule, Site, elementwise, options

__all__ = ["ELEMENTWISE"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def only_first_live(site: Site) -> str | None:
    """Static check: the parameters (all but the first argument) must not depend on z."""
    if any(site.live(a) for a in site.args[1:]) or any(site.live(v) for v in site.kwargs.values()):
        return "a parameter depends on the input"
    return None


def _where(cond: Tensor, a: Any, b: Any, like: Tensor) -> Tensor:
    return torch.where(cond, torch.as_tensor(a, dtype=like.dtype, device=like.device), b)


def _gelu(x: Tensor, y: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        t = torch.tanh(c * (x + 0.044715 * x**3))
        du = c * (1.0 + 3 * 0.044715 * x * x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    phi = torch.exp(-0.5 * x * x) / _SQRT_2PI
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))) + x * phi


def _gelu2(x: Tensor, y: Tensor, g1: Tensor, approximate: str = "none") -> Tensor:
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        t = torch.tanh(c * (x + 0.044715 * x**3))
        du = c * (1.0 + 3 * 0.044715 * x * x)
        ddu = 6 * c * 0.044715 * x
        return (1.0 - t * t) * (du + 0.5 * x * (ddu - 2.0 * t * du * du))
    return torch.exp(-0.5 * x * x) / _SQRT_2PI * (2.0 - x * x)


def _gelu_options(call: Call) -> dict[str, Any] | None:
    found = options(call, (("approximate", "none"),))
    if found is None or found["approximate"] not in ("none", "tanh"):
        return None
    return found


def _mish(x: Tensor, y: Tensor) -> Tensor:
    t, s = torch.tanh(F.softplus(x)), torch.sigmoid(x)
    return t + x * (1.0 - t * t) * s


def _mish2(x: Tensor, y: Tensor, g1: Tensor) -> Tensor:
    t, s = torch.tanh(F.softplus(x)), torch.sigmoid(x)
    return (1.0 - t * t) * s * (2.0 + x * (1.0 - s - 2.0 * t * s))


def _silu(x: Tensor, y: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _silu2(x: Tensor, y: Tensor, g1: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _hardswish(x: Tensor, y: Tensor) -> Tensor:
    middle = torch.where(x <= 3, x / 3.0 + 0.5, torch.ones_like(x))
    return torch.where(x < -3, torch.zeros_like(x), middle)


def _softplus(x: Tensor, y: Tensor, beta: float, threshold: float) -> Tensor:
    return _where(x * beta > threshold, 1.0, torch.sigmoid(beta * x), x)


def _softplus2(x: Tensor, y: Tensor, g1: Tensor, beta: float, threshold: float) -> Tensor:
    return _where(x * beta > threshold, 0.0, beta * g1 * (1.0 - g1), x)


def _clamp(x: Tensor, y: Tensor, min: Any = None, max: Any = None) -> Tensor:
    inside = torch.ones_like(x, dtype=torch.bool)
    if min is not None:
        inside = inside & (x >= min)
    if max is not None:
        inside = inside & (x <= max)
    return inside.to(x.dtype)


def _unary(
    name: str,
    d1: Any,
    d2: Any,
    first: str,
    second: str,
    *,
    functions: tuple[Any, ...] = (),
    methods: tuple[str, ...] = (),
    modules: tuple[type[nn.Module], ...] = (),
    spec: tuple[tuple[str, Any], ...] = (),
) -> Rule:
    def params(call: Call) -> dict[str, Any] | None:
        if spec:
            return options(call, spec)
        if call.module is not None or (len(call.args) == 1 and not call.kwargs):
            return {}
        return None

    return Rule(
        name,
        elementwise(d1, d2, params),
        first,
        second,
        functions=functions,
        methods=methods,
        modules=modules,
        check=only_first_live,
        kind="element-wise",
    )


ELEMENTWISE: list[Rule] = [
    _unary("tanh", lambda x, y: 1.0 - y * y, lambda x, y, g: -2.0 * y * g,
           "1 − y²", "−2y(1 − y²)",
           functions=(torch.tanh,), methods=("tanh",), modules=(nn.Tanh,)),
    _unary("sigmoid", lambda x, y: y * (1.0 - y), lambda x, y, g: g * (1.0 - 2.0 * y),
           "y(1 − y)", "y(1 − y)(1 − 2y)",
           functions=(torch.sigmoid,), methods=("sigmoid",), modules=(nn.Sigmoid,)),
    _unary("exp", lambda x, y: y, lambda x, y, g: y, "y", "y",
           functions=(torch.exp,), methods=("exp",)),
    _unary("log", lambda x, y: 1.0 / x, lambda x, y, g: -g * g, "1/x", "−1/x²",
           functions=(torch.log,), methods=("log",)),
    _unary("sqrt", lambda x, y: 0.5 / y, lambda x, y, g: -0.5 * g / x, "1/(2y)", "−1/(4 x y)",
           functions=(torch.sqrt,), methods=("sqrt",)),
    _unary("rsqrt", lambda x, y: -0.5 * y**3, lambda x, y, g: 0.75 * y**5, "−y³/2", "3y⁵/4",
           functions=(torch.rsqrt,), methods=("rsqrt",)),
    _unary("reciprocal", lambda x, y: -y * y, lambda x, y, g: 2.0 * y**3, "−y²", "2y³",
           functions=(torch.reciprocal,), methods=("reciprocal",)),
    _unary("sin", lambda x, y: torch.cos(x), lambda x, y, g: -y, "cos x", "−sin x",
           functions=(torch.sin,), methods=("sin",)),
    _unary("cos", lambda x, y: -torch.sin(x), lambda x, y, g: -y, "−sin x", "−cos x",
           functions=(torch.cos,), methods=("cos",)),
    _unary("atan", lambda x, y: 1.0 / (1.0 + x * x), lambda x, y, g: -2.0 * x * g * g,
           "1/(1 + x²)", "−2x/(1 + x²)²", functions=(torch.atan,), methods=("atan",)),
    _unary("erf", lambda x, y: 2.0 / math.sqrt(math.pi) * torch.exp(-x * x),
           lambda x, y, g: -2.0 * x * g, "2/√π e^(−x²)", "−4x/√π e^(−x²)",
           functions=(torch.erf,), methods=("erf",)),
    _unary("abs", lambda x, y: torch.sgn(x), None, "sign x", "0",
           functions=(torch.abs,), methods=("abs",)),
    _unary("square", lambda x, y: 2.0 * x, lambda x, y, g: 2.0, "2x", "2",
           functions=(torch.square,), methods=("square",)),
    _unary("log1p", lambda x, y: 1.0 / (1.0 + x), lambda x, y, g: -g * g, "1/(1 + x)",
           "−1/(1 + x)²", functions=(torch.log1p,), methods=("log1p",)),
    _unary("expm1", lambda x, y: y + 1.0, lambda x, y, g: g, "y + 1", "y + 1",
           functions=(torch.expm1,), methods=("expm1",)),
    _unary("relu", lambda x, y: (x > 0).to(x.dtype), None, "[x > 0]", "0",
           functions=(torch.relu, F.relu), methods=("relu",), modules=(nn.ReLU,)),
    _unary("leaky_relu",
           lambda x, y, negative_slope: _where(x > 0, 1.0, negative_slope * torch.ones_like(x), x),
           None, "1 (x > 0), slope (x ≤ 0)", "0",
           functions=(F.leaky_relu,), modules=(nn.LeakyReLU,),
           spec=(("negative_slope", 0.01),)),
    _unary("elu", lambda x, y, alpha: _where(x > 0, 1.0, y + alpha, x),
           lambda x, y, g, alpha: _where(x > 0, 0.0, y + alpha, x),
           "1 (x > 0), y + α", "0 (x > 0), y + α",
           functions=(F.elu,), modules=(nn.ELU,), spec=(("alpha", 1.0),)),
    _unary("celu", lambda x, y, alpha: _where(x > 0, 1.0, y / alpha + 1.0, x),
           lambda x, y, g, alpha: _where(x > 0, 0.0, (y / alpha + 1.0) / alpha, x),
           "1 (x > 0), e^(x/α)", "0 (x > 0), e^(x/α)/α",
           functions=(F.celu, torch.celu), modules=(nn.CELU,), spec=(("alpha", 1.0),)),
    _unary("selu", lambda x, y: _where(x > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA, x),
           lambda x, y, g: _where(x > 0, 0.0, y + _SELU_SCALE * _SELU_ALPHA, x),
           "λ (x > 0), y + λα", "0 (x > 0), y + λα",
           functions=(F.selu, torch.selu), modules=(nn.SELU,)),
    _unary("softplus", _softplus, _softplus2, "σ(βx) (βx ≤ threshold, else 1)",
           "β σ(βx)(1 − σ(βx)) (βx ≤ threshold, else 0)",
           functions=(F.softplus,), modules=(nn.Softplus,),
           spec=(("beta", 1.0), ("threshold", 20.0))),
    _unary("silu", _silu, _silu2,
           "s(1 + x(1 − s)), s = σ(x)", "s(1 − s)(2 + x(1 − 2s))",
           functions=(F.silu,), modules=(nn.SiLU,)),
    Rule("gelu", elementwise(_gelu, _gelu2, _gelu_options), "Φ(x) + x φ(x) (tanh form: its "
         "derivative)", "φ(x)(2 − x²) (tanh form: its derivative)", functions=(F.gelu,),
         modules=(nn.GELU,), check=only_first_live, kind="element-wise"),
    _unary("mish", _mish, _mish2, "t + x(1 − t²)σ(x), t = tanh(softplus x)",
           "(1 − t²)σ(x)(2 + x(1 − σ(x) − 2tσ(x)))", functions=(F.mish,), modules=(nn.Mish,)),
    _unary("logsigmoid", lambda x, y: torch.sigmoid(-x),
           lambda x, y, g: -g * (1.0 - g), "σ(−x)", "−σ(x)(1 − σ(x))",
           functions=(F.logsigmoid,), modules=(nn.LogSigmoid,)),
    _unary("softsign", lambda x, y: 1.0 / (1.0 + x.abs()) ** 2,
           lambda x, y, g: -2.0 * torch.sgn(x) / (1.0 + x.abs()) ** 3,
           "1/(1 + |x|)²", "−2 sign(x)/(1 + |x|)³", functions=(F.softsign,),
           modules=(nn.Softsign,)),
    _unary("hardtanh",
           lambda x, y, min_val, max_val: ((x > min_val) & (x < max_val)).to(x.dtype), None,
           "[min < x < max]", "0", functions=(F.hardtanh,), modules=(nn.Hardtanh, nn.ReLU6),
           spec=(("min_val", -1.0), ("max_val", 1.0))),
    _unary("relu6", lambda x, y: ((x > 0) & (x < 6)).to(x.dtype), None, "[0 < x < 6]", "0",
           functions=(F.relu6,)),
    _unary("hardsigmoid", lambda x, y: ((x > -3) & (x < 3)).to(x.dtype) / 6.0, None,
           "1/6 (|x| < 3)", "0", functions=(F.hardsigmoid,), modules=(nn.Hardsigmoid,)),
    _unary("hardswish",
           _hardswish,
           lambda x, y, g: ((x > -3) & (x < 3)).to(x.dtype) / 3.0,
           "0 (x < −3), x/3 + 1/2 (|x| ≤ 3), 1", "1/3 (|x| < 3)",
           functions=(F.hardswish,), modules=(nn.Hardswish,)),
    _unary("continuous_bernoulli_embedding",
           lambda x, y: continuous_bernoulli_variance(x).sqrt(),
           lambda x, y, g: continuous_bernoulli_variance_slope(x) / (2.0 * g),
           "√Var(x), Var(x) = 1/x² − 1/(4 sinh²(x/2))", "Var′(x)/(2√Var(x))",
           functions=(continuous_bernoulli_embedding,)),
    _unary("clamp", _clamp, None, "[min ≤ x ≤ max]", "0",
           functions=(torch.clamp, torch.clip), methods=("clamp", "clip"),
           spec=(("min", None), ("max", None))),
    _unary("clamp_min", lambda x, y, min: (x >= min).to(x.dtype), None, "[x ≥ min]", "0",
           methods=("clamp_min",), functions=(torch.clamp_min,), spec=(("min", None),)),
    _unary("clamp_max", lambda x, y, max: (x <= max).to(x.dtype), None, "[x ≤ max]", "0",
           methods=("clamp_max",), functions=(torch.clamp_max,), spec=(("max", None),)),
]  # fmt: skip
