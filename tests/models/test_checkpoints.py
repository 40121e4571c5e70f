"""Checkpoints: round trips, atomic writes, versions, corrupt files, configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from latentgeo.data import ring
from latentgeo.models import (
    MLP,
    VAE,
    BernoulliDecoder,
    CheckpointError,
    EnsembleDecoder,
    GaussianDecoder,
    GaussianEncoder,
    calibrate_rbf,
    fit,
    from_spec,
    load,
    make_ensemble_vae,
    make_rbf_vae,
    save,
    to_spec,
)
from latentgeo.models import checkpoints as ckpt


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        if isinstance(model, VAE):
            q = model.encode(x)
            out = model.decode(q.mean)
            return [q.mean, q.stddev, out if isinstance(out, torch.Tensor) else out.mean]
        out = model(x)
        return [out if isinstance(out, torch.Tensor) else out.mean]


def test_trained_vaes_round_trip_exactly(tmp_path: Path) -> None:
    x = ring(128, seed=0).x
    ens = make_ensemble_vae(2, num_members=3, hidden=(8,), seed=0)
    fit(ens, x, epochs=1, progress=False)
    rbf = make_rbf_vae(2, num_centres=4, hidden=(8,), seed=0)
    fit(rbf, x, epochs=1, progress=False)
    calibrate_rbf(rbf, x, epochs=3, progress=False)
    for name, model in {"ens": ens, "rbf": rbf}.items():
        path = save(model, tmp_path / f"{name}.pt")
        loaded = load(path)
        assert type(loaded) is VAE and loaded.obs_std == model.obs_std
        for a, b in zip(_outputs(model, x), _outputs(loaded, x), strict=True):
            assert torch.equal(a, b)
    # the RBF's fitted state (centres, bandwidths, W) came back too
    loaded_rbf = load(tmp_path / "rbf.pt")
    torch.testing.assert_close(loaded_rbf.decoder.scale(x[:5]), rbf.decoder.scale(x[:5]))


@pytest.mark.parametrize(
    "model",
    [
        MLP(2, 3, hidden=(4,), activation="softplus", output_activation="sigmoid"),
        GaussianEncoder(3, 2, hidden=(4,)),
        GaussianDecoder(MLP(2, 3, hidden=(4,)), 0.25),
        GaussianDecoder(MLP(2, 3), MLP(2, 3, output_activation="softplus")),
        BernoulliDecoder(MLP(2, 3, hidden=(4,))),
        EnsembleDecoder([MLP(2, 3, hidden=(4,)) for _ in range(2)]),
    ],
    ids=["mlp", "encoder", "gauss_const", "gauss_net", "bernoulli", "ensemble"],
)
def test_every_model_round_trips(model: torch.nn.Module, tmp_path: Path) -> None:
    x = torch.randn(4, 3 if isinstance(model, GaussianEncoder) else 2)
    loaded = load(save(model, tmp_path / "m.pt"))
    for a, b in zip(_outputs(model, x), _outputs(loaded, x), strict=True):
        assert torch.equal(a, b)
    assert to_spec(loaded) == to_spec(model)


def test_dtype_is_kept(tmp_path: Path) -> None:
    net = MLP(2, 2, hidden=(3,)).double()
    assert next(load(save(net, tmp_path / "d.pt")).parameters()).dtype == torch.float64


def test_interrupted_save_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.pt"
    old = MLP(2, 2, hidden=(3,))
    save(old, path)
    before = path.read_bytes()

    def crash(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt("power cut mid-write")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save(MLP(2, 2, hidden=(5,)), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary left behind
    torch.testing.assert_close(load(path)(torch.ones(1, 2)), old(torch.ones(1, 2)))


def test_corrupt_foreign_and_future_files_give_clear_errors(tmp_path: Path) -> None:
    good = save(MLP(2, 2, hidden=(3,)), tmp_path / "good.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt"):
        load(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a latentgeo checkpoint"):
        load(foreign)
    payload = torch.load(good, weights_only=True)
    payload["version"] = 99
    future = tmp_path / "future.pt"
    torch.save(payload, future)
    with pytest.raises(CheckpointError, match="format version 99"):
        load(future)
    payload["version"] = ckpt.FORMAT_VERSION
    payload["state_dict"] = {"net.0.weight": torch.zeros(1)}
    torch.save(payload, future)
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        load(future)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "missing.pt")


def test_unregistered_models_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="register_model"):
        save(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(TypeError, match="register_model"):
        save(EnsembleDecoder([torch.nn.Linear(2, 2)]), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="unknown model class"):
        from_spec({"class": "NoSuchModel", "config": {}})
    assert not (tmp_path / "x.pt").exists()
