"""Layer rules: linear and convolution layers, resampling, pooling, normalisation, dropout.

Linear layers, convolutions (zero padding), up-sampling, average pooling,
pixel shuffles and batch normalisation in eval mode are linear (affine) in
their input: ``ẏ = A ẋ``, ``ÿ = A ẍ``, with ``A`` the layer without its bias
(the ``K`` tangents are folded into the batch dimension). Layer, group and
instance normalisation are not linear: their jets are composed from the exact
jets of centring, the variance, ``rsqrt`` and the product (:func:`_normalise`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo.metrics.forward.jet import (
    Call,
    Jet,
    Rule,
    Site,
    elementwise,
    jet_map,
    linear,
    product,
)
from latentgeo.metrics.forward.transposed import (
    channels_last_conv_transpose2d,
    conv_transpose2d_by_product,
    use_channels_last,
    use_product,
)

__all__ = ["LAYERS", "TrainingModeError", "random_in_training"]

_CONV: dict[type[nn.Module], Callable[..., Tensor]] = {
    nn.Conv1d: F.conv1d,
    nn.Conv2d: F.conv2d,
    nn.Conv3d: F.conv3d,
}
_CONV_T: dict[type[nn.Module], Callable[..., Tensor]] = {
    nn.ConvTranspose1d: F.conv_transpose1d,
    nn.ConvTranspose2d: F.conv_transpose2d,
    nn.ConvTranspose3d: F.conv_transpose3d,
}
_SPATIAL: dict[Any, int] = {
    F.conv1d: 1, F.conv2d: 2, F.conv3d: 3,
    F.conv_transpose1d: 1, F.conv_transpose2d: 2, F.conv_transpose3d: 3,
    nn.InstanceNorm1d: 1, nn.InstanceNorm2d: 2, nn.InstanceNorm3d: 3,
    nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3,
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3,
    F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3,
    nn.PixelShuffle: 2, nn.PixelUnshuffle: 2, F.pixel_shuffle: 2, F.pixel_unshuffle: 2,
}  # fmt: skip


class TrainingModeError(ValueError):
    """A layer whose output is random or depends on the batch in training mode was met in
    training mode (call ``decoder.eval()``)."""


def _fold(fn: Callable[[Tensor], Tensor], t: Tensor, x: Tensor, spatial: int) -> Tensor:
    """Apply a batched layer to tangents ``(K, *x.shape)``: K is folded into the batch
    dimension of a batched ``x``, and is the batch of an unbatched one."""
    if x.ndim == spatial + 2:
        return fn(t.flatten(0, 1)).unflatten(0, t.shape[:2])
    return fn(t)


def _weights_constant(site: Site) -> str | None:
    if any(site.live(a) for a in site.args[1:]) or any(site.live(v) for v in site.kwargs.values()):
        return "a weight or parameter depends on the input"
    return None


def _single_input(site: Site) -> str | None:
    return None if len(site.args) == 1 and not site.kwargs else "several inputs"


def _padding_zeros(site: Site) -> str | None:
    if len(site.args) != 1 or site.kwargs:
        return "several inputs"
    mode = getattr(site.module, "padding_mode", "zeros")
    return None if mode == "zeros" else f"padding_mode={mode!r}"


# ------------------------------------------------------------------ linear layers
def _linear_module(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    module: Any = call.module
    return F.linear(ts[0], module.weight)


def _conv_module(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    m: Any = call.module
    kind = type(m)
    if kind in _CONV:
        fn = _CONV[kind]

        def apply(t: Tensor) -> Tensor:
            return fn(t, m.weight, None, m.stride, m.padding, m.dilation, m.groups)

    else:
        fn = _CONV_T[kind]

        def apply(t: Tensor) -> Tensor:
            if kind is nn.ConvTranspose2d and use_product(t, m.weight, m.groups, m.dilation):
                return conv_transpose2d_by_product(
                    t, m.weight, m.stride, m.padding, m.output_padding
                )  # torch's CPU kernel is slow with few output channels
            if kind is nn.ConvTranspose2d and use_channels_last(t):
                return channels_last_conv_transpose2d(t, m, bias=False)
            return fn(
                t, m.weight, None, m.stride, m.padding, m.output_padding, m.groups, m.dilation
            )

    return _fold(apply, ts[0], call.args[0], len(m.kernel_size))


def _functional(fn: Callable[..., Tensor], bias_at: int | None = None) -> Any:
    """A rule for a functional layer ``fn(x, *args)`` linear in ``x``; a bias (the argument
    ``bias_at`` after ``x``, or ``bias=``) is dropped: it shifts the output, not its tangent."""

    def apply(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
        args = list(call.args[1:])
        kwargs = dict(call.kwargs)
        if bias_at is not None:
            if len(args) > bias_at:
                args[bias_at] = None
            kwargs.pop("bias", None)
        spatial = _SPATIAL.get(fn, call.args[0].ndim - 2)
        return _fold(lambda t: fn(t, *args, **kwargs), ts[0], call.args[0], spatial)

    return apply


def _parameterless(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    """A module without parameters that is linear in its input (resampling, pooling)."""
    m: Any = call.module
    spatial = _SPATIAL.get(type(m), call.args[0].ndim - 2)
    return _fold(m, ts[0], call.args[0], spatial)


def _interpolate(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    fn: Any = call.module if call.module is not None else F.interpolate
    args, kwargs = call.args[1:], call.kwargs
    return _fold(lambda t: fn(t, *args, **kwargs), ts[0], call.args[0], call.args[0].ndim - 2)


# ------------------------------------------------------------------ normalisation
def _channel_view(w: Tensor, ndim: int) -> Tensor:
    """A per-channel vector ``(C,)`` viewed to broadcast against ``(N, C, *S)``."""
    return w.reshape(w.shape[0], *([1] * (ndim - 2)))


def _batch_norm_scale(call: Call) -> Tensor:
    m: Any = call.module
    if m.training or m.running_var is None:
        raise TrainingModeError(
            f"{type(m).__name__} normalises with the batch's statistics (training mode or no "
            "running statistics): the decoder's rows are not independent; call decoder.eval()"
        )
    scale = torch.rsqrt(m.running_var + m.eps)
    return scale if m.weight is None else scale * m.weight


def _batch_norm(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    x = call.args[0]
    return ts[0] * _channel_view(_batch_norm_scale(call), x.ndim if x.ndim > 1 else 2)


def _f_batch_norm(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    names = ("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    opts = dict(zip(names, call.args[1:], strict=False)) | dict(call.kwargs)
    if opts.get("training", False) or opts["running_var"] is None:
        raise TrainingModeError("F.batch_norm with training=True: call decoder.eval()")
    scale = torch.rsqrt(opts["running_var"] + opts.get("eps", 1e-5))
    if opts.get("weight") is not None:
        scale = scale * opts["weight"]
    return ts[0] * _channel_view(scale, call.args[0].ndim)


def _normalise(x: Tensor, jet: Jet, dims: tuple[int, ...], eps: float, so: bool) -> Jet:
    """The jet of ``(x − mean x) / sqrt(var x + eps)`` over ``dims`` (negative), composed of
    centring (linear), ``q = mean u²`` (a product), ``r = rsqrt(q + eps)`` (element-wise:
    ``r′ = −r³/2``, ``r″ = 3r⁵/4``) and ``u r`` (a product)."""
    u = x - x.mean(dims, keepdim=True)
    ju = jet_map(jet, lambda t: t - t.mean(dims, keepdim=True))
    assert ju is not None
    q = (u * u).mean(dims, keepdim=True)
    r = torch.rsqrt(q + eps)
    g1 = -0.5 * r**3
    q_first = 2.0 * (u * ju.first).mean(dims, keepdim=True)
    r_first = g1 * q_first
    r_second = None
    if so:
        tv = ju.first[-1]
        q_second = (tv * tv).mean(dims, keepdim=True)
        if ju.second is not None:
            q_second = q_second + (u * ju.second).mean(dims, keepdim=True)
        q_second = 2.0 * q_second
        r_second = g1 * q_second + 0.75 * r**5 * q_first[-1] ** 2
    jn = product(u, ju, r, Jet(r_first, r_second), u * r, so)
    assert jn is not None
    return jn


def _affine(jet: Jet, weight: Tensor | None) -> Jet:
    if weight is None:
        return jet
    out = jet_map(jet, lambda t: t * weight)
    assert out is not None
    return out


def _norm_options(call: Call, name: str) -> tuple[Any, Tensor | None, float]:
    """``(name, weight, eps)`` of a norm layer's call, module or function (``name``:
    ``normalized_shape`` or ``num_groups``, the functions' first argument after ``x``)."""
    if call.module is not None:
        m: Any = call.module
        return getattr(m, name), m.weight, m.eps
    names = (name, "weight", "bias", "eps")
    opts = dict(zip(names, call.args[1:], strict=False)) | dict(call.kwargs)
    return opts[name], opts.get("weight"), opts.get("eps", 1e-5)


