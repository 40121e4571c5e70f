"""What a decoder's output contributes to the metric: its *embedding*.

Every supported decoder induces a pull-back metric ``Jᵀ J`` of some map
``z ↦ e(decoder(z))`` into a flat space, where ``e`` depends on the type of
what the decoder returns:

* a ``Tensor`` ``x``: ``e = x``, the plain pull-back;
* ``Normal(μ, σ)`` (or ``Independent(Normal)``): ``e = (μ, σ)``, whose
  pull-back is the expected metric ``J_μᵀ J_μ + J_σᵀ J_σ`` of Arvanitidis et
  al. (2018);
* ``Bernoulli(p)``: ``e = 2 asin(√p)`` per output, whose pull-back is the
  Fisher–Rao metric ``Σ_k (∂p_k)² / (p_k (1 − p_k))``. It is evaluated as
  ``2 atan(tanh(logit/4))`` (equal up to the constant ``π/2``), stable for
  saturated logits;
* ``Categorical(p)``: ``e = 2 √p`` per category (Fisher–Rao on the simplex),
  evaluated as ``2 exp(log p / 2)``;
* ``ContinuousBernoulli(η)``: ``e(η) = ∫₀^η √Var(s) ds`` per output, whose
  pull-back is the Fisher–Rao metric ``J_ηᵀ diag(Var(η)) J_η`` with
  ``Var(η) = 1/η² − 1/(4 sinh²(η/2))`` (see
  :mod:`latentgeo.metrics.continuous_bernoulli`; ``probs`` become logits as torch does).

The map is open to extension: register a new output type with
``output_embedding.register(MyDistribution)`` (see :func:`output_embedding`).

What a decoder returns may be a container (a ``dict``, pythae's
``ModelOutput``, a dataclass, a named tuple): :class:`DecoderEmbedding` picks
the Tensor or distribution out of it (:mod:`latentgeo.metrics.outputs`). A
plain function decoder is traced like a module: the modules it calls (found
in its closure, its globals, or as the ``self`` of a bound method) are held
by its ``DecoderEmbedding``, so that ``torch.fx`` can trace through them.

For speed, a decoder *type* may also register an equivalent traceable module
with ``embedding_module.register(MyDecoder)``: the pull-back of a module that
``torch.fx`` can trace runs through the fast traced forward mode
(:mod:`latentgeo.metrics.forward`) instead of ``torch.func``, which
cannot be used on code that builds ``torch.distributions`` objects.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from functools import singledispatch
from typing import cast

import torch
from torch import Tensor, fx, nn
from torch.distributions import Bernoulli, Categorical, ContinuousBernoulli, Independent, Normal

from latentgeo.metrics.checks import check_eval_mode
from latentgeo.metrics.continuous_bernoulli import continuous_bernoulli_embedding
from latentgeo.metrics.forward import fast_path_report
from latentgeo.metrics.forward.tracing import register_wrapper
from latentgeo.metrics.outputs import (
    OutputSpec,
    UnsupportedOutput,
    describe_output,
    select_output,
)

__all__ = ["ConcatEmbedding", "DecoderEmbedding", "embedding_module", "output_embedding"]

SUPPORTED_OUTPUTS = (
    "Tensor, Normal, Independent(Normal), Bernoulli, Categorical, ContinuousBernoulli"
)


@singledispatch
def output_embedding(output: object, batch: int) -> Tensor:
    """Flatten a decoder's output into the embedding whose pull-back is its metric.

    Args:
        output: what the decoder returned for ``batch`` latent points.
        batch: the number of latent points ``N`` (the output's leading size).

    Returns:
        Tensor of shape ``(N, m)``.

    Raises:
        TypeError: the output type has no registered embedding.

    A new output distribution needs one function: its embedding, a map whose
    Euclidean pull-back is the distribution's Fisher information in its
    parameters. For a Poisson with rate ``λ`` (Fisher information ``1/λ``) it is
    ``2 √λ``:

    Example:
        >>> import torch
        >>> from torch.distributions import Poisson
        >>> from latentgeo.metrics import as_metric
        >>> @output_embedding.register
        ... def _(out: Poisson, batch: int) -> torch.Tensor:
        ...     return 2.0 * out.rate.sqrt().reshape(batch, -1)
        >>> g = as_metric(lambda z: Poisson(torch.exp(z)))  # λ = eᶻ: G = λ = 1 at 0
        >>> g.metric_tensor(torch.zeros(2))
        tensor([[1., 0.],
                [0., 1.]])
    """
    raise UnsupportedOutput(
        f"the decoder returned {describe_output(output)}, which has no metric; supported "
        f"outputs are {SUPPORTED_OUTPUTS}. Pick a supported value with "
        "as_metric(decoder, output=...) (a key, attribute, index or callable), or register "
        "an embedding for this type with latentgeo.metrics.output_embedding.register"
    )


@output_embedding.register
def _(output: Tensor, batch: int) -> Tensor:
    return output.reshape(batch, -1)


@output_embedding.register
def _(output: fx.Proxy, batch: int) -> Tensor:  # a tensor, while torch.fx traces the decoder
    return cast(Tensor, output.reshape(batch, -1))


@output_embedding.register
def _(output: Normal, batch: int) -> Tensor:
    loc, scale = torch.broadcast_tensors(output.loc, output.scale)
    return torch.cat([loc.reshape(batch, -1), scale.reshape(batch, -1)], dim=-1)


@output_embedding.register
def _(output: Independent, batch: int) -> Tensor:
    return output_embedding(output.base_dist, batch)


@output_embedding.register
def _(output: Bernoulli, batch: int) -> Tensor:
    return 2.0 * torch.atan(torch.tanh(output.logits / 4.0)).reshape(batch, -1)


@output_embedding.register
def _(output: Categorical, batch: int) -> Tensor:
    return 2.0 * torch.exp(0.5 * output.logits).reshape(batch, -1)


@output_embedding.register
def _(output: ContinuousBernoulli, batch: int) -> Tensor:
    return continuous_bernoulli_embedding(output.logits).reshape(batch, -1)


def captured_modules(fn: object, depth: int = 3) -> list[nn.Module]:
    """The modules a plain function decoder calls: in its closure, its globals, its ``self``.

    Functions it refers to by a global name are searched too (``depth`` levels).

    Example:
        >>> net = nn.Linear(2, 3)
        >>> captured_modules(lambda z: net(z).tanh()) == [net]
        True
    """
    found: dict[int, nn.Module] = {}

    def visit(obj: object, level: int) -> None:
        if isinstance(obj, nn.Module):
            found.setdefault(id(obj), obj)
            return
        if level > depth:
            return
        if isinstance(obj, functools.partial):
            for x in (obj.func, *obj.args, *obj.keywords.values()):
                visit(x, level)
        elif isinstance(obj, types.MethodType):
            visit(obj.__self__, level)
            visit(obj.__func__, level)
        elif isinstance(obj, types.FunctionType):
            for cell in obj.__closure__ or ():
                try:
                    visit(cell.cell_contents, level + 1)
                except ValueError:  # an empty cell
                    continue
            for name in obj.__code__.co_names:
                if name in obj.__globals__:
                    visit(obj.__globals__[name], level + 1)
            for default in obj.__defaults__ or ():
                visit(default, level + 1)

    visit(fn, 0)
    return list(found.values())


class DecoderEmbedding(nn.Module):
    """``z ↦ output_embedding(select(decoder(z)))``: the map whose pull-back is a decoder's metric.

    Args:
        decoder: a module or function taking latent points ``(N, d)``.
        output: which value of the decoder's output the metric is made of (see
            :func:`~latentgeo.metrics.outputs.select_output`): ``None`` (a Tensor,
            a distribution, or the only one in a container), a key or attribute
            name, an index, or a callable.

    The modules a function decoder calls are held in ``captured`` (so that
    ``torch.fx`` can trace through them); they are the user's modules, not copies.

    Example:
        >>> import torch
        >>> net = nn.Linear(2, 3)
        >>> emb = DecoderEmbedding(lambda z: {"reconstruction": net(z)})
        >>> emb(torch.zeros(5, 2)).shape
        torch.Size([5, 3])
    """

    def __init__(self, decoder: Callable[[Tensor], object], output: OutputSpec = None) -> None:
        super().__init__()
        if not callable(decoder):
            raise TypeError(f"decoder must be callable, got {type(decoder).__name__}")
        self.decoder = decoder
        self.output = output
        if not isinstance(decoder, nn.Module):
            self.captured = nn.ModuleList(captured_modules(decoder))
            for module in self.captured:
                check_eval_mode(module, "decoder")

    def conversion_problem(self) -> str | None:
        """Why a converted copy of this embedding would not be its decoder's (``Metric.to``)."""
        if isinstance(self.decoder, nn.Module) or len(getattr(self, "captured", ())) == 0:
            return None
        return (
            "its decoder is a function calling modules (a copy would still call the "
            "originals); convert the modules and call as_metric again"
        )

    def forward(self, z: Tensor) -> Tensor:
        """Embed the decoder's output at ``z`` of shape ``(N, d)`` into ``(N, m)``."""
        return output_embedding(select_output(self.decoder(z), self.output), z.shape[0])


