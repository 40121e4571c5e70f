"""The memory budget: settings, defaults, and every heavy path obeying it."""

from __future__ import annotations

import builtins
import sys
import warnings

import pytest
import torch
from torch import Tensor, nn

import latentgeo
from latentgeo import memory, solvers
from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric
from latentgeo.solvers import connecting_geodesic, exp_map


@pytest.fixture(autouse=True)
def _no_global_budget() -> None:
    memory.set_memory_budget(None)
    yield
    memory.set_memory_budget(None)


def test_settings_nest_and_restore() -> None:
    default = latentgeo.current_memory_budget()
    assert default == memory.default_memory_budget()
    latentgeo.set_memory_budget(10**9)
    assert latentgeo.current_memory_budget() == 10**9
    with latentgeo.memory_budget(1000) as value:
        assert value == 1000 == latentgeo.current_memory_budget()
        with memory.use_memory_budget(None):  # a keyword left at None keeps the budget
            assert latentgeo.current_memory_budget() == 1000
        with memory.use_memory_budget(500):
            assert latentgeo.current_memory_budget() == 500
        assert latentgeo.current_memory_budget() == 1000
    assert latentgeo.current_memory_budget() == 10**9


@pytest.mark.parametrize("bad", [0, -5, float("inf"), float("nan")])
def test_bad_budgets_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="nbytes must be a number of bytes >= 1"):
        latentgeo.set_memory_budget(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory_budget must be"):
        connecting_geodesic(lambda z: z, torch.zeros(1, 2), torch.ones(1, 2), memory_budget=bad)
    with pytest.raises(TypeError, match="nbytes must be a number of bytes"):
        with latentgeo.memory_budget("1GB"):  # type: ignore[arg-type]
            pass


def test_default_is_a_share_of_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """From /proc/meminfo (psutil's figure on Linux), with or without psutil: DEFAULT_SHARE of
    the available bytes."""
    psutil = pytest.importorskip("psutil")
    memory._DEFAULTS.clear()
    monkeypatch.setattr(memory, "CPU_DEFAULT_CAP", 1 << 60)
    available = psutil.virtual_memory().available
    got = memory.default_memory_budget("cpu")
    assert abs(got - memory.DEFAULT_SHARE * available) <= 0.2 * memory.DEFAULT_SHARE * available
    real_import = builtins.__import__

    def no_psutil(name: str, *args: object, **kwargs: object) -> object:
        if name == "psutil":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "psutil")
    monkeypatch.setattr(builtins, "__import__", no_psutil)
    memory._DEFAULTS.clear()
    meminfo = memory._read_meminfo() or memory._FALLBACK_BYTES
    assert memory.default_memory_budget("cpu") == int(memory.DEFAULT_SHARE * meminfo)
    monkeypatch.setattr(memory, "CPU_DEFAULT_CAP", 1000)  # the cap on the CPU
    memory._DEFAULTS.clear()
    assert memory.default_memory_budget("cpu") == 1000
    memory._DEFAULTS.clear()


def test_without_proc_meminfo_psutil_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc/meminfo cannot be read (macOS, Windows): psutil, else a fixed 4 GiB."""
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(memory, "_read_meminfo", lambda: None)
    monkeypatch.setattr(memory, "CPU_DEFAULT_CAP", 1 << 60)
    memory._DEFAULTS.clear()
    available = psutil.virtual_memory().available
    got = memory.default_memory_budget("cpu")
    assert abs(got - memory.DEFAULT_SHARE * available) <= 0.2 * memory.DEFAULT_SHARE * available
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    memory._DEFAULTS.clear()
    assert memory.default_memory_budget("cpu") == int(memory.DEFAULT_SHARE * (4 << 30))
    memory._DEFAULTS.clear()


def test_out_of_memory_is_told_apart() -> None:
    assert memory.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))
    assert memory.is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not memory.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not memory.is_out_of_memory(ValueError("out of memory"))  # only the allocator's kinds


class _Recording(nn.Module):
    """A tanh MLP 3 -> 32 -> 20 that records the batch size of every call (untraced: the
    recording is Python, so the generic torch.func path runs it)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 20)).double()
        self.sizes: list[int] = []

    def __call__(self, z: Tensor) -> Tensor:  # type: ignore[override]
        self.sizes.append(z.shape[0])
        return self.net(z)


