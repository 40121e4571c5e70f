"""Examples of every entry of the forward-mode rule table, and the check each must pass:
value, first order (jvp) and second order (jvp of jvp) against torch.func, float64, to
1e-12, without the generic fallback. Used by the test module of each table
(``test_elementwise.py``, ``test_arithmetic.py``, ``test_shapes.py``, ``test_layers.py``);
``test_rules.py`` checks that every entry has an example and the tables share the keys out.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp

from latentgeo.metrics.continuous_bernoulli import continuous_bernoulli_embedding
from latentgeo.metrics.forward import TangentPropagator, TaylorPropagator, traced_graph
from latentgeo.metrics.forward.interpreter import Interpreter
from latentgeo.metrics.forward.rules import (
    FUNCTIONS,
    INPLACE_FUNCTIONS,
    METHODS,
    MODULES,
    Rule,
    function_name,
    module_name,
)

Op = Callable[["Case", Tensor], Any]
N = 4  # points


class Example:
    """An operation applied to ``x = pre(lin(z))`` of shape ``(N, *shape)``."""

    def __init__(
        self,
        op: Op,
        shape: tuple[int, ...] = (5,),
        domain: str = "real",
        layer: nn.Module | None = None,
        tol: float = 1e-12,
        reference: Op | None = None,
    ) -> None:
        self.op, self.shape, self.domain, self.layer, self.tol = op, shape, domain, layer, tol
        self.reference = reference  # the same map in plain operations, for the second order


class Case(nn.Module):
    def __init__(self, example: Example) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(7)
        size = math.prod(example.shape)
        self.lin = nn.Linear(3, size).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(size, 3, generator=gen, dtype=torch.float64))
            self.lin.bias.copy_(0.3 * torch.randn(size, generator=gen, dtype=torch.float64))
        self.example = example
        if example.layer is not None:
            self.layer = example.layer.double().eval()
        self.register_buffer("w", torch.randn(5, 4, generator=gen, dtype=torch.float64))
        self.register_buffer("bias", torch.randn(4, generator=gen, dtype=torch.float64))
        self.register_buffer("mask", torch.rand(N, 5, generator=gen) > 0.5)

    def forward(self, z: Tensor) -> Tensor:
        h = self.lin(z)
        x = torch.exp(0.5 * h) if self.example.domain == "positive" else h + 0.25 * h * h
        x = x.reshape(z.shape[0], *self.example.shape)
        y = self.example.op(self, x)
        if isinstance(y, (tuple, list)):
            y = torch.cat([p.reshape(1, -1) for p in y], -1)
        return y.reshape(1, -1).expand(z.shape[0], -1)


def _v(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (N, *shape)


# ------------------------------------------------------------------ examples by entry
def _unary(fn: Callable[..., Tensor], *args: Any, domain: str = "real", **kwargs: Any) -> Example:
    return Example(lambda s, x: fn(x, *args, **kwargs), domain=domain)


def _join(pieces: Any, k: int) -> Tensor:
    """Concatenate the ``k`` pieces of a tuple output (indexed: fx cannot iterate a proxy)."""
    return torch.cat([pieces[i].reshape(1, -1) for i in range(k)], -1)


# torch.func's second derivatives of layer_norm and instance_norm are wrong (torch 2.13:
# finite differences, group_norm and plain operations agree with each other, not with
# them; see test_normalisation_second_order_against_finite_differences): their
# second-order reference is the same normalisation written in plain operations.
def _normalised(x: Tensor, dims: tuple[int, ...], eps: float = 1e-5) -> Tensor:
    u = x - x.mean(dims, keepdim=True)
    return u / torch.sqrt((u * u).mean(dims, keepdim=True) + eps)


def _hardsigmoid(x: Tensor) -> Tensor:
    """torch.func cannot differentiate hardsigmoid twice, and its first derivative is 1/6 in
    single precision (relative error ~3e-8): the examples' tolerance is 1e-7."""
    return torch.clamp(x / 6.0 + 0.5, 0.0, 1.0)


