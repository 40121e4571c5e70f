"""The batched integrators: order, per-pair steps and failures, error estimates, gradients."""

from __future__ import annotations

import pytest
import torch

from latentgeo.solvers import Status
from latentgeo.solvers.integrators import dopri5, rk4
from latentgeo.solvers.ode import dopri5 as dopri5_from_ode


def oscillator(omega: torch.Tensor):
    def rhs(y: torch.Tensor) -> torch.Tensor:
        # rows are independent: each row has its own frequency, looked up by its value
        return torch.stack([y[:, 1], -(y[:, 2] ** 2) * y[:, 0], torch.zeros_like(y[:, 2])], -1)

    y0 = torch.stack([torch.ones_like(omega), torch.zeros_like(omega), omega], -1)
    return rhs, y0


def test_still_importable_from_ode() -> None:
    assert dopri5_from_ode is dopri5


def test_rk4_is_fourth_order_and_estimates_its_error() -> None:
    omega = torch.tensor([1.0, 2.0], dtype=torch.float64)
    rhs, y0 = oscillator(omega)
    exact = torch.cos(omega)
    ratios = []
    errs = []
    for n in (10, 20, 7):  # 7: odd, the coarse run has 4 steps (ratio 7/4)
        res = rk4(rhs, y0, 1.0, n)
        err = (res.states[:, -1, 0] - exact).abs()
        errs.append(err.max())
        ratios.append(res.error[:, 0] / err)
        assert res.evaluations == 4 * n + 4 * ((n + 1) // 2)
    assert 12 < errs[0] / errs[1] < 20  # 2⁴ = 16
    # three times the step doubling (Richardson) estimate: above the error, not by much
    for ratio in ratios:
        assert bool(((ratio > 1.0) & (ratio < 5.0)).all()), ratio


def test_rk4_one_step_still_reports_an_error() -> None:
    res = rk4(lambda y: -y, torch.ones(1, 1, dtype=torch.float64), 0.5, 1)
    exact = torch.exp(torch.tensor(-0.5, dtype=torch.float64))
    assert float(res.error[0, 0]) >= float((res.states[0, -1, 0] - exact).abs())


def test_dopri5_per_pair_steps_and_accuracy() -> None:
    omega = torch.tensor([0.5, 1.0, 8.0], dtype=torch.float64)
    rhs, y0 = oscillator(omega)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    res = dopri5(rhs, y0, t, rtol=1e-10, atol=1e-12)
    assert res.statuses == [Status.CONVERGED] * 3
    torch.testing.assert_close(res.states[..., 0], torch.cos(omega[:, None] * t), rtol=0, atol=1e-8)
    # the fast oscillator needs more steps than the slow ones, which do not wait for it
    assert res.steps[2] > 2 * res.steps[0]
    assert res.messages == ["converged"] * 3


@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-10])
def test_dopri5_error_estimate_bounds_the_error(tol: float) -> None:
    omega = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    rhs, y0 = oscillator(omega)
    res = dopri5(rhs, y0, torch.tensor([0.0, 2.0], dtype=torch.float64), rtol=tol, atol=tol)
    err = (res.states[:, -1, 0] - torch.cos(2.0 * omega)).abs()
    assert bool((err <= res.error[:, 0]).all())
    assert bool((res.error[:, 0] < 1000 * tol).all())  # and is not absurdly pessimistic


