"""Tables, figure and summary of :mod:`latentgeo.experiments.ensembles_cv`."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from latentgeo.analysis import RetrainingComparison
from latentgeo.analysis.counts import convergence_warning
from latentgeo.experiments.common import NOT_A_RESULT, Splits, command_line, converged_note
from latentgeo.experiments.rundir import RunDir
from latentgeo.experiments.runs import summary_head
from latentgeo.viz import plot_cv_histograms

__all__ = ["summarise", "write_figure", "write_tables"]


def _summary_of(cmp: RetrainingComparison) -> dict[str, Any]:
    used = cmp.used
    cv_a, cv_b = cmp.cv_a[used], cmp.cv_b[used]
    test = cmp.test
    return {
        "pairs_used": cmp.num_used,
        "include_all": cmp.include_all,
        "converged_ensemble": cmp.converged_a,
        "converged_rbf": cmp.converged_b,
        "solves_per_model": cmp.total,
        "converged_pairs": cmp.converged_pairs,
        "num_pairs": cmp.num_pairs,
        "status_counts": dict(zip(("ensemble", "rbf"), cmp.status_counts().values(), strict=True)),
        "warning": cmp.warning,
        "cv_ensemble": _describe(cv_a),
        "cv_rbf": _describe(cv_b),
        "t": None if test is None else test.statistic,
        "df": None if test is None else test.df,
        "p_less": None if test is None else test.pvalue,
        "mean_difference": None if test is None else test.mean_difference,
    }


def _describe(cv: np.ndarray) -> dict[str, float]:
    if cv.size == 0:
        return {}
    return {
        k: float(f(cv))
        for k, f in (("min", np.min), ("median", np.median), ("mean", np.mean), ("max", np.max))
    }


def write_figure(run: RunDir, comps: dict[str, RetrainingComparison], evidence: str) -> None:
    """``cv_histogram.png``: per-pair CVs, ensemble vs RBF, one panel per ensemble distance."""
    from latentgeo.viz import new_figure

    fig, axes = new_figure(2, size=(6.0, 4.6))
    for ax, (name, cmp) in zip(axes, comps.items(), strict=True):
        if cmp.num_used == 0:
            ax.set_title(f"{name}: no pair converged everywhere")
            continue
        t = "n/a" if cmp.test is None else f"{cmp.test.statistic:.2f}"
        plot_cv_histograms(
            cmp.cv_a[cmp.used],
            cmp.cv_b[cmp.used],
            ax=ax,
            labels=(f"ensemble, {name}", "RBF"),
            title=f"{name}: t = {t} over {cmp.num_used} pairs",
            note=f"ensemble {converged_note(cmp.converged_a, cmp.total, 'solves')}; "
            f"RBF {converged_note(cmp.converged_b, cmp.total, 'solves')}\n{evidence}",
        )
    run.save_figure("cv_histogram.png", fig)


def write_tables(
    run: RunDir,
    results: list[dict],
    pairs: tuple[Tensor, Tensor],
    splits: Splits,
    comps: dict[str, RetrainingComparison],
) -> None:
    """``distances.csv`` (every solve, its status), ``cv.csv``, ``training.csv``."""
    a, b = pairs
    ya, yb = splits.test.y[a].tolist(), splits.test.y[b].tolist()
    ends = [[int(a[p]), int(b[p]), ya[p], yb[p]] for p in range(a.numel())]
    rows = []
    for r, res in enumerate(results):
        for model, key in (
            ("ensemble", "sampled"),
            ("ensemble", "mean_metric"),
            ("rbf", "geodesic"),
        ):
            t = res[model]["table"][key]
            rows += [
                [model, key, r, p, *ends[p], f"{t['length'][p]:.6g}", t["status"][p]]
                for p in range(len(ends))
            ]
    head = ["index_a", "index_b", "class_a", "class_b"]
    run.write_csv(
        "distances.csv", ["model", "estimator", "repeat", "pair", *head, "distance", "status"], rows
    )
    dec, mean = comps["decorrelated"], comps["mean metric"]
    run.write_csv(
        "cv.csv",
        [
            "pair",
            *head,
            "cv_ensemble_decorrelated",
            "cv_rbf",
            "used_decorrelated",
            "cv_ensemble_mean_metric",
            "cv_rbf_mean_metric_pairs",
            "used_mean_metric",
        ],
        [
            [
                p,
                *ends[p],
                f"{dec.cv_a[p]:.6g}",
                f"{dec.cv_b[p]:.6g}",
                bool(dec.used[p]),
                f"{mean.cv_a[p]:.6g}",
                f"{mean.cv_b[p]:.6g}",
                bool(mean.used[p]),
            ]
            for p in range(len(ends))
        ],
    )
    keys = [
        "seed",
        "fit_images",
        "epochs",
        "best_epoch",
        "stopped_early",
        "final_val_loss",
        "seconds",
    ]
    run.write_csv(
        "training.csv",
        ["model", "repeat", *keys],
        [
            [k, r, *(res[k]["training"][c] for c in keys)]
            for r, res in enumerate(results)
            for k in ("ensemble", "rbf")
        ],
    )


def _training_summary(results: list[dict], kind: str) -> dict[str, Any]:
    reps = [res[kind]["training"] for res in results]
    return {
        "final_val_loss": [rep["final_val_loss"] for rep in reps],
        "epochs": [rep["epochs"] for rep in reps],
        "stopped_early": sum(bool(rep["stopped_early"]) for rep in reps),
        "fit_images": reps[0]["fit_images"],
        "seconds": [rep["seconds"] for rep in reps],
    }


def _comparison_line(name: str, c: dict[str, Any]) -> str:
    if c["t"] is None:
        return f"{name}: fewer than 2 pairs converged under every retraining: no test"
    ens, rbf = c["cv_ensemble"], c["cv_rbf"]
    total = c["solves_per_model"]
    return (
        f"{name} ensemble vs RBF: t = {c['t']:.2f}, p (one-sided, ensemble CV lower) = "
        f"{c['p_less']:.2g}, over {c['pairs_used']}"
        f"{' of ' + str(c['num_pairs']) if 'num_pairs' in c else ''} pairs"
        f"{' (converged or not)' if c['include_all'] else ' (converged under every retraining)'}"
        f"; CV ensemble {ens['min']:.3f}-"
        f"{ens['max']:.3f} (median {ens['median']:.3f}), RBF {rbf['min']:.3f}-{rbf['max']:.3f} "
        f"(median {rbf['median']:.3f}); ensemble "
        f"{converged_note(c['converged_ensemble'], total, 'solves')}, RBF "
        f"{converged_note(c['converged_rbf'], total, 'solves')}"
    )


def _warnings(c: dict[str, Any]) -> list[str]:
    """``WARNING:`` lines when fewer than 90 % of a model's solves (or of the pairs under
    every retraining) converged."""
    total = c["solves_per_model"]
    found = [
        convergence_warning(c["converged_ensemble"], total, "ensemble solves"),
        convergence_warning(c["converged_rbf"], total, "RBF solves"),
    ]
    if "converged_pairs" in c:
        found.append(
            convergence_warning(c["converged_pairs"], c["num_pairs"], "pairs (every retraining)")
        )
    return [w for w in found if w]


def summarise(
    s: Any,
    results: list[dict],
    comps: dict[str, RetrainingComparison],
    compute: float,
    data_classes: tuple[str, tuple[int, ...] | None],
    paper: dict[str, Any],
) -> dict[str, Any]:
    """The summary of a run: the two comparisons, the training, the report lines.

    Args:
        s: the run's :class:`~latentgeo.experiments.CVSettings`.
        results: per retraining, per model: ``{"training": ..., "table": ...}``.
        comps: ``"decorrelated"`` and ``"mean metric"`` comparisons with the RBF.
        compute: seconds spent in training and geodesics over all invocations.
        data_classes: the data set and its classes.
        paper: the paper's numbers.
    """
    dec, mean = _summary_of(comps["decorrelated"]), _summary_of(comps["mean metric"])
    train = {k: _training_summary(results, k) for k in ("ensemble", "rbf")}
    quick = s.budget == "quick"
    data, classes = data_classes
    lines = [NOT_A_RESULT] if quick else []
    lines.append(
        f"ensembles-cv: {data} classes {list(classes) if classes else 'all'}, d = {s.latent_dim}; "
        f"budget {s.budget}, seed {s.seed}, {s.repeats} retrainings x {s.pairs} pairs"
    )
    for k, tr in train.items():
        vals = tr["final_val_loss"]
        lines.append(
            f"training {k}: final validation loss {min(vals):.2f}-{max(vals):.2f}, "
            f"{min(tr['epochs'])}-{max(tr['epochs'])} epochs, early stopping ended "
            f"{tr['stopped_early']}/{len(vals)} ({tr['fit_images']} fitting images)"
        )
    lines.append(_comparison_line("decorrelated", dec))
    lines.append(_comparison_line("mean-metric", mean))
    lines += _warnings(dec)
    lines.append(
        f"paper ({paper['dataset']}): t = {paper['t']} (p = 1.000 for 'greater', i.e. "
        "ensemble CV lower); CV ensemble about 0.045-0.095, RBF about 0.08-0.5"
    )
    lines.append(f"compute: {compute:.0f} s in training and geodesics (all invocations)")
    return {
        **summary_head("ensembles-cv (Syrota et al. 2024)", s),
        "decorrelated": dec,
        "mean_metric": mean,
        "training": train,
        "compute_seconds": round(compute, 2),
        "paper": paper,
        "command": command_line("ensembles-cv", s),
        "report": lines,
    }
