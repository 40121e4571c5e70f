"""Checks of a decoder made once, when its metric is built.

:func:`check_eval_mode` refuses decoders whose output is random or depends on
the batch: a layer in training mode that behaves differently there (dropout,
batch normalisation, instance normalisation with running statistics, RReLU),
or a batch normalisation without running statistics (it always normalises
with the batch's statistics). A metric needs each latent point's output to
depend on that point alone, and latentgeo never changes a module's mode,
buffers or parameters, so the user is asked to call ``decoder.eval()``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.instancenorm import _InstanceNorm

from latentgeo.metrics.forward.layers import TrainingModeError

__all__ = ["check_eval_mode"]


def _problem(module: nn.Module) -> str | None:
    """Why ``module`` makes a decoder's output random or batch-dependent, or ``None``."""
    if isinstance(module, _BatchNorm):
        if module.training:
            return (
                "is in training mode: it normalises with the batch's statistics and updates "
                "its running statistics"
            )
        if not module.track_running_stats or module.running_var is None:
            return "has no running statistics: it normalises with the batch's statistics"
        return None
    if not module.training:
        return None
    if isinstance(module, _DropoutNd):
        return "is in training mode: it drops units at random"
    if isinstance(module, _InstanceNorm) and module.track_running_stats:
        return "is in training mode: it updates its running statistics"
    if isinstance(module, nn.RReLU):
        return "is in training mode: its slopes are random"
    return None


def check_eval_mode(decoder: object, name: str = "decoder", *, built: bool = False) -> None:
    """Raise a clear error if a layer of ``decoder`` is random or batch-dependent.

    Args:
        decoder: the decoder (functions are not inspected).
        name: what to call it in the message.
        built: its metric exists already (the check of a call, before the decoder
            runs: a layer switched to training mode since would update its buffers).

    Raises:
        ValueError: naming the first such layer and what to do (``decoder.eval()``);
            with ``built``, a :class:`~latentgeo.metrics.forward.layers.TrainingModeError`.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.1))
        >>> check_eval_mode(net.eval())  # fine
        >>> check_eval_mode(net.train())
        Traceback (most recent call last):
        ...
        ValueError: decoder layer '1' (Dropout) is in training mode: it drops units at random; \
call decoder.eval() before building its metric (latentgeo never changes a module's mode)
    """
    if not isinstance(decoder, nn.Module):
        return
    for path, module in decoder.named_modules():
        problem = _problem(module)
        if problem is not None:
            where = f"layer '{path}'" if path else "itself"
            when = (
                f"it left evaluation mode after its metric was built: call {name}.eval() "
                "before using the metric"
                if built
                else f"call {name}.eval() before building its metric"
            )
            error = TrainingModeError if built else ValueError
            raise error(
                f"{name} {where} ({type(module).__name__}) {problem}; {when} (latentgeo never "
                "changes a module's mode)"
            )