POSITIVE = {"log", "sqrt", "rsqrt", "reciprocal", "log1p"}
W4 = torch.randn(2, 2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

FUNCTION_EXAMPLES: dict[Any, list[Example]] = {
    # torch.func differentiates the embedding's quadrature (within 2e-12 first, 3e-11 second
    # order, relative); the rule uses the closed forms. 3x reaches past |η| = 2 and 6.
    continuous_bernoulli_embedding: [
        Example(lambda s, x: continuous_bernoulli_embedding(3.0 * x), tol=1e-9)
    ],
    F.leaky_relu: [_unary(F.leaky_relu, 0.2)],
    F.elu: [_unary(F.elu, alpha=0.7)],
    # torch's own CELU derivative is off by ~1e-8 (relative): the reference is the loose side
    F.celu: [Example(lambda s, x: F.celu(x, alpha=0.8), tol=1e-7)],
    torch.celu: [Example(lambda s, x: torch.celu(x, 0.8), tol=1e-7)],
    F.softplus: [_unary(F.softplus, beta=2.0, threshold=1.0), _unary(F.softplus)],
    F.gelu: [_unary(F.gelu), _unary(F.gelu, approximate="tanh")],
    F.hardtanh: [_unary(F.hardtanh, -0.5, 0.7)],
    torch.clamp: [_unary(torch.clamp, min=-0.5, max=0.8), _unary(torch.clamp, -0.2)],
    torch.clip: [_unary(torch.clip, -0.5, 0.8)],
    torch.clamp_min: [_unary(torch.clamp_min, 0.1)],
    torch.clamp_max: [_unary(torch.clamp_max, 0.2)],
    operator.add: [Example(lambda s, x: x + x[:, :1] * x), Example(lambda s, x: 1.0 + x)],
    torch.add: [Example(lambda s, x: torch.add(x, x * x))],
    operator.sub: [Example(lambda s, x: x - x[:, :1] * x), Example(lambda s, x: 2.0 - x)],
    torch.sub: [Example(lambda s, x: torch.sub(x * x, x))],
    operator.neg: [Example(lambda s, x: -x)],
    torch.neg: [Example(lambda s, x: torch.neg(x))],
    operator.pos: [Example(lambda s, x: +x)],
    operator.mul: [Example(lambda s, x: x * x[:, :1]), Example(lambda s, x: 3.0 * x)],
    torch.mul: [Example(lambda s, x: torch.mul(x, x))],
    operator.truediv: [
        Example(lambda s, x: x / (1.0 + x[:, :1] * x[:, :1])),
        Example(lambda s, x: 2.0 / x, domain="positive"),
        Example(lambda s, x: x / 3.0),
    ],
    torch.div: [Example(lambda s, x: torch.div(x, x + 3.0), domain="positive")],
    torch.true_divide: [Example(lambda s, x: torch.true_divide(x, 2.0))],
    operator.pow: [
        Example(lambda s, x: x**3 + x**2 + x**1),
        Example(lambda s, x: x**0.5, domain="positive"),
        Example(lambda s, x: 2.0**x),
    ],
    torch.pow: [Example(lambda s, x: torch.pow(x, 2.5), domain="positive")],
    operator.matmul: [
        Example(lambda s, x: x @ s.w),
        Example(lambda s, x: x.reshape(N, 5, 1) @ x.reshape(N, 1, 5)),
        Example(lambda s, x: x[0] @ s.w),
    ],
    torch.matmul: [Example(lambda s, x: torch.matmul(x, s.w))],
    torch.mm: [Example(lambda s, x: torch.mm(x, s.w))],
    torch.bmm: [Example(lambda s, x: torch.bmm(x.reshape(N, 5, 1), x.reshape(N, 1, 5)))],
    F.linear: [Example(lambda s, x: F.linear(x, s.w.T, s.bias))],
    torch.where: [Example(lambda s, x: torch.where(x > 0, x, x * x))],
    torch.masked_fill: [Example(lambda s, x: torch.masked_fill(x, s.mask, 0.5))],
    torch.sum: [
        Example(lambda s, x: torch.sum(x, -1, keepdim=True)),
        Example(lambda s, x: torch.sum(x)),
    ],
    torch.mean: [Example(lambda s, x: torch.mean(x, dim=(0, 1)))],
    F.softmax: [Example(lambda s, x: F.softmax(x, dim=-1))],
    torch.softmax: [Example(lambda s, x: torch.softmax(x, 1))],
    F.log_softmax: [Example(lambda s, x: F.log_softmax(x, dim=-1))],
    torch.log_softmax: [Example(lambda s, x: torch.log_softmax(x, 1))],
    torch.logsumexp: [
        Example(lambda s, x: torch.logsumexp(x, 1)),
        Example(lambda s, x: torch.logsumexp(x, -1, keepdim=True)),
    ],
    torch.reshape: [Example(lambda s, x: torch.reshape(x, (N, 5, 1)))],
    torch.flatten: [Example(lambda s, x: torch.flatten(x, 1), shape=(2, 3))],
    torch.unflatten: [Example(lambda s, x: torch.unflatten(x, 1, (5, 1)))],
    torch.squeeze: [Example(lambda s, x: torch.squeeze(x, 1), shape=(1, 5))],
    torch.unsqueeze: [Example(lambda s, x: torch.unsqueeze(x, 1))],
    torch.clone: [Example(lambda s, x: torch.clone(x))],
    torch.ravel: [Example(lambda s, x: torch.ravel(x))],
    torch.transpose: [Example(lambda s, x: torch.transpose(x, 1, 2), shape=(2, 3))],
    torch.swapaxes: [Example(lambda s, x: torch.swapaxes(x, 0, 2), shape=(2, 3))],
    torch.swapdims: [Example(lambda s, x: torch.swapdims(x, -1, 1), shape=(2, 3))],
    torch.t: [Example(lambda s, x: torch.t(x))],
    getattr: [
        Example(lambda s, x: x.T),
        Example(lambda s, x: x.mT, shape=(2, 3)),
        Example(lambda s, x: torch.topk(x, 2).values + x.max(1).values[:, None]),
    ],
    torch.permute: [Example(lambda s, x: torch.permute(x, (2, 0, 1)), shape=(2, 3))],
    torch.broadcast_to: [Example(lambda s, x: torch.broadcast_to(x, (2, N, 5)))],
    operator.getitem: [
        Example(lambda s, x: x[:, 1:4] + x[..., None, 0] + x[:, None, 2].flatten(1)),
        Example(lambda s, x: x[:, torch.tensor([0, 2, 2])]),
        Example(lambda s, x: x[:, 0, torch.tensor([1, 3])], shape=(2, 5)),
    ],
    torch.cat: [Example(lambda s, x: torch.cat([x, x * x, torch.ones_like(x)], dim=1))],
    torch.concat: [Example(lambda s, x: torch.concat([x, 2 * x], -1))],
    torch.concatenate: [Example(lambda s, x: torch.concatenate([x, 2 * x], 0))],
    torch.stack: [Example(lambda s, x: torch.stack([x, torch.zeros_like(x), x * x], dim=-1))],
    torch.broadcast_tensors: [
        Example(
            lambda s, x: _join(
                torch.broadcast_tensors(x.reshape(N, 5, 1), x[:, :2].reshape(N, 1, 2)), 2
            )
        )
    ],
    torch.chunk: [Example(lambda s, x: _join(torch.chunk(x, 2, dim=1), 2))],
    torch.split: [
        Example(lambda s, x: _join(torch.split(x, [2, 3], 1), 2)),
        Example(lambda s, x: torch.split(x, 2)[1]),
    ],
    torch.tensor_split: [Example(lambda s, x: _join(torch.tensor_split(x, 3, dim=1), 3))],
    torch.unbind: [
        Example(lambda s, x: _join(torch.unbind(x), N)),
        Example(lambda s, x: _join(torch.unbind(x, 1), 5)),
    ],
    torch.flip: [Example(lambda s, x: torch.flip(x, [0, 1]))],
    torch.max: [Example(lambda s, x: _join(torch.max(x, 1), 1))],
    torch.min: [Example(lambda s, x: torch.min(x, dim=0, keepdim=True).values)],
    torch.topk: [
        Example(lambda s, x: torch.topk(x, 2)[0]),
        Example(lambda s, x: torch.topk(x, 1, 0).values),
    ],
    torch.sort: [Example(lambda s, x: torch.sort(x, descending=True).values)],
    torch.roll: [
        Example(lambda s, x: torch.roll(x, 2, 1)),
        Example(lambda s, x: torch.roll(x, (1, 2), (0, 1))),
    ],
    torch.narrow: [Example(lambda s, x: torch.narrow(x, 1, 1, 3))],
    torch.select: [Example(lambda s, x: torch.select(x, 1, 2))],
    F.pad: [
        Example(lambda s, x: F.pad(x, (1, 2), value=3.0)),
        Example(lambda s, x: F.pad(x, (2, 1), mode="reflect"), shape=(2, 5)),
        Example(lambda s, x: F.pad(x, (1, 1, 2, 0), mode="replicate"), shape=(2, 3, 4)),
    ],
    F.interpolate: [
        Example(lambda s, x: F.interpolate(x, scale_factor=2, mode="nearest"), shape=(2, 3, 3)),
        Example(lambda s, x: F.interpolate(x, size=(5, 4), mode="bilinear"), shape=(2, 3, 3)),
    ],
    F.avg_pool1d: [Example(lambda s, x: F.avg_pool1d(x, 2), shape=(2, 6))],
    F.avg_pool2d: [Example(lambda s, x: F.avg_pool2d(x, 2, padding=1), shape=(2, 4, 4))],
    F.avg_pool3d: [Example(lambda s, x: F.avg_pool3d(x, 2), shape=(1, 2, 4, 4))],
    F.adaptive_avg_pool1d: [Example(lambda s, x: F.adaptive_avg_pool1d(x, 3), shape=(2, 6))],
    F.adaptive_avg_pool2d: [Example(lambda s, x: F.adaptive_avg_pool2d(x, 2), shape=(2, 4, 4))],
    F.adaptive_avg_pool3d: [Example(lambda s, x: F.adaptive_avg_pool3d(x, 1), shape=(1, 2, 2, 2))],
    F.pixel_shuffle: [Example(lambda s, x: F.pixel_shuffle(x, 2), shape=(4, 2, 2))],
    F.pixel_unshuffle: [Example(lambda s, x: F.pixel_unshuffle(x, 2), shape=(1, 4, 4))],
    F.conv1d: [Example(lambda s, x: F.conv1d(x, W4, s.bias[:2], padding=1), shape=(2, 6))],
    F.conv2d: [Example(lambda s, x: F.conv2d(x, W4[..., None], None, 1, "same"), shape=(2, 4, 4))],
    F.conv3d: [
        Example(lambda s, x: F.conv3d(x, W4[..., None, None], stride=2), shape=(2, 4, 3, 3))
    ],
    F.conv_transpose1d: [
        Example(lambda s, x: F.conv_transpose1d(x, W4, s.bias[:2], 2), shape=(2, 3))
    ],
    F.conv_transpose2d: [
        Example(lambda s, x: F.conv_transpose2d(x, W4[..., None], padding=(1, 0)), shape=(2, 3, 3))
    ],
    F.conv_transpose3d: [
        Example(
            lambda s, x: F.conv_transpose3d(x, W4[..., None, None], groups=1), shape=(2, 2, 2, 1)
        )
    ],
    F.batch_norm: [
        Example(
            lambda s, x: F.batch_norm(
                x, s.bias[:2], s.w[0, :2].abs(), s.w[1, :2], s.bias[:2], False, 0.1, 1e-3
            ),
            shape=(2, 3),
        )
    ],
    F.layer_norm: [
        Example(
            lambda s, x: F.layer_norm(x, (2, 3), s.w[:2, :3], s.w[2:4, :3]),
            shape=(2, 2, 3),
            reference=lambda s, x: _normalised(x, (-2, -1)) * s.w[:2, :3] + s.w[2:4, :3],
        )
    ],
    F.group_norm: [Example(lambda s, x: F.group_norm(x, 2, s.bias, s.w[0]), shape=(4, 3))],
    F.instance_norm: [
        Example(
            lambda s, x: F.instance_norm(x, weight=s.bias[:2]),
            shape=(2, 5),
            reference=lambda s, x: _normalised(x, (-1,)) * s.bias[:2, None],
        ),
        Example(
            lambda s, x: F.instance_norm(x, s.bias[:2], s.w[0, :2].abs(), use_input_stats=False),
            shape=(2, 5),
        ),
    ],
    F.dropout: [Example(lambda s, x: F.dropout(x, 0.5, training=False))],
    F.dropout1d: [Example(lambda s, x: F.dropout1d(x, 0.5, False), shape=(2, 3))],
    F.dropout2d: [Example(lambda s, x: F.dropout2d(x, 0.5, False), shape=(2, 3, 2))],
    F.hardsigmoid: [
        Example(lambda s, x: F.hardsigmoid(x), reference=lambda s, x: _hardsigmoid(x), tol=1e-7)
    ],
    F.dropout3d: [Example(lambda s, x: F.dropout3d(x, 0.5, False), shape=(2, 3, 2, 1))],
    F.alpha_dropout: [Example(lambda s, x: F.alpha_dropout(x, 0.5))],
    F.feature_alpha_dropout: [Example(lambda s, x: F.feature_alpha_dropout(x, 0.5), shape=(2, 3))],
}


def _method(name: str, *args: Any, shape: tuple[int, ...] = (5,), domain: str = "real") -> Example:
    return Example(lambda s, x: getattr(x, name)(*args), shape=shape, domain=domain)


METHOD_EXAMPLES: dict[str, list[Example]] = {
    "add": [_method("add", 2.0), Example(lambda s, x: x.add(x * x))],
    "sub": [Example(lambda s, x: x.sub(x * x))],
    "subtract": [_method("subtract", 1.0)],
    "neg": [_method("neg")],
    "negative": [_method("negative")],
    "positive": [_method("positive")],
    "mul": [Example(lambda s, x: x.mul(x))],
    "multiply": [_method("multiply", 2.0)],
    "div": [Example(lambda s, x: x.div(x * x + 1.0))],
    "divide": [_method("divide", 2.0)],
    "true_divide": [Example(lambda s, x: x.true_divide(2.0 + x * x))],
    "pow": [_method("pow", 3), _method("pow", 0.7, domain="positive")],
    "matmul": [Example(lambda s, x: x.matmul(s.w))],
    "mm": [Example(lambda s, x: x.mm(s.w))],
    "bmm": [Example(lambda s, x: x.reshape(N, 1, 5).bmm(x.reshape(N, 5, 1)))],
    "masked_fill": [Example(lambda s, x: x.masked_fill(s.mask, 0.0))],
    "sum": [_method("sum"), _method("sum", 1), _method("sum", (0, 1), True)],
    "mean": [_method("mean", -1)],
    "softmax": [_method("softmax", -1)],
    "log_softmax": [_method("log_softmax", 1)],
    "logsumexp": [_method("logsumexp", 0)],
    "clamp": [_method("clamp", -0.3, 0.6)],
    "clip": [_method("clip", None, 0.6)],
    "clamp_min": [_method("clamp_min", 0.0)],
    "clamp_max": [_method("clamp_max", 0.3)],
    "view": [_method("view", N, 1, 5)],
    "reshape": [_method("reshape", -1)],
    "flatten": [_method("flatten", shape=(2, 3))],
    "unflatten": [_method("unflatten", 1, (5, 1))],
    "squeeze": [_method("squeeze", shape=(1, 5))],
    "unsqueeze": [_method("unsqueeze", -1)],
    "view_as": [Example(lambda s, x: x.reshape(N * 5).view_as(x))],
    "reshape_as": [Example(lambda s, x: x.reshape_as(x.reshape(N, 5, 1)))],
    "contiguous": [Example(lambda s, x: x.mT.contiguous(), shape=(2, 3))],
    "clone": [_method("clone")],
    "ravel": [_method("ravel")],
    "to": [_method("to", torch.float32), _method("to", torch.float64)],
    "type_as": [Example(lambda s, x: x.type_as(s.w))],
    "float": [_method("float")],
    "double": [_method("double")],
    "type": [_method("type", torch.float32)],
    "transpose": [_method("transpose", 0, 1)],
    "swapaxes": [_method("swapaxes", 1, 2, shape=(2, 3))],
    "swapdims": [_method("swapdims", 0, 2, shape=(2, 3))],
    "t": [_method("t")],
    "permute": [_method("permute", 1, 0), _method("permute", [2, 1, 0], shape=(2, 3))],
    "expand": [_method("expand", 3, N, 5)],
    "expand_as": [Example(lambda s, x: x[:, :1].expand_as(x))],
    "chunk": [Example(lambda s, x: _join(x.chunk(3, 1), 3))],
    "split": [Example(lambda s, x: _join(x.split(2, 1), 3))],
    "tensor_split": [Example(lambda s, x: _join(x.tensor_split([1, 3], 1), 3))],
    "unbind": [Example(lambda s, x: _join(x.unbind(1), 5))],
    "repeat": [_method("repeat", 2, 1), _method("repeat", 2, 1, 3)],
    "flip": [_method("flip", 1), _method("flip", [0, 1])],
    "max": [Example(lambda s, x: x.max(-1)[0])],
    "min": [Example(lambda s, x: x.min(1, True).values)],
    "topk": [Example(lambda s, x: x.topk(3, dim=1, largest=False).values)],
    "sort": [Example(lambda s, x: x.sort(0)[0])],
    "roll": [_method("roll", 1, 1)],
    "narrow": [_method("narrow", 1, 0, 2)],
    "select": [_method("select", 0, 1)],
}
for _name, _rule in METHODS.items():
    if _rule.kind == "element-wise" and _name not in METHOD_EXAMPLES:
        METHOD_EXAMPLES[_name] = [
            _method(_name, domain="positive" if _name in POSITIVE else "real")
        ]


def _layer(layer: nn.Module, shape: tuple[int, ...] = (5,), domain: str = "real") -> Example:
    return Example(lambda s, x: s.layer(x), shape=shape, domain=domain, layer=layer)


def _batch_norm(cls: type[nn.Module], shape: tuple[int, ...]) -> nn.Module:
    bn = cls(shape[0], eps=1e-3)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(shape[0], generator=gen))
        bn.running_var.copy_(torch.rand(shape[0], generator=gen) + 0.5)
        bn.weight.copy_(torch.randn(shape[0], generator=gen))
    return bn