def _layer_norm(call: Call) -> Jet | None:
    x, jet = call.args[0], call.jets[0]
    shape, weight, eps = _norm_options(call, "normalized_shape")
    dims = tuple(range(-len(shape), 0))
    return _affine(_normalise(x, jet, dims, eps, call.second_order), weight)


def _group_norm(call: Call) -> Jet | None:
    x, jet = call.args[0], call.jets[0]
    groups, weight, eps = _norm_options(call, "num_groups")
    n = x.shape[0]
    grouped = jet_map(jet, lambda t: t.reshape(t.shape[0], n, groups, -1))
    assert grouped is not None
    normal = _normalise(x.reshape(n, groups, -1), grouped, (-1,), eps, call.second_order)
    back = jet_map(normal, lambda t: t.reshape(t.shape[0], *x.shape))
    assert back is not None
    return _affine(back, None if weight is None else _channel_view(weight, x.ndim))


def _instance_norm(call: Call) -> Jet | None:
    x, jet = call.args[0], call.jets[0]
    m: Any = call.module
    if m is not None:
        spatial = _SPATIAL[type(m)]
        stats = m.training or not m.track_running_stats
        weight, eps, mean, var = m.weight, m.eps, m.running_mean, m.running_var
    else:
        names = ("running_mean", "running_var", "weight", "bias", "use_input_stats", "momentum",
                 "eps")  # fmt: skip
        opts = dict(zip(names, call.args[1:], strict=False)) | dict(call.kwargs)
        spatial, stats = x.ndim - 2, opts.get("use_input_stats", True)
        weight, eps = opts.get("weight"), opts.get("eps", 1e-5)
        mean, var = opts.get("running_mean"), opts.get("running_var")
    view = [1] * spatial
    if not stats:  # running statistics: affine, like batch norm
        del mean
        scale = torch.rsqrt(var + eps)
        scale = (scale if weight is None else scale * weight).reshape(-1, *view)
        return jet_map(jet, lambda t: t * scale)
    normal = _normalise(x, jet, tuple(range(-spatial, 0)), eps, call.second_order)
    return _affine(normal, None if weight is None else weight.reshape(-1, *view))