# the embeddings ``as_metric`` builds for one decoder and one output share a trace
register_wrapper(DecoderEmbedding, lambda wrapper: wrapper.decoder, lambda wrapper: wrapper.output)


class ConcatEmbedding(nn.Module):
    """``z ↦ (f_1(z), ..., f_k(z))``, each flattened to ``(N, ·)`` and concatenated.

    The embedding of a Gaussian decoder with mean and scale networks is
    ``ConcatEmbedding(mean_net, scale_net)``.

    Args:
        parts: the modules ``f_i``, each mapping ``(N, d)`` to ``(N, ...)``.

    Example:
        >>> import torch
        >>> emb = ConcatEmbedding(torch.nn.Linear(2, 3), torch.nn.Linear(2, 4))
        >>> emb(torch.zeros(5, 2)).shape
        torch.Size([5, 7])
    """

    def __init__(self, *parts: nn.Module) -> None:
        super().__init__()
        if not parts:
            raise ValueError("ConcatEmbedding needs at least one part")
        self.parts = nn.ModuleList(parts)

    def forward(self, z: Tensor) -> Tensor:
        """Concatenate the flattened parts, ``(N, d) -> (N, m)``."""
        return torch.cat([part(z).flatten(1) for part in self.parts], dim=-1)


@singledispatch
def embedding_module(decoder: object) -> nn.Module | None:
    """A traceable module equal to ``output_embedding(decoder(z))``, or ``None``.

    Register decoder types whose outputs are distributions so that their
    metric uses the fast traced forward mode; the module must return exactly
    the embedding that :func:`output_embedding` gives for the decoder's output.

    Args:
        decoder: the decoder.

    Returns:
        An ``nn.Module`` mapping ``(N, d)`` to ``(N, m)``, or ``None`` (then
        ``DecoderEmbedding(decoder)`` is used). By default: the decoder itself
        when it is a module that ``torch.fx`` can trace (a traced module returns
        a tensor: building a distribution cannot be traced), else ``None``.
    """
    if isinstance(decoder, nn.Module) and fast_path_report(decoder).usable:
        return decoder
    return None
