"""The log map's Jacobian measurements: exact on a flat space, failures named by status."""

from __future__ import annotations

import torch

from latentgeo.metrics import as_metric
from latentgeo.solvers.logmap import _LogSolver
from latentgeo.solvers.logmap_measure import failure
from latentgeo.solvers.status import Status, code
from latentgeo.testing import StereographicSphere


def test_failure_is_the_first_unconverged_status_else_nonfinite() -> None:
    ok, steps, nan = (code(s) for s in (Status.CONVERGED, Status.MAX_STEPS, Status.NON_FINITE))
    codes = torch.tensor([[ok, steps, nan], [ok, ok, ok], [nan, ok, steps]])
    assert failure(codes).tolist() == [steps, nan, nan]


def test_a_flat_space_measures_the_jacobian_of_its_linear_map() -> None:
    """Under a linear decoder ``A`` geodesics are straight lines, ``exp_{z0}(x) = z0 + x``:
    the measured Jacobian is the identity (to the differences' rounding)."""
    torch.manual_seed(0)
    a = torch.randn(5, 3, dtype=torch.float64)
    metric = as_metric(lambda z: z @ a.T)
    z0 = torch.randn(4, 3, dtype=torch.float64)
    v = torch.randn(4, 3, dtype=torch.float64)
    solver = _LogSolver(metric, z0, z0 + v, v, 1e-8, 1e-10, 1000)
    shot = solver.shoot()
    jac, why = solver.measure_across(shot, torch.arange(4))
    eye = torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    torch.testing.assert_close(jac, eye, rtol=0, atol=1e-5)
    assert why.tolist() == [code(Status.NON_FINITE)] * 4  # no failure: the default reason


def test_remeasure_takes_only_unmeasured_or_stale_pairs() -> None:
    sphere = as_metric(StereographicSphere())
    z0 = torch.tensor([[0.3, 0.1], [-0.2, 0.4]], dtype=torch.float64)
    v = torch.tensor([[0.5, 0.2], [0.1, -0.6]], dtype=torch.float64)
    solver = _LogSolver(sphere, z0, z0 + v, v, 1e-8, 1e-10, 1000)
    solver.st.measured[:] = True
    solver.st.measured[1] = False
    before = solver.st.exp_maps.clone()
    solver.remeasure(solver.shoot())
    # each pair: one shot; pair 1 alone: d - 1 = 1 more map across it, now measured
    assert (solver.st.exp_maps - before).tolist() == [1, 2]
    assert solver.st.measured.tolist() == [True, True]
    assert solver.st.measures.tolist() == [0, 1]


def test_a_model_kept_on_its_probes_carries_their_doubt() -> None:
    """With ``d − 1`` above the probes, a model the probes found close enough is kept, and
    its error across the directions they did not span is about their scaled miss: the
    solver's contraction estimate may not be below it (one conv-VAE pair was reported
    converged 2.1 times outside its bound on a contraction of 0.03 where the model was
    0.1 off). A model measured in full has no doubt."""
    from latentgeo.solvers.logmap_measure import DOUBT

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 20))
    metric = as_metric(net.double())
    z0 = 0.3 * torch.randn(6, 6, dtype=torch.float64)
    v = 0.3 * torch.randn(6, 6, dtype=torch.float64)
    solver = _LogSolver(metric, z0, z0 + v + 0.05 * torch.randn_like(v), v, 1e-8, 1e-10, 1000)
    shot = solver.shoot(probe=True)
    solver.learn(shot, first=True)
    solver.measure_jacobian(shot)
    doubt = solver.st.doubt
    assert bool((doubt >= 0).all() and (doubt <= DOUBT).all())
    assert bool((doubt > 0).any())  # models kept on their probes
    solver.settle(torch.arange(6), solver.st.jac.clone(), solver.st.why.clone(), v)
    assert solver.st.doubt.tolist() == [0.0] * 6