def _instance_norm_with_statistics() -> nn.Module:
    norm = nn.InstanceNorm2d(2, affine=True, track_running_stats=True)
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([0.3, -0.2]))
        norm.running_var.copy_(torch.tensor([0.7, 1.3]))
        norm.weight.copy_(torch.tensor([1.5, -0.5]))
    return norm


MODULE_EXAMPLES: dict[type[nn.Module], list[Example]] = {
    nn.Linear: [_layer(nn.Linear(5, 7))],
    nn.Conv1d: [_layer(nn.Conv1d(2, 3, 3, padding=1, dilation=1), (2, 6))],
    nn.Conv2d: [
        _layer(nn.Conv2d(2, 4, 3, stride=2, groups=2), (2, 5, 5)),
        _layer(nn.Conv2d(2, 2, 3, padding="same"), (2, 4, 4)),
    ],
    nn.Conv3d: [_layer(nn.Conv3d(2, 2, 2), (2, 3, 3, 2))],
    nn.ConvTranspose1d: [_layer(nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1), (2, 4))],
    nn.ConvTranspose2d: [_layer(nn.ConvTranspose2d(2, 2, 4, 2, 1), (2, 3, 3))],
    nn.ConvTranspose3d: [_layer(nn.ConvTranspose3d(2, 1, 2, stride=2), (2, 2, 2, 1))],
    nn.Upsample: [
        _layer(nn.Upsample(scale_factor=2), (2, 3, 3)),
        _layer(nn.Upsample(size=(5, 4), mode="bilinear", align_corners=True), (2, 3, 3)),
    ],
    nn.UpsamplingNearest2d: [_layer(nn.UpsamplingNearest2d(scale_factor=2), (1, 2, 3))],
    nn.UpsamplingBilinear2d: [_layer(nn.UpsamplingBilinear2d(scale_factor=2), (1, 2, 3))],
    nn.AvgPool1d: [_layer(nn.AvgPool1d(2), (2, 6))],
    nn.AvgPool2d: [_layer(nn.AvgPool2d(2, count_include_pad=False, padding=1), (2, 3, 3))],
    nn.AvgPool3d: [_layer(nn.AvgPool3d(2), (1, 2, 2, 4))],
    nn.AdaptiveAvgPool1d: [_layer(nn.AdaptiveAvgPool1d(4), (2, 6))],
    nn.AdaptiveAvgPool2d: [_layer(nn.AdaptiveAvgPool2d((2, 3)), (2, 4, 5))],
    nn.AdaptiveAvgPool3d: [_layer(nn.AdaptiveAvgPool3d(1), (1, 2, 2, 3))],
    nn.PixelShuffle: [_layer(nn.PixelShuffle(2), (4, 2, 3))],
    nn.PixelUnshuffle: [_layer(nn.PixelUnshuffle(2), (1, 4, 2))],
    nn.BatchNorm1d: [
        _layer(_batch_norm(nn.BatchNorm1d, (5,)), (5,)),
        _layer(_batch_norm(nn.BatchNorm1d, (2, 3)), (2, 3)),
    ],
    nn.BatchNorm2d: [_layer(_batch_norm(nn.BatchNorm2d, (2, 3, 3)), (2, 3, 3))],
    nn.BatchNorm3d: [_layer(_batch_norm(nn.BatchNorm3d, (2, 2, 2, 2)), (2, 2, 2, 2))],
    nn.LayerNorm: [
        Example(
            lambda s, x: s.layer(x),
            layer=nn.LayerNorm(5),
            reference=lambda s, x: _normalised(x, (-1,)) * s.layer.weight + s.layer.bias,
        ),
        Example(
            lambda s, x: s.layer(x),
            (2, 2, 3),
            layer=nn.LayerNorm((2, 3), bias=False),
            reference=lambda s, x: _normalised(x, (-2, -1)) * s.layer.weight,
        ),
    ],
    nn.GroupNorm: [
        _layer(nn.GroupNorm(2, 4), (4, 3)),
        _layer(nn.GroupNorm(1, 2, affine=False), (2, 2, 2)),
    ],
    nn.InstanceNorm1d: [
        Example(
            lambda s, x: s.layer(x),
            (2, 5),
            layer=nn.InstanceNorm1d(2, affine=True),
            reference=lambda s, x: (
                _normalised(x, (-1,)) * s.layer.weight[:, None] + s.layer.bias[:, None]
            ),
        )
    ],
    nn.InstanceNorm2d: [
        Example(
            lambda s, x: s.layer(x),
            (2, 3, 3),
            layer=nn.InstanceNorm2d(2),
            reference=lambda s, x: _normalised(x, (-2, -1)),
        ),
        _layer(_instance_norm_with_statistics(), (2, 3, 3)),
    ],
    nn.InstanceNorm3d: [
        Example(
            lambda s, x: s.layer(x),
            (1, 2, 2, 2),
            layer=nn.InstanceNorm3d(1),
            reference=lambda s, x: _normalised(x, (-3, -2, -1)),
        )
    ],
    nn.Hardsigmoid: [
        Example(
            lambda s, x: s.layer(x),
            layer=nn.Hardsigmoid(),
            reference=lambda s, x: _hardsigmoid(x),
            tol=1e-7,
        )
    ],
    nn.Dropout1d: [_layer(nn.Dropout1d(), (2, 3))],
    nn.Dropout2d: [_layer(nn.Dropout2d(), (2, 3, 2))],
    nn.Dropout3d: [_layer(nn.Dropout3d(), (2, 3, 2, 1))],
    nn.Flatten: [_layer(nn.Flatten(), (2, 3))],
    nn.Unflatten: [_layer(nn.Unflatten(1, (5, 1)))],
    nn.Identity: [_layer(nn.Identity())],
    nn.ZeroPad1d: [_layer(nn.ZeroPad1d((1, 2)), (2, 3))],
    nn.ZeroPad2d: [_layer(nn.ZeroPad2d(1), (1, 2, 3))],
    nn.ZeroPad3d: [_layer(nn.ZeroPad3d(1), (1, 2, 1, 2))],
    nn.ConstantPad1d: [_layer(nn.ConstantPad1d(2, 3.5), (2, 3))],
    nn.ConstantPad2d: [_layer(nn.ConstantPad2d((1, 0, 0, 1), -1.0), (1, 2, 3))],
    nn.ConstantPad3d: [_layer(nn.ConstantPad3d(1, 2.0), (1, 1, 2, 2))],
    nn.Softmax: [_layer(nn.Softmax(dim=-1))],
    nn.LogSoftmax: [_layer(nn.LogSoftmax(dim=1))],
    nn.LeakyReLU: [_layer(nn.LeakyReLU(0.3)), _layer(nn.LeakyReLU(inplace=True))],
    nn.ELU: [_layer(nn.ELU(0.6)), _layer(nn.ELU(inplace=True))],
    nn.CELU: [Example(lambda s, x: s.layer(x), layer=nn.CELU(0.7), tol=1e-7)],
    nn.Softplus: [_layer(nn.Softplus(beta=2.0, threshold=1.0)), _layer(nn.Softplus())],
    nn.GELU: [_layer(nn.GELU()), _layer(nn.GELU("tanh"))],
    nn.Hardtanh: [_layer(nn.Hardtanh(-0.4, 0.6))],
    nn.ReLU: [_layer(nn.ReLU()), _layer(nn.ReLU(inplace=True))],
    nn.ReLU6: [_layer(nn.ReLU6())],
    nn.RReLU: [_layer(nn.RReLU(0.1, 0.3))],
}
for _cls, _rule in MODULES.items():
    if _cls not in MODULE_EXAMPLES:
        MODULE_EXAMPLES[_cls] = [_layer(_cls())]
