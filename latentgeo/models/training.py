"""Training: :func:`fit` for VAEs (ensembles included); the RBF stage is in :mod:`.calibration`.

Runs are reproducible from ``seed``: the train/validation split, the
mini-batch order, the reparameterisation noise and the ensemble members'
assignment all come from generators seeded with it (the model's initial
weights come from whoever built it; see :func:`latentgeo.models.make_ensemble_vae`).
Training happens on the model's device and dtype; the data are moved there.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from latentgeo._validation import check_finite
from latentgeo.exceptions import PerformanceWarning, warn_once
from latentgeo.models.rbf import RBFPrecision
from latentgeo.models.vae import ENSEMBLE_MODES

__all__ = ["History", "as_data_tensor", "fit"]


@dataclass
class History:
    """What :func:`fit` did.

    Attributes:
        train_loss: mean training loss (negative ELBO per data point) of every epoch.
        val_loss: validation loss after every validated epoch (empty without validation).
        val_epochs: the epochs (from 0) after which ``val_loss`` was measured.
        best_epoch: the epoch whose weights were kept (the last one without
            early stopping), counted from 0.
        stopped_early: whether early stopping ended the run.
        seconds: wall-clock time of the training loop.
        samples: training samples processed (data points × epochs).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_epochs: list[int] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0
    samples: int = 0

    @property
    def best_val_loss(self) -> float:
        """The validation loss of the kept weights (``nan`` without validation)."""
        if self.best_epoch in self.val_epochs:
            return self.val_loss[self.val_epochs.index(self.best_epoch)]
        return self.val_loss[-1] if self.val_loss else math.nan

    @property
    def samples_per_second(self) -> float:
        """Training throughput."""
        return self.samples / self.seconds if self.seconds > 0 else math.nan


def as_data_tensor(data: object, name: str = "data") -> Tensor:
    """The data tensor in ``data``: a Tensor, or the first item of an ``(x, y)`` pair.

    Raises:
        TypeError / ValueError: not a non-empty floating tensor of shape ``(N, ...)``.
    """
    x = data[0] if isinstance(data, (tuple, list)) and len(data) > 0 else data
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a Tensor of shape (N, ...) or an (x, y) pair such as "
            f"latentgeo.data.ring(...), got {type(x).__name__}"
        )
    if not torch.is_floating_point(x) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty floating tensor of shape (N, ...), got "
            f"dtype {x.dtype} and shape {tuple(x.shape)}"
        )
    return check_finite(x, name)


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _param(model: nn.Module) -> Tensor:
    try:
        return next(model.parameters())
    except StopIteration:
        raise ValueError("the model has no parameters to train") from None


def _adam(
    model: nn.Module, params: Sequence[Tensor], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Adam, fused where torch offers it on the parameters' device (about 10x faster
    steps on CPU for the millions of parameters of an ensemble); ``foreach`` otherwise."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError) as err:
        warn_once(model, PerformanceWarning(f"fused Adam unavailable ({err}); using foreach"))
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


