"""Checkpoints: round trips, atomic writes, versions, checksums, damaged files, configurations."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from latentgeo.data import ring
from latentgeo.exceptions import LatentgeoWarning
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
    # loaded for its geometry: in evaluation mode, every submodule (as_metric refuses
    # training-mode Dropout and BatchNorm), whatever mode it was saved in
    assert not any(m.training for m in loaded.modules())


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
    payload["sha256"] = ckpt.checksum(payload)
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


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["rbf", "ensemble"])
def test_format_1_checkpoints_written_before_checksums_still_load(name: str) -> None:
    # written by latentgeo 0.1.0 at a031fa9 (tests/models/fixtures/make_checkpoint_v1.py)
    expected = json.loads((FIXTURES / "checkpoint_v1_expected.json").read_text())
    with pytest.warns(LatentgeoWarning, match="without a checksum"):
        vae = load(FIXTURES / f"vae_{name}_v1.pt", expected=VAE)
    with torch.no_grad():
        out = vae.decode(torch.tensor(expected["z"]))
    mean = out if isinstance(out, torch.Tensor) else out.mean
    want = torch.tensor(expected[name]["decoded_mean"], dtype=torch.float64)
    torch.testing.assert_close(mean.double(), want, rtol=0, atol=0)
    if "decoded_std" in expected[name]:
        want_std = torch.tensor(expected[name]["decoded_std"], dtype=torch.float64)
        torch.testing.assert_close(out.stddev.double(), want_std, rtol=0, atol=0)
    # saved again, it gets the current format and a checksum
    payload = torch.load(FIXTURES / f"vae_{name}_v1.pt", weights_only=True)
    assert payload["version"] == 1 and "sha256" not in payload


def test_checksum_covers_tensors_settings_and_versions(tmp_path: Path) -> None:
    path = save(MLP(2, 3, hidden=(4,)), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["version"] == ckpt.FORMAT_VERSION == 2
    assert payload["sha256"] == ckpt.checksum(payload)
    for change in (
        lambda p: p["state_dict"]["net.0.weight"].view(-1)[0].add_(1e-7),
        lambda p: p["state_dict"].__setitem__("net.0.bias", p["state_dict"]["net.0.bias"].double()),
        lambda p: p["model"]["config"].__setitem__("activation", "relu"),
        lambda p: p.__setitem__("dtype", "float64"),
        lambda p: p.__setitem__("latentgeo_version", "9.9"),
    ):
        changed = torch.load(path, weights_only=True)
        change(changed)
        assert ckpt.checksum(changed) != payload["sha256"]
        torch.save(changed, tmp_path / "changed.pt")
        with pytest.raises(CheckpointError, match=r"changed\.pt is damaged: the SHA-256"):
            load(tmp_path / "changed.pt")


def _data_offsets(path: Path) -> list[int]:
    """Byte offsets of the tensors' raw data inside a torch zip file."""
    raw = path.read_bytes()
    offsets = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename and info.file_size > 0:
                # the local header: 30 bytes, the name, the extra field (torch's alignment)
                head = info.header_offset
                n_name = int.from_bytes(raw[head + 26 : head + 28], "little")
                n_extra = int.from_bytes(raw[head + 28 : head + 30], "little")
                start = head + 30 + n_name + n_extra
                offsets += [start, start + info.file_size // 2, start + info.file_size - 1]
    return offsets


def test_a_flipped_bit_never_loads_a_different_model(tmp_path: Path) -> None:
    net = MLP(2, 3, hidden=(4,))
    path = save(net, tmp_path / "m.pt")
    raw = path.read_bytes()
    in_weights = _data_offsets(path)
    assert len(in_weights) >= 6
    sampled = list(range(0, len(raw), max(1, len(raw) // 40)))
    flipped = tmp_path / "flipped.pt"
    errors = 0
    for offset in sorted(set(sampled + in_weights)):
        damaged = bytearray(raw)
        damaged[offset] ^= 1 << (offset % 8)
        flipped.write_bytes(bytes(damaged))
        try:
            with warnings.catch_warnings():  # torch warns of an odd pickle protocol byte
                warnings.simplefilter("ignore", UserWarning)
                model = load(flipped)
        except CheckpointError as err:
            assert str(flipped) in str(err)
            errors += 1
            continue
        # a flip in bytes torch never reads (zip padding, time stamps) changes nothing
        assert offset not in in_weights, offset
        assert to_spec(model) == to_spec(net)
        for key, value in net.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), (offset, key)
    assert errors >= len(in_weights)


@pytest.mark.parametrize("keep", [0, 10, 200, 0.5, -100, -1])
def test_truncated_files_give_clear_errors(tmp_path: Path, keep: float) -> None:
    raw = save(MLP(2, 3, hidden=(4,)), tmp_path / "m.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    n = int(len(raw) * keep) if isinstance(keep, float) else keep % len(raw) if keep else 0
    cut.write_bytes(raw[:n])
    with pytest.raises(CheckpointError, match=r"cut\.pt is not a readable checkpoint"):
        load(cut)


def test_a_checkpoint_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = save(MLP(2, 3, hidden=(4,)), tmp_path / "net.pt")
    with pytest.raises(CheckpointError, match=r"net\.pt holds a MLP, expected a VAE"):
        load(path, expected=VAE)
    assert isinstance(load(path, expected=torch.nn.Module), MLP)
    plain = tmp_path / "state.pt"
    torch.save(MLP(2, 3).state_dict(), plain)
    with pytest.raises(CheckpointError, match=r"state\.pt is not a latentgeo checkpoint"):
        load(plain)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.pt is not a readable checkpoint"):
        load(text)


def test_loading_never_runs_code_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    torch.save({"format": ckpt.FORMAT, "version": 2, "x": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(path)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_mode_follows_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = save(MLP(2, 2), tmp_path / "sub" / "m.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert path.parent.stat().st_mode & 0o777 == 0o777 & ~umask