for _fn, _rule in FUNCTIONS.items():
    if _rule.kind == "element-wise" and _fn not in FUNCTION_EXAMPLES:
        name = _rule.name
        FUNCTION_EXAMPLES[_fn] = [_unary(_fn, domain="positive" if name in POSITIVE else "real")]
INPLACE_ARGS: dict[str, tuple[Any, ...]] = {
    "clamp": (-0.5, 0.8),
    "clamp_min": (0.1,),
    "clamp_max": (0.2,),
    "hardtanh": (-0.5, 0.7),
    "pow": (3,),
}


def _inplace(fn: Callable[..., Any], args: tuple[Any, ...]) -> Op:
    """``fn`` writes into a view of ``x`` that nothing else reads; ``x`` itself stays."""

    def op(s: Case, x: Tensor) -> Tensor:
        y = (x * 1.0).reshape(N, 1, -1)
        fn(y, *args)
        return y.flatten(1) * x

    return op


for _inplace_fn, _fn in INPLACE_FUNCTIONS.items():
    _name = FUNCTIONS[_fn].name
    FUNCTION_EXAMPLES[_inplace_fn] = [
        Example(
            _inplace(_inplace_fn, INPLACE_ARGS.get(_name, ())),
            domain="positive" if _name in POSITIVE else "real",
        )
    ]