def fit(
    model: nn.Module,
    data: object,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    val_fraction: float = 0.0,
    early_stopping: int | None = None,
    progress: bool = True,
    ensemble_mode: str = "partition",
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    val_data: object | None = None,
    eval_every: int = 1,
    min_delta: float = 0.0,
) -> History:
    """Train a model (typically a :class:`~latentgeo.models.VAE`) with Adam.

    The model must have a method ``training_loss(x, *, generator, ensemble_mode)``
    returning a scalar (the VAE's is the mean negative ELBO). Parameters with
    ``requires_grad=False`` stay frozen. RBF-precision weights with the
    ``"projection"`` positivity are projected after every step.

    Args:
        model: the model, trained in place on its own device and dtype.
        data: a tensor ``(N, ...)`` or an ``(x, y)`` pair (labels are ignored).
        epochs: maximum passes over the training data.
        batch_size: mini-batch size (the last batch may be smaller).
        lr: Adam's learning rate.
        seed: seeds the split, the batch order and all sampling.
        val_fraction: share of the data held out for validation, in ``[0, 1)``
            (a split drawn with ``seed``; 0 with ``val_data``).
        early_stopping: patience in epochs: stop when the validation loss has
            not improved for this many epochs and restore the best weights
            (needs ``val_fraction > 0`` or ``val_data``). ``None``: train all epochs.
        progress: show a tqdm progress bar (``False`` silences it).
        ensemble_mode: ``"partition"`` (default), ``"random_member"`` or ``"all"``;
            see :data:`latentgeo.models.ENSEMBLE_MODES`.
        weight_decay: Adam's L2 penalty.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        val_data: a fixed validation set (a tensor or an ``(x, y)`` pair), e.g. the
            papers' seeded 90/10 split (:func:`latentgeo.data.mnist` ``split="val"``);
            then all of ``data`` is trained on.
        eval_every: validate every this many epochs (and after the last one);
            ``History.val_loss`` has one entry per validation.
        min_delta: early stopping counts a validation loss as better only if it is
            lower than the best so far by more than this (in the loss's units, nats
            per data point); 0: any decrease.

    Returns:
        A :class:`History`.

    Example:
        >>> from latentgeo.data import ring
        >>> from latentgeo.models import make_ensemble_vae
        >>> vae = make_ensemble_vae(2, num_members=3, hidden=(16,), seed=0)
        >>> h = fit(vae, ring(200, seed=0), epochs=3, batch_size=50, progress=False)
        >>> len(h.train_loss)
        3
    """
    x = as_data_tensor(data)
    epochs, batch_size, eval_every = _check_fit_options(
        epochs, batch_size, lr, val_fraction, eval_every, min_delta, val_data, early_stopping,
        ensemble_mode, grad_clip,
    )  # fmt: skip
    loss_fn = getattr(model, "training_loss", None)
    if not callable(loss_fn):
        raise TypeError(
            f"fit trains models with a training_loss(x, *, generator, ensemble_mode) method "
            f"(such as latentgeo.models.VAE), got {type(model).__name__}"
        )
    p0 = _param(model)
    device, dtype = p0.device, p0.dtype
    cpu_gen = torch.Generator().manual_seed(seed)
    x_train, x_val = _split(x.to(device=device, dtype=dtype), val_fraction, val_data, cpu_gen)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    step = _Step(loss_fn, _adam(model, params, lr, weight_decay), params, grad_clip,
                 [m for m in model.modules() if isinstance(m, RBFPrecision)])  # fmt: skip
    gen = torch.Generator(device=device).manual_seed(seed)
    stopping = _EarlyStopping(early_stopping, min_delta)
    history = History()
    was_training = model.training
    model.train()
    start_time = time.perf_counter()
    bar = tqdm(range(epochs), desc="fit", disable=not progress, leave=False)
    try:
        for epoch in bar:
            order = torch.randperm(x_train.shape[0], generator=cpu_gen).to(device)
            history.train_loss.append(step.epoch(x_train[order], batch_size, gen, ensemble_mode))
            history.samples += x_train.shape[0]
            postfix: dict[str, Any] = {"loss": f"{history.train_loss[-1]:.4g}"}
            validated = x_val.shape[0] > 0 and (
                epoch % eval_every == eval_every - 1 or epoch == epochs - 1
            )
            if validated:
                history.val_loss.append(_validation_loss(loss_fn, x_val, batch_size, seed + 1))
                history.val_epochs.append(epoch)
                postfix["val"] = f"{history.val_loss[-1]:.4g}"
            bar.set_postfix(postfix)
            if validated and stopping.update(model, history.val_loss[-1], epoch):
                history.stopped_early = True
                break
    finally:
        bar.close()
        history.seconds = time.perf_counter() - start_time
        model.train(was_training)
    if stopping.best_state is not None:
        model.load_state_dict(stopping.best_state)
        history.best_epoch = stopping.best_epoch
    else:
        history.best_epoch = len(history.train_loss) - 1
    return history