def _embed(recorder: _Recording) -> object:
    return lambda z: recorder(z)  # a function: no traced fast path, no warning


@torch.no_grad()  # no graph of the recorder's parameters (announced beyond the budget)
def test_shrinking_the_budget_adds_chunks_with_identical_results() -> None:
    z = torch.randn(300, 3, dtype=torch.float64)
    v = torch.randn(300, 3, dtype=torch.float64)
    recorder = _Recording()
    metric = PullbackMetric(_embed(recorder))  # type: ignore[arg-type]
    metric.metric_tensor(z)  # the first call measures the footprint (on its first chunks)
    metric.squared_norm(z, v)
    chunks, results = [], []
    for budget in (1 << 30, 1 << 20, 1 << 17, 1):
        with latentgeo.memory_budget(budget), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            recorder.sizes.clear()
            g = metric.metric_tensor(z)
            chunks.append(len(recorder.sizes))
            results.append((g, metric.squared_norm(z, v)))
        said = [str(w.message) for w in caught]
        # a point needs more than 1 byte: it runs over the budget, and that is said once
        assert len(said) == (2 if budget == 1 else 0), said  # metric_tensor, squared_norm
        assert all("needs about" in m and "more than the memory budget of 1 bytes" in m
                   for m in said)  # fmt: skip
    assert chunks == sorted(chunks) and chunks[0] < chunks[-1], chunks
    assert chunks[-1] >= 300 - 3  # budget 1: one point per chunk after the probe
    for g, sq in results[1:]:
        torch.testing.assert_close(g, results[0][0], rtol=1e-12, atol=0)
        torch.testing.assert_close(sq, results[0][1], rtol=1e-12, atol=0)


def test_geodesics_under_a_small_budget_are_the_same() -> None:
    recorder = _Recording()
    metric = PullbackMetric(_embed(recorder))  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(3)
    z0 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    z1 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    recorder.sizes.clear()
    whole = connecting_geodesic(metric, z0, z1, memory_budget=1 << 30)
    calls_whole, most_whole = len(recorder.sizes), max(recorder.sizes)
    recorder.sizes.clear()
    with pytest.warns(PerformanceWarning) as caught:
        small = connecting_geodesic(metric, z0, z1, memory_budget=1)
    said = sorted(str(w.message).split(" (")[0] for w in caught)  # once each per call
    solver = [m for m in said if m.startswith("one pair's")]
    assert solver == ["one pair's L-BFGS memory", "one pair's solver state"]
    # the metric's chunks: an item over 1 byte, and the graph of the recorder's parameters
    assert all("one item" in m or "autograd graph" in m for m in said if m not in solver)
    assert max(recorder.sizes) < most_whole and len(recorder.sizes) > calls_whole
    torch.testing.assert_close(small.length, whole.length, rtol=1e-12, atol=0)
    assert small.status == whole.status