def _inplace_method(name: str, args: tuple[Any, ...], live_other: bool) -> Op:
    def op(s: Case, x: Tensor) -> Tensor:
        y = (x * 1.0).reshape(N, 1, -1)
        other = (0.5 + x * x).reshape(N, 1, -1)
        getattr(y, name)(*((other,) if live_other else args))
        return y.flatten(1) * x

    return op


_BINARY = ("add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide")
for _name, _rule in METHODS.items():
    if hasattr(Tensor, _name + "_") and (_rule.kind == "element-wise" or _name in _BINARY):
        METHOD_EXAMPLES[_name + "_"] = [
            Example(
                _inplace_method(_name + "_", INPLACE_ARGS.get(_rule.name, ()), _name in _BINARY),
                domain="positive" if _name in POSITIVE else "real",
            )
        ]


def keys() -> list[tuple[str, Any]]:
    keys: list[tuple[str, Any]] = [("function", fn) for fn in FUNCTIONS]
    keys += [("function", fn) for fn in INPLACE_FUNCTIONS]
    keys += [("method", name) for name in METHODS]
    keys += [("method", name) for name in METHOD_EXAMPLES if name.endswith("_")]
    keys += [("module", cls) for cls in MODULES]
    return keys


def key_id(key: tuple[str, Any]) -> str:
    kind, target = key
    if kind == "function":
        return function_name(target)
    if kind == "method":
        return f"Tensor.{target}"
    return module_name(target)


