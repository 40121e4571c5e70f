"""Log maps of many pairs (``geometry.logmaps``), each method against the closed form."""

from __future__ import annotations

import pytest
import torch

from latentgeo.geometry.logmaps import log_maps
from latentgeo.metrics import as_metric
from latentgeo.solvers import Status
from latentgeo.testing import PoincareDisk


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    base = 0.5 * torch.rand(5, 2, generator=gen, dtype=torch.float64) - 0.25
    target = 0.5 * torch.rand(5, 2, generator=gen, dtype=torch.float64) - 0.25
    return base, target


@pytest.mark.parametrize(("method", "atol"), [("log", 1e-6), ("energy", 1e-3)])
def test_solvers_match_the_closed_form(method: str, atol: float) -> None:
    disk = PoincareDisk()
    base, target = _pairs()
    lm = log_maps(as_metric(disk), base, target, method=method)  # type: ignore[arg-type]
    assert lm.status == [Status.CONVERGED] * 5
    torch.testing.assert_close(lm.velocity, disk.log(base, target), rtol=0, atol=atol)
    torch.testing.assert_close(lm.length, disk.distance(base, target), rtol=0, atol=atol)


def test_a_closed_form_and_its_non_finite_pairs() -> None:
    disk = PoincareDisk()
    base, target = _pairs()
    lm = log_maps(as_metric(disk), base, target, method=disk.log)
    torch.testing.assert_close(lm.length, disk.distance(base, target), rtol=1e-10, atol=0)
    bad = log_maps(as_metric(disk), base, target, method=lambda a, b: torch.full_like(a, torch.nan))
    assert bad.status == [Status.NON_FINITE] * 5


def test_an_unknown_method_is_refused() -> None:
    base, target = _pairs()
    with pytest.raises(ValueError, match="method must be 'log' or 'energy'"):
        log_maps(as_metric(PoincareDisk()), base, target, method="newton")  # type: ignore[arg-type]