def test_dopri5_reports_failures_per_pair() -> None:
    rhs, y0 = oscillator(torch.tensor([1.0, 50.0], dtype=torch.float64))
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    res = dopri5(rhs, y0, t, rtol=1e-8, atol=1e-10, max_steps=60)
    assert res.statuses == [Status.CONVERGED, Status.MAX_STEPS]
    assert torch.isfinite(res.states[0, -1]).all() and torch.isnan(res.states[1, -1]).all()
    assert torch.isfinite(res.error[0]).all() and torch.isinf(res.error[1]).all()

    def blow_up(y: torch.Tensor) -> torch.Tensor:
        return y * y  # y' = y², y(0) = 1 reaches infinity at t = 1; y(0) = 0.1 at t = 10

    y0 = torch.tensor([[1.0], [0.1]], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    res = dopri5(blow_up, y0, t, rtol=1e-8, atol=1e-8, max_steps=300)
    assert res.statuses[0] in (Status.NON_FINITE, Status.STEP_UNDERFLOW, Status.MAX_STEPS)
    assert res.statuses[1] is Status.CONVERGED
    torch.testing.assert_close(res.states[1, -1, 0], torch.tensor(0.125, dtype=torch.float64))


def test_a_blow_up_in_finite_time_stops_at_the_step_floor() -> None:
    """y' = y², y(0) = 1 reaches infinity at t = 1: its steps keep being accepted, ever
    smaller; once the next step would be under the floor the row stops (it went on for
    5,676 steps to an overflow, or to the step budget at rtol 1e-10)."""
    y0 = torch.tensor([[1.0], [0.1]], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    for tol in (1e-8, 1e-10):
        res = dopri5(lambda y: y * y, y0, t, rtol=tol, atol=tol, max_steps=10_000)
        assert res.statuses == [Status.STEP_UNDERFLOW, Status.CONVERGED]
        assert int(res.steps[0]) < 1_500 and torch.isinf(res.error[0]).all()
        torch.testing.assert_close(res.states[1, -1, 0], torch.tensor(0.125, dtype=torch.float64))
    # output times closer together than the floor are reached, not taken for a blow-up
    t = torch.tensor([0.0, 0.5, 0.5 + 1e-15, 0.5 + 2e-15, 1.0], dtype=torch.float64)
    res = dopri5(lambda y: -y, y0, t, rtol=1e-10, atol=1e-12, max_steps=10_000)
    assert res.statuses == [Status.CONVERGED] * 2
    torch.testing.assert_close(res.states[..., 0], y0 * torch.exp(-t), rtol=1e-9, atol=0)


def test_gradients_through_both_integrators() -> None:
    def rhs(y: torch.Tensor) -> torch.Tensor:  # y' = -a y², a in the state
        return torch.stack([-y[:, 1] * y[:, 0] ** 2, torch.zeros_like(y[:, 1])], -1)

    y0 = torch.tensor([[1.0, 0.5], [2.0, 0.3]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)

    def exact(y: torch.Tensor) -> torch.Tensor:
        return y[:, 0] / (1.0 + y[:, 1] * y[:, 0])

    (want,) = torch.autograd.grad(exact(y0).sum(), y0)
    res = dopri5(rhs, y0, t, rtol=1e-11, atol=1e-12)
    (got,) = torch.autograd.grad(res.states[:, -1, 0].sum(), y0)
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)
    # RK4: exact derivatives of the discrete map
    assert torch.autograd.gradcheck(lambda y: rk4(rhs, y, 1.0, 5).states[:, -1], (y0,))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f, y, t: rk4(f, y, 1.0, 0), "steps must be an int >= 1"),
        (lambda f, y, t: rk4(f, y, 1.0, 4, num_points=1), "num_points must be an int >= 2"),
        (lambda f, y, t: rk4(f, y, float("nan"), 4), "t1 must be a finite number"),
        (lambda f, y, t: dopri5(f, y, t, rtol=0.0, atol=1e-9), r"rtol must be .* > 0"),
        (lambda f, y, t: dopri5(f, y, t, rtol=1e-6, atol=-1.0), r"atol must be .* >= 0"),
        (lambda f, y, t: dopri5(f, y, t, rtol=1e-6, atol=0, max_steps=0), "max_steps must be"),
        (lambda f, y, t: dopri5(f, y, t[1:], rtol=1e-6, atol=0), "t_eval must be a 1-d"),
        (lambda f, y, t: dopri5(f, y, t.flip(0), rtol=1e-6, atol=0), "t_eval must be finite"),
    ],
)
def test_bad_options(call, match: str) -> None:
    y0 = torch.ones(2, 1, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        call(lambda y: -y, y0, t)