def examples(key: tuple[str, Any]) -> list[Example]:
    kind, target = key
    table: dict[Any, list[Example]] = {
        "function": FUNCTION_EXAMPLES,
        "method": METHOD_EXAMPLES,
        "module": MODULE_EXAMPLES,
    }[kind]
    return table.get(target, [])


def _traces_to(module: Case, key: tuple[str, Any]) -> bool:
    trace = traced_graph(module)
    assert trace is not None
    kind, target = key
    for node in trace.graph.nodes:
        if kind == "function" and node.op == "call_function" and node.target is target:
            return True
        if kind == "method" and node.op == "call_method" and node.target == target:
            return True
        if kind == "module" and node.op == "call_module":
            if type(module.get_submodule(str(node.target))) is target:
                return True
    return False


def _second_order_reference(example: Example, module: Case, z: Tensor, v: Tensor) -> Tensor:
    """``∂²f[v, v]`` by jvp of jvp, on the plain-operation twin of the example if it has one."""
    g: nn.Module = module
    if example.reference is not None:
        g = Case(Example(example.reference, example.shape, example.domain, example.layer))
        torch.testing.assert_close(g(z), module(z), rtol=1e-12, atol=1e-12)
    return jvp(lambda x: jvp(g, (x,), (v,))[1], (z,), (v,))[1]


