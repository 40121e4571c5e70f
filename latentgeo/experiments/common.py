"""What the paper experiments share: data splits, training recipes, resumable files, evidence.

Each seed paper's experiment is its own module (:mod:`.ensembles_cv`,
:mod:`.relative_improvement`, :mod:`.kmeans`); the command line adaptors live
in :mod:`latentgeo.cli`.

Budgets (:data:`BUDGETS`), the same code at three sizes:

* ``"paper"``: the paper's sizes (retrainings, pairs, full training); for a
  GPU or a long CPU run. Resumable: every trained model and every distance
  table is a file in ``OUT.parts/`` next to the run folder ``OUT``
  (``models/``, ``tables/``; the run folder itself appears only whole, see
  :class:`~latentgeo.experiments.RunDir`), and a rerun with the same
  settings picks up where it stopped.
* ``"cpu"``: what fits in about 45 minutes on 2 CPU cores (k-means: about 100,
  recorded on its page), chosen so that the paper's conclusion is still
  testable; training is early-stopped on a fixed validation split and its
  final validation losses are reported.
* ``"quick"``: a smoke test of the whole pipeline (seconds to minutes); its
  outputs say that they are not a result.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch
from torch import Tensor

from latentgeo.analysis.counts import converged_note, convergence_warning
from latentgeo.data import LabeledData, digits, mnist
from latentgeo.experiments._checks import DATA_SETS, check_choice, check_int, check_seed
from latentgeo.experiments.rundir import recorded_command
from latentgeo.experiments.runs import (
    NOT_A_RESULT,
    Resumable,
    finish_run,
    machine_load,
    parts_folder,
)
from latentgeo.models import VAE, calibrate_rbf, fit, load, make_ensemble_vae, make_rbf_vae, save

__all__ = [
    "BUDGETS",
    "NOT_A_RESULT",
    "Recipe",
    "Resumable",
    "Splits",
    "command_line",
    "converged_note",
    "convergence_warning",
    "encode_means",
    "finish_run",
    "load_data",
    "load_splits",
    "machine_load",
    "parts_folder",
    "train_or_load",
]

BUDGETS = ("paper", "cpu", "quick")

_Settings = TypeVar("_Settings", bound="BudgetedSettings")


@dataclass(frozen=True)
class BudgetedSettings:
    """Base of an experiment's settings dataclass: the fields all of them have, and
    their named budgets as constructors.

    A subclass's defaults are its ``"cpu"`` budget; ``budgets`` (``{"paper" |
    "cpu" | "quick": {field: value}}``) holds what each budget changes.

    Attributes:
        budget: ``"paper"``, ``"cpu"`` or ``"quick"`` (written into the summary).
        include_all: report over every pair (or point), converged or not, not only
            over those whose geodesics converged.
        seed: seeds the run's randomness.
    """

    budgets: ClassVar[dict[str, dict[str, Any]]] = {}

    budget: str = "cpu"
    include_all: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self, "budget", BUDGETS)
        check_seed(self)

    @classmethod
    def for_budget(cls: type[_Settings], budget: str = "cpu", **overrides: Any) -> _Settings:
        """The settings of ``budget`` (``"paper"``, ``"cpu"``, ``"quick"``), then ``overrides``."""
        if budget not in cls.budgets:
            raise ValueError(f"budget must be one of {tuple(cls.budgets)}, got {budget!r}")
        return cls(budget=budget, **{**cls.budgets[budget], **overrides})

    @classmethod
    def quick(cls: type[_Settings], **kw: Any) -> _Settings:
        """The smoke test (``for_budget("quick")``)."""
        return cls.for_budget("quick", **kw)


@dataclass(frozen=True)
class DigitsSettings(BudgetedSettings):
    """Base of the settings of an experiment on handwritten digits.

    Attributes:
        data: ``"mnist"`` (the IDX files, from local files) or ``"digits"``
            (scikit-learn's 8×8 digits, all of them).
        per_digit: MNIST images of each digit the experiment takes (which ones:
            see the experiment).
    """

    data: str = "mnist"
    per_digit: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "data", DATA_SETS)
        check_int(self, "per_digit", 1)


class Splits(NamedTuple):
    """The fit / validation / test parts of a data set (each a :class:`LabeledData`)."""

    fit: LabeledData
    val: LabeledData
    test: LabeledData


def load_data(data: str, classes: tuple[int, ...] | None) -> LabeledData:
    """The whole training part of ``data`` (``"digits"``, ``"mnist"``) restricted to ``classes``."""
    if data == "digits":
        return digits(classes=classes)
    if data == "mnist":
        return mnist(classes=classes)
    raise ValueError(f"data must be 'digits' or 'mnist', got {data!r}")


def load_splits(data: str, classes: tuple[int, ...] | None) -> Splits:
    """Fit / validation / test parts, fixed whatever the training seed.

    MNIST: the decoder-ensembling code's seeded 90/10 division of the training
    file (``split="fit"``/``"val"``) and the official test file. Digits: one
    seeded permutation of the 1797 images cut 72/8/20.
    """
    if data == "mnist":
        parts = [mnist(split=p, classes=classes) for p in ("fit", "val", "test")]
        return Splits(*parts)
    if data != "digits":
        raise ValueError(f"data must be 'digits' or 'mnist', got {data!r}")
    x, y = digits(classes=classes)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(19821))
    n_test, n_val = round(0.2 * x.shape[0]), round(0.08 * x.shape[0])
    test, val, fit_ = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return Splits(*(LabeledData(x[i], y[i]) for i in (fit_, val, test)))


@dataclass(frozen=True)
class Recipe:
    """How one VAE of an experiment is built and trained (a paper's recipe, or a budget's).

    Attributes:
        hidden: decoder widths ``d -> hidden -> D`` (the encoder mirrors them).
        activation: hidden activation.
        output_activation: the decoder mean's output activation.
        beta: KL weight (the decoder-ensembling code: 0.05).
        obs_std: the constant observation noise while the means are trained
            (``1/√2`` makes the loss ``‖x − μ‖² + β KL``).
        lr: Adam's learning rate.
        batch_size: mini-batch size.
        max_epochs: most epochs.
        patience: early stopping patience in epochs (on the fixed validation split).
        min_delta: a validation loss must drop by more than this (nats per image) to
            count as an improvement (the best weights are kept all the same).
        eval_every: validate every this many epochs.
        grad_clip: global gradient-norm clipping (``None``: none).
        weight_decay: Adam's L2 penalty.
        max_fit: use at most this many fitting images (``None``: all).
        centres: RBF centres (RBF models).
        zeta: RBF precision floor ζ.
        a: RBF bandwidth parameter.
        bandwidth: RBF bandwidth rule.
        rbf_codes: codes the RBF centres are fitted on: ``"sample"`` or ``"mean"``.
        rbf_epochs: epochs of the RBF weights' fit.
    """

    hidden: tuple[int, ...]
    activation: str
    output_activation: str
    beta: float
    obs_std: float
    lr: float
    batch_size: int
    max_epochs: int
    patience: int | None
    min_delta: float = 0.0
    eval_every: int = 1
    grad_clip: float | None = None
    weight_decay: float = 0.0
    max_fit: int | None = None
    centres: int = 10
    zeta: float = 0.1
    a: float = 1.0
    bandwidth: str = "mean_sq_dist"
    rbf_codes: str = "sample"
    rbf_epochs: int = 300

    def smoke(self, **changes: Any) -> Recipe:
        """This recipe cut down for a smoke test (the ``quick`` budgets): 3 epochs
        without early stopping and 30 of the RBF fit, then ``changes``.

        Example:
            >>> r = Recipe((8,), "tanh", "identity", 1.0, 0.1, 1e-3, 32, 100, 5)
            >>> quick = r.smoke(centres=4)
            >>> quick.max_epochs, quick.patience, quick.rbf_epochs, quick.centres
            (3, None, 30, 4)
        """
        return replace(self, **{"max_epochs": 3, "patience": None, "rbf_epochs": 30, **changes})


#: :class:`Recipe` fields that ``make_ensemble_vae``/``make_rbf_vae`` and ``fit``
#: take under the same names (the renamed ones are passed by hand).
_MODEL_FIELDS = ("hidden", "activation", "output_activation", "beta", "obs_std")
_RBF_FIELDS = ("zeta", "a", "bandwidth")
_FIT_FIELDS = ("batch_size", "lr", "min_delta", "eval_every", "grad_clip", "weight_decay")


def _options(recipe: Recipe, names: tuple[str, ...]) -> dict[str, Any]:
    """``{name: recipe.name}`` for ``names``."""
    return {name: getattr(recipe, name) for name in names}


def _build(
    kind: str, recipe: Recipe, data_dim: int, latent_dim: int, members: int, seed: int
) -> VAE:
    opts = _options(recipe, _MODEL_FIELDS)
    if kind == "ensemble":
        return make_ensemble_vae(data_dim, latent_dim, num_members=members, seed=seed, **opts)
    if kind == "rbf":
        opts |= _options(recipe, _RBF_FIELDS)
        return make_rbf_vae(data_dim, latent_dim, num_centres=recipe.centres, seed=seed, **opts)
    raise ValueError(f"kind must be 'ensemble' or 'rbf', got {kind!r}")


def train_or_load(
    store: Resumable,
    name: str,
    kind: str,
    recipe: Recipe,
    splits: Splits,
    *,
    latent_dim: int,
    seed: int,
    members: int = 10,
    progress: bool = False,
) -> tuple[VAE, dict[str, Any]]:
    """The model ``name`` of the run: loaded if a previous run saved it, else trained and saved.

    Returns:
        The VAE (eval mode) and its training report (final validation loss,
        epochs, whether early stopping ended it, seconds).
    """
    report = store.read(f"models/{name}.json")
    model_file = store.path / "models" / f"{name}.pt"
    if report is not None and model_file.is_file():
        return load(model_file).eval(), report
    x_fit = splits.fit.x if recipe.max_fit is None else splits.fit.x[: recipe.max_fit]
    vae = _build(kind, recipe, x_fit.shape[1], latent_dim, members, seed)
    t0 = time.perf_counter()
    history = fit(
        vae,
        x_fit,
        val_data=splits.val.x,
        epochs=recipe.max_epochs,
        early_stopping=recipe.patience,
        seed=seed,
        progress=progress,
        **_options(recipe, _FIT_FIELDS),
    )
    report = {
        "kind": kind,
        "seed": seed,
        "fit_images": int(x_fit.shape[0]),
        "epochs": len(history.train_loss),
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "final_val_loss": history.best_val_loss,
        "final_train_loss": history.train_loss[-1] if history.train_loss else float("nan"),
    }
    if kind == "rbf":
        nll = calibrate_rbf(
            vae, x_fit, codes=recipe.rbf_codes, epochs=recipe.rbf_epochs, seed=seed, progress=False
        )
        report["rbf_final_nll"] = nll[-1] if nll else float("nan")
    report["seconds"] = round(time.perf_counter() - t0, 2)
    vae.eval()
    save(vae, store.file(f"models/{name}.pt"))
    store.write(f"models/{name}.json", report)
    return vae, report


def encode_means(vae: VAE, x: Tensor) -> Tensor:
    """The encoder means of ``x`` (no gradients)."""
    with torch.no_grad():
        return vae.encode(x).mean


def command_line(experiment: str, s: Any) -> str:
    """The ``latentgeo reproduce`` command that runs settings ``s``: the command line as
    typed when the run came from it (options and ``--out`` included), else the one for
    its budget, data and seed (the summary's ``"settings"`` holds every field).

    Example:
        >>> from types import SimpleNamespace
        >>> command_line("kmeans", SimpleNamespace(budget="quick", data="mnist", seed=3))
        'latentgeo reproduce kmeans --data mnist --quick --seed 3'
    """
    typed = recorded_command()
    if typed is not None and typed[1:3] == ("reproduce", experiment):
        return shlex.join(typed)
    budget = "--quick" if s.budget == "quick" else f"--budget {s.budget}"
    seed = f" --seed {s.seed}" if s.seed else ""
    return f"latentgeo reproduce {experiment} --data {s.data} {budget}{seed}"