def _check_fit_options(
    epochs: object,
    batch_size: object,
    lr: object,
    val_fraction: object,
    eval_every: object,
    min_delta: object,
    val_data: object,
    early_stopping: object,
    ensemble_mode: object,
    grad_clip: object,
) -> tuple[int, int, int]:
    """:func:`fit`'s options checked at the call: ``(epochs, batch_size, eval_every)``."""
    epochs = _check_int(epochs, "epochs", 0)
    batch_size = _check_int(batch_size, "batch_size", 1)
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    eval_every = _check_int(eval_every, "eval_every", 1)
    if not (isinstance(min_delta, (int, float)) and min_delta >= 0 and math.isfinite(min_delta)):
        raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
    if val_data is not None and val_fraction > 0:
        raise ValueError("give either val_data or val_fraction > 0, not both")
    if early_stopping is not None:
        _check_int(early_stopping, "early_stopping", 1)
        if val_fraction == 0.0 and val_data is None:
            raise ValueError(
                "early_stopping needs a validation set: set val_fraction > 0 or pass val_data"
            )
    if ensemble_mode not in ENSEMBLE_MODES:
        raise ValueError(f"ensemble_mode must be one of {ENSEMBLE_MODES}, got {ensemble_mode!r}")
    if grad_clip is not None and not (isinstance(grad_clip, (int, float)) and grad_clip > 0):
        raise ValueError(f"grad_clip must be None or positive, got {grad_clip!r}")
    return epochs, batch_size, eval_every


def _split(
    x: Tensor, val_fraction: float, val_data: object, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(x_train, x_val)``: a held-out share drawn with ``generator``, or ``val_data``."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=generator).to(x.device)
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    if n - n_val < 1:
        raise ValueError(f"val_fraction={val_fraction} leaves no training data out of {n} points")
    x_val, x_train = x[perm[:n_val]], x[perm[n_val:]]
    if val_data is not None:
        x_val = as_data_tensor(val_data, "val_data").to(device=x.device, dtype=x.dtype)
    return x_train, x_val


@dataclass
class _Step:
    """One optimiser step per mini-batch: loss, backward, clipping, Adam, projection."""

    loss_fn: Any
    optimiser: torch.optim.Optimizer
    params: list[nn.Parameter]
    grad_clip: float | None
    projected: list[RBFPrecision]

    def epoch(
        self, x: Tensor, batch_size: int, generator: torch.Generator, ensemble_mode: str
    ) -> float:
        """One pass over ``x`` (already shuffled); the mean training loss."""
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            loss = self.loss_fn(xb, generator=generator, ensemble_mode=ensemble_mode)
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            self.optimiser.step()
            for m in self.projected:
                m.project_()
            total += float(loss.detach()) * xb.shape[0]
        return total / x.shape[0]


def _validation_loss(loss_fn: Any, x_val: Tensor, batch_size: int, seed: int) -> float:
    """The mean loss over ``x_val`` with all ensemble members, sampling seeded by ``seed``."""
    g = torch.Generator(device=x_val.device).manual_seed(seed)
    with torch.no_grad():
        total = 0.0
        for start in range(0, x_val.shape[0], batch_size):
            xb = x_val[start : start + batch_size]
            total += float(loss_fn(xb, generator=g, ensemble_mode="all")) * xb.shape[0]
    return total / x_val.shape[0]


@dataclass
class _EarlyStopping:
    """Patience counted from the last improvement by more than ``min_delta``; the best
    weights (small gains included) kept for restoring."""

    patience: int | None
    min_delta: float
    ref_val: float = math.inf
    ref_epoch: int = -1
    best_val: float = math.inf
    best_epoch: int = -1
    best_state: dict[str, Any] | None = None

    def update(self, model: nn.Module, val: float, epoch: int) -> bool:
        """Record a validation loss; whether to stop now."""
        if self.patience is None:
            return False
        if val < self.ref_val - self.min_delta:  # a real improvement: patience restarts
            self.ref_val, self.ref_epoch = val, epoch
        if val < self.best_val:
            self.best_val, self.best_epoch = val, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        return epoch - self.ref_epoch >= self.patience