def check_rule(key: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry ``key`` on all its examples: traced to its node, exact to their tolerance."""

    def no_fallback(*args: object, **kwargs: object) -> Tensor:
        raise AssertionError(f"{key_id(key)}: the generic torch.func path was used")

    monkeypatch.setattr(Interpreter, "_generic", no_fallback)
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(N, 3, generator=gen, dtype=torch.float64)
    tangents = torch.randn(3, N, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(N, 3, generator=gen, dtype=torch.float64)
    for example in examples(key):
        module = Case(example)
        assert _traces_to(module, key), f"{key_id(key)} is not a node of its example's trace"
        out, pushed = TangentPropagator(module)(z, tangents)
        flat, cols, second = TaylorPropagator(module)(z, tangents, v)

        def f(x: Tensor, module: Case = module) -> Tensor:
            return module(x)

        reference = torch.stack([jvp(f, (z,), (t,))[1] for t in tangents])
        nested = _second_order_reference(example, module, z, v)
        tol = {"rtol": example.tol, "atol": example.tol}
        torch.testing.assert_close(out, module(z), **tol)
        torch.testing.assert_close(pushed, reference, **tol)
        torch.testing.assert_close(flat, module(z), **tol)
        torch.testing.assert_close(cols, reference, **tol)
        torch.testing.assert_close(second, nested, **tol)


def rule_of(key: tuple[str, Any]) -> Rule:
    """The table entry a key is served by (an in-place call: its out-of-place rule)."""
    kind, target = key
    if kind == "function":
        return FUNCTIONS[INPLACE_FUNCTIONS.get(target, target)]
    if kind == "method":
        return METHODS[target] if target in METHODS else METHODS[target.removesuffix("_")]
    return MODULES[target]


def keys_of(table: tuple[Rule, ...]) -> list[tuple[str, Any]]:
    """The keys (functions, methods, modules) whose rules are entries of ``table``."""
    return [key for key in keys() if any(rule_of(key) is rule for rule in table)]