def test_exp_map_under_a_small_budget_is_the_same() -> None:
    metric = PullbackMetric(_embed(_Recording()))  # type: ignore[arg-type]
    z = torch.randn(20, 3, dtype=torch.float64)
    v = 0.3 * torch.randn(20, 3, dtype=torch.float64)
    whole = exp_map(metric, z, v, method="rk4", steps=8)
    with pytest.warns(PerformanceWarning, match="more than the memory budget of 1 bytes"):
        small = exp_map(metric, z, v, method="rk4", steps=8, memory_budget=1)  # said, not silent
    assert torch.isfinite(whole).any()  # pairs above the tolerance at 8 steps are NaN in both
    torch.testing.assert_close(small, whole, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_a_solve_holds_no_more_tensor_bytes_than_the_budget() -> None:
    """Peak bytes of live tensors during a solve (measured by the budget's own tracker):
    about 25 MiB without a tight budget, within 8 MiB under ``memory_budget=8 MiB``.
    (What cannot be chunked, about 3.5 MiB here, is the floor of any budget.)"""
    from latentgeo._chunked import measure_peak

    net = nn.Sequential(nn.Linear(4, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh())
    net = nn.Sequential(*net, nn.Linear(256, 300)).double()
    gen = torch.Generator().manual_seed(5)
    z0 = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    z1 = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    budget = 8 << 20
    loose = measure_peak(lambda: connecting_geodesic(net, z0, z1, max_iter=20))
    tight = measure_peak(
        lambda: connecting_geodesic(net, z0, z1, max_iter=20, memory_budget=budget)
    )
    assert loose[1] > budget >= tight[1], (loose[1], tight[1])
    torch.testing.assert_close(tight[0].length, loose[0].length, rtol=1e-12, atol=0)


def test_the_solver_state_of_many_knots_stays_within_the_budget() -> None:
    """The preconditioner is ``p × p`` per pair (``p = 440`` here, 1.5 MB in float64): 16
    pairs at once hold 25 MB of them, under a 16 MiB budget they are solved in runs that
    fit, with the same lengths."""
    from latentgeo._chunked import measure_peak

    net = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 100)).double()
    gen = torch.Generator().manual_seed(6)
    z0 = torch.randn(16, 20, generator=gen, dtype=torch.float64)
    z1 = torch.randn(16, 20, generator=gen, dtype=torch.float64)
    options = dict(num_knots=20, refine=False, max_iter=5)
    loose = measure_peak(lambda: connecting_geodesic(net, z0, z1, **options))
    budget = 16 << 20
    tight = measure_peak(lambda: connecting_geodesic(net, z0, z1, memory_budget=budget, **options))
    assert loose[1] > 2 * budget >= 2 * tight[1], (loose[1], tight[1])
    torch.testing.assert_close(tight[0].length, loose[0].length, rtol=1e-12, atol=0)


def test_the_memory_carried_across_refinements_stays_within_the_budget() -> None:
    """160 pairs carry ``2 · 30 · p`` numbers of L-BFGS memory each into every refinement
    (8.4 MB at ``p = 110``); under a 4 MB budget they go on in groups that fit: 6.0 MiB
    of tensors at the peak (22 MiB when every pair carried its memory at once), with
    the same lengths."""
    from latentgeo._chunked import measure_peak

    net = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 40)).double()
    gen = torch.Generator().manual_seed(7)
    z0 = torch.randn(160, 10, generator=gen, dtype=torch.float64)
    z1 = torch.randn(160, 10, generator=gen, dtype=torch.float64)
    options = dict(num_knots=4, max_knots=9, max_iter=40)
    loose = connecting_geodesic(net, z0, z1, **options)
    budget = 4_000_000
    tight = measure_peak(lambda: connecting_geodesic(net, z0, z1, memory_budget=budget, **options))
    assert tight[1] < 2 * budget, tight[1]
    torch.testing.assert_close(tight[0].length, loose.length, rtol=1e-12, atol=0)
    assert tight[0].status == loose.status


@pytest.mark.parametrize("which", ["exp_map_result", "log_map_result"])
def test_the_result_functions_take_the_budget_of_their_tensor_siblings(which: str) -> None:
    recorder = _Recording()
    metric = PullbackMetric(_embed(recorder))  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(200, 3, generator=gen, dtype=torch.float64)  # more than a probe's points
    w = z + 0.3 * torch.randn(200, 3, generator=gen, dtype=torch.float64)
    solve = getattr(solvers, which)
    options = {"init": "straight"} if which == "log_map_result" else {"method": "rk4", "steps": 8}
    runs = {}
    for budget in (1 << 30, 1):
        recorder.sizes.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs[budget] = solve(metric, z, w - z if which == "exp_map_result" else w,
                                 memory_budget=budget, **options)  # fmt: skip
        runs[budget, "most"] = max(recorder.sizes)
        over = [str(w.message) for w in caught if "over the budget" in str(w.message)]
        assert bool(over) == (budget == 1), over  # a point over 1 byte is said to be
    assert runs[1, "most"] < runs[1 << 30, "most"]  # smaller chunks under the small budget
    assert runs[1].status == runs[1 << 30].status
    value = "point" if which == "exp_map_result" else "velocity"
    torch.testing.assert_close(getattr(runs[1], value), getattr(runs[1 << 30], value),
                               rtol=1e-12, atol=1e-15, equal_nan=True)  # fmt: skip