def _dropout_module(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    if call.module is not None and call.module.training:
        raise TrainingModeError(
            f"{type(call.module).__name__} is in training mode (random): call decoder.eval()"
        )
    return ts[0]


_DROPOUT_FUNCTIONS = (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                      F.feature_alpha_dropout)  # fmt: skip


def random_in_training(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call is a functional dropout with ``training=True`` (random)."""
    if function not in _DROPOUT_FUNCTIONS:
        return False
    default = function not in (F.alpha_dropout, F.feature_alpha_dropout)
    return bool(kwargs.get("training", args[2] if len(args) > 2 else default))


def _rrelu_slope(call: Call) -> dict[str, Any]:
    m: Any = call.module
    if m.training:
        raise TrainingModeError("RReLU is in training mode (random slopes): call decoder.eval()")
    return {"slope": (m.lower + m.upper) / 2.0}


def _rrelu(x: Tensor, y: Tensor, slope: float) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))


def _dropout_function(call: Call, ts: tuple[Any, ...], k: int) -> Tensor | None:
    return ts[0]


_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                    nn.FeatureAlphaDropout)  # fmt: skip
_CONV_FUNCTIONS = (F.conv1d, F.conv2d, F.conv3d)
_CONV_T_FUNCTIONS = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)

LAYERS: list[Rule] = [
    Rule("Linear", linear(_linear_module), "W ẋ", "W ẍ", modules=(nn.Linear,),
         check=_single_input),
    Rule("convolution", linear(_conv_module), "conv(ẋ, W)", "conv(ẍ, W)",
         modules=tuple(_CONV) + tuple(_CONV_T), check=_padding_zeros,
         notes="zero padding only (other padding modes use the generic path); on the CPU a "
               "2-D transposed convolution to at most 4 channels runs as one product and a "
               "strided sum (torch's kernel is several times slower there), one to more "
               "channels runs channels-last (faster), and so do their values in the energy"),
    *[Rule(f"F.{fn.__name__}", linear(_functional(fn, bias_at=1)), "conv(ẋ, W)", "conv(ẍ, W)",
           functions=(fn,), check=_weights_constant) for fn in _CONV_FUNCTIONS + _CONV_T_FUNCTIONS],
    Rule("resampling", linear(_interpolate), "interpolate(ẋ)", "interpolate(ẍ)",
         functions=(F.interpolate,),
         modules=(nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d),
         check=_weights_constant, notes="every mode is linear in the input"),
    Rule("pooling and shuffles", linear(_parameterless), "pool(ẋ)", "pool(ẍ)",
         modules=(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
                  nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.PixelShuffle, nn.PixelUnshuffle),
         check=_single_input),
    *[Rule(f"F.{fn.__name__}", linear(_functional(fn)), "pool(ẋ)", "pool(ẍ)", functions=(fn,),
           check=_weights_constant)
      for fn in (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d,
                 F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.pixel_shuffle, F.pixel_unshuffle)],
    Rule("BatchNorm (eval)", linear(_batch_norm), "γ/√(v + ε) ẋ", "γ/√(v + ε) ẍ",
         modules=(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), check=_single_input,
         notes="running statistics (eval mode); training mode is an error"),
    Rule("F.batch_norm (eval)", linear(_f_batch_norm), "γ/√(v + ε) ẋ", "γ/√(v + ε) ẍ",
         functions=(F.batch_norm,), check=_weights_constant),
    Rule("LayerNorm", _layer_norm, "γ (ṅ), n = (x − μ) r, r = (σ² + ε)^(−½)",
         "γ (n̈), composed exactly from centring, mean u², rsqrt and products",
         functions=(F.layer_norm,), modules=(nn.LayerNorm,), check=_weights_constant,
         kind="normalisation"),
    Rule("GroupNorm", _group_norm, "as LayerNorm, per group", "as LayerNorm, per group",
         functions=(F.group_norm,), modules=(nn.GroupNorm,), check=_weights_constant,
         kind="normalisation"),
    Rule("InstanceNorm", _instance_norm, "as LayerNorm over the spatial dimensions (affine with "
         "running statistics)", "as LayerNorm over the spatial dimensions (0 when affine)",
         functions=(F.instance_norm,), modules=(nn.InstanceNorm1d, nn.InstanceNorm2d,
                                                nn.InstanceNorm3d),
         check=_weights_constant, kind="normalisation"),
    Rule("RReLU (eval)", elementwise(_rrelu, None, _rrelu_slope), "1 (x > 0), (lower + upper)/2",
         "0", modules=(nn.RReLU,), check=_single_input, kind="element-wise",
         notes="eval mode only; training mode is an error"),
    Rule("Dropout (eval)", linear(_dropout_module), "ẋ", "ẍ", modules=_DROPOUT_MODULES,
         check=_single_input, notes="eval mode only; training mode is an error"),
    Rule("F.dropout (training=False)", linear(_dropout_function), "ẋ", "ẍ",
         functions=_DROPOUT_FUNCTIONS, check=_weights_constant),
]  # fmt: skip
