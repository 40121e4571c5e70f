"""The connection Γ(u, w) in both forms against the Christoffel symbols of latentgeo.metrics."""

from __future__ import annotations

import pytest
import torch

from latentgeo.geometry import connection
from latentgeo.geometry.connection import resolve_form
from latentgeo.metrics import LocalPCAMetric, Metric, christoffel_symbols
from latentgeo.testing import PoincareDisk, StereographicSphere, tolerance

from .geometries import explicit_sphere, mlp_metric


def reference(metric: object, z: torch.Tensor, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nkij,ni,nj->nk", christoffel_symbols(metric, z), u, w)  # type: ignore[arg-type]


METRICS = {
    "sphere-decoder": lambda dt: StereographicSphere(),
    "sphere-explicit": lambda dt: explicit_sphere(),
    "disk": lambda dt: PoincareDisk(),
    "mlp": lambda dt: mlp_metric(3, dt),
    "local-pca": lambda dt: LocalPCAMetric(torch.randn(30, 3, dtype=dt), sigma=0.7, rho=0.1),
}


@pytest.mark.parametrize("form", ["christoffel", "acceleration"])
@pytest.mark.parametrize("make", METRICS.values(), ids=list(METRICS))
def test_both_forms_match_christoffel_symbols(make, form: str, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    metric = make(dtype)
    z = 0.3 * torch.randn(64, 3, dtype=dtype)
    u, w = torch.randn(2, 64, 3, dtype=dtype)
    # polarisation: w may be tiny or large against u; Γ is bilinear, so scaling must not matter
    w = w * torch.logspace(-3, 3, 64, dtype=dtype)[:, None]
    out = connection(metric, z, u, w, form=form)  # type: ignore[arg-type]
    rtol, atol = tolerance(dtype, ops=50)
    torch.testing.assert_close(out, reference(metric, z, u, w), rtol=rtol, atol=atol * w.norm())


def test_symmetric_and_zero_for_zero_vectors() -> None:
    z = 0.3 * torch.randn(8, 2, dtype=torch.float64)
    u, w = torch.randn(2, 8, 2, dtype=torch.float64)
    disk = PoincareDisk()
    torch.testing.assert_close(connection(disk, z, u, w), connection(disk, z, w, u))
    assert connection(disk, z, u, torch.zeros_like(u), form="acceleration").abs().max() == 0


def test_auto_form_follows_the_kind_of_metric() -> None:
    dec = StereographicSphere()
    from latentgeo.metrics import as_metric

    pull: Metric = as_metric(dec)
    assert resolve_form(pull, "auto") == "acceleration"
    assert resolve_form(2.0 * pull + PoincareDisk(), "auto") == "acceleration"
    assert resolve_form(PoincareDisk(), "auto") == "christoffel"
    with pytest.raises(ValueError, match="form must be one of"):
        resolve_form(pull, "hessian")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="w contains NaN"):
        connection(PoincareDisk(), torch.zeros(2), torch.ones(2), torch.tensor([1.0, float("nan")]))
