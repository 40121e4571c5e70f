"""Chunks sized by the memory budget: the measured footprint and out-of-memory retries."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import latentgeo
from latentgeo import _chunked
from latentgeo._chunked import Footprint, footprint, measure_peak, run_chunked
from latentgeo.exceptions import PerformanceWarning
from latentgeo.metrics import PullbackMetric


class _Owner:
    """Something to cache footprints on."""


def test_the_footprint_is_fitted_from_two_probes() -> None:
    owner = _Owner()
    fixed = torch.ones(4096, dtype=torch.float64)  # 32 KiB allocated whatever the chunk

    def fn(sl: slice) -> Tensor:
        scratch = fixed + 1.0  # fixed cost
        rows = torch.ones(sl.stop - sl.start, 100, dtype=torch.float64)  # 800 bytes per item
        return rows.sum(-1) + scratch[0]

    with latentgeo.memory_budget(1 << 30):
        out = run_chunked(fn, 100, owner=owner, key="k")
    assert torch.cat(out).shape == (100,)
    fp = footprint(owner, "k")
    assert fp is not None
    assert 800 <= fp.per_point <= 900, fp
    assert 32_768 <= fp.fixed <= 32_768 + 2000, fp


def test_a_smaller_budget_gives_more_chunks_and_the_same_result() -> None:
    owner = _Owner()
    x = torch.randn(1000, 50, dtype=torch.float64)

    def fn(sl: slice) -> Tensor:
        return torch.tanh(x[sl] @ x.T[:, :64]).sum(-1)

    counts, outs = [], []
    for budget in (1 << 30, 1 << 22, 1 << 18, 1 << 15):
        with latentgeo.memory_budget(budget):
            parts = run_chunked(fn, 1000, owner=owner, key="tanh")
        counts.append(len(parts))
        outs.append(torch.cat(parts))
    assert counts == sorted(counts) and counts[0] < counts[-1], counts
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-12, atol=0)


def test_the_probe_keeps_to_the_budget() -> None:
    """An item of 64 KiB under a 1 MiB budget: the probe of 16 and 32 items would hold
    2 MiB; one item is measured first and the probe lowered to 8 and 16 items, and the
    footprint is still fitted."""
    owner = _Owner()
    x = torch.randn(200, 8192, dtype=torch.float64)

    def fn(sl: slice) -> Tensor:
        return (x[sl] * 2.0).sum(-1)  # a 64 KiB temporary an item

    with latentgeo.memory_budget(1 << 20):
        parts, peak = measure_peak(lambda: run_chunked(fn, 200, owner=owner, key="big"))
    assert peak <= 1 << 20, peak
    torch.testing.assert_close(torch.cat(parts), (x * 2.0).sum(-1), rtol=1e-12, atol=0)
    fp = footprint(owner, "big")
    assert fp is not None and 65_536 <= fp.per_point <= 66_000, fp
    with latentgeo.memory_budget(96 << 10):  # two items do not fit: one measured
        run_chunked(fn, 200, owner=(small := _Owner()), key="big")
    fp = footprint(small, "big")
    assert fp is not None and fp.fixed == 0 and 65_536 <= fp.per_point <= 66_000, fp


def test_a_call_too_small_to_probe_is_chunked_by_one_item() -> None:
    """20 items of 64 KiB under a 256 KiB budget ran in one chunk, unmeasured (1.3 MB):
    its first item alone gives a provisional footprint, a larger call the probed one."""
    owner, sizes = _Owner(), []
    x = torch.randn(200, 8192, dtype=torch.float64)

    def fn(sl: slice) -> Tensor:
        sizes.append(sl.stop - sl.start)
        return (x[sl] * 2.0).sum(-1)

    with latentgeo.memory_budget(256 << 10):
        parts, peak = measure_peak(lambda: run_chunked(fn, 20, owner=owner, key="small"))
        assert peak <= 256 << 10 and sizes[0] == 1 and max(sizes[1:]) <= 2, (peak, sizes)
        torch.testing.assert_close(torch.cat(parts), (x[:20] * 2.0).sum(-1), rtol=0, atol=0)
        fp = footprint(owner, "small")
        assert fp is not None and fp.provisional
        run_chunked(fn, 200, owner=owner, key="small")
    fp = footprint(owner, "small")
    assert fp is not None and not fp.provisional and 65_536 <= fp.per_point <= 66_000, fp
    sizes.clear()
    run_chunked(fn, 1, owner=_Owner(), key="one")  # one item: nothing to measure or chunk
    assert sizes == [1]


@pytest.mark.parametrize(("n", "budget"), [(2000, 8 << 20), (40, 64 << 20)])
def test_a_cost_per_call_is_not_taken_for_a_cost_per_item(n: int, budget: int) -> None:
    """3 MiB allocated by every call (a weight-norm layer's weight) and 16 KiB per item:
    the one- and two-item fit tells them apart, in a probe (2000 items under 8 MiB: chunks
    of hundreds) and in a call too small to probe (40 items: one chunk, provisional).
    Taking it all for one item's cost made chunks of 1 to 3 items."""
    owner, sizes = _Owner(), []

    def fn(sl: slice) -> Tensor:
        sizes.append(sl.stop - sl.start)
        weight = torch.ones((3 << 20) // 8, dtype=torch.float64)
        return torch.ones(sl.stop - sl.start, 2048, dtype=torch.float64).sum(-1) + weight[0]

    with latentgeo.memory_budget(budget):
        run_chunked(fn, n, owner=owner, key="per call")
    fp = footprint(owner, "per call")
    assert fp is not None and 16_384 <= fp.per_point <= 16_500, fp
    assert 3 << 20 <= fp.fixed <= (3 << 20) + 4096, fp
    assert sizes[:2] == [1, 2] and len(sizes) < 50, sizes
    assert fp.provisional == (n == 40) and (n == 2000 or sizes == [1, 2, 40]), sizes


def test_a_measurement_leaves_the_random_state_as_it_was() -> None:
    """The same seed gives the same draws whether a footprint was measured first or not
    (the probe's extra items drew from the caller's generator, or the global one)."""
    for seeded in (True, False):
        gen = torch.Generator().manual_seed(7) if seeded else None
        torch.manual_seed(7)

        def fn(sl: slice, gen: torch.Generator | None = gen) -> Tensor:
            return torch.rand(sl.stop - sl.start, 64, generator=gen)

        with latentgeo.memory_budget(1 << 14):  # chunks of 32 items, after a probe
            parts = run_chunked(fn, 100, owner=_Owner(), key="rand", generator=gen)
        assert len(parts) > 1
        again = torch.Generator().manual_seed(7) if seeded else None
        torch.manual_seed(7)
        torch.testing.assert_close(torch.cat(parts), fn(slice(0, 100), again), rtol=0, atol=0)


def test_cpu_chunks_are_capped_whatever_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU a chunk holds at most ``CPU_CHUNK_BYTES`` of tensors (by the measured
    footprint), however large the budget; elsewhere the budget alone sizes it."""
    owner = _Owner()
    x = torch.randn(2000, 64, dtype=torch.float64)

    def fn(sl: slice) -> Tensor:
        return torch.tanh(x[sl] @ x.T).sum(-1)  # 16 KiB a point (a row of 2000)

    with latentgeo.memory_budget(1 << 34):
        whole = torch.cat(run_chunked(fn, 2000, owner=owner, key="k"))
        monkeypatch.setattr(_chunked, "CPU_CHUNK_BYTES", 1 << 20)  # 1 MiB: ~64 points
        sizes: list[int] = []
        parts = run_chunked(
            lambda sl: sizes.append(sl.stop - sl.start) or fn(sl), 2000, owner=owner, key="k"
        )
        per_point = footprint(owner, "k").per_point  # type: ignore[union-attr]
        assert max(sizes) <= (1 << 20) / per_point and len(sizes) >= 2000 * per_point / (1 << 20)
        torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-10, atol=0)
        on_gpu = _chunked._items(owner, "k", 1.0, torch.device("cuda"))  # budget only
        assert on_gpu >= 2000


def _oom_above(limit: int, sizes: list[int]) -> object:
    def fn(sl: slice) -> Tensor:
        n = sl.stop - sl.start
        sizes.append(n)
        if n > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n} GiB")
        return torch.arange(sl.start, sl.stop, dtype=torch.float64)

    return fn


def test_out_of_memory_halves_the_chunk_and_retries() -> None:
    owner, sizes = _Owner(), []
    _chunked._store(owner, "k", Footprint(per_point=1.0))  # "everything fits"
    with pytest.warns(PerformanceWarning, match="out of memory in a chunk of 'k'"):
        parts = run_chunked(_oom_above(200, sizes), 1000, owner=owner, key="k")
    torch.testing.assert_close(torch.cat(parts), torch.arange(1000, dtype=torch.float64))
    assert sizes[:4] == [1000, 500, 250, 125]  # each size tried once
    fp = footprint(owner, "k")
    assert fp is not None and fp.cap == 125  # later calls start at the size that fitted
    sizes.clear()
    run_chunked(_oom_above(200, sizes), 1000, owner=owner, key="k")
    assert max(sizes) == 125


def test_only_out_of_memory_is_retried() -> None:
    owner = _Owner()
    _chunked._store(owner, "k", Footprint(per_point=1.0))

    def broken(sl: slice) -> Tensor:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run_chunked(broken, 100, owner=owner, key="k")
    sizes: list[int] = []
    with pytest.warns(PerformanceWarning), pytest.raises(torch.OutOfMemoryError):
        run_chunked(_oom_above(0, sizes), 4, owner=owner, key="k")  # even one item fails
    assert sizes == [4, 2, 1]


def test_out_of_memory_in_a_metric_keeps_its_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A traced decoder that runs out of memory on big chunks: halved, retried, the same G,
    and the traced fast path still in use afterwards."""
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 30)).double()
    metric = PullbackMetric(net)
    z = torch.randn(400, 2, dtype=torch.float64)
    reference = metric.metric_tensor(z)
    original = PullbackMetric._chunk_metric
    sizes: list[int] = []

    def limited(self: PullbackMetric, zc: Tensor) -> Tensor:
        sizes.append(zc.shape[0])
        if zc.shape[0] > 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, zc)

    monkeypatch.setattr(PullbackMetric, "_chunk_metric", limited)
    with pytest.warns(PerformanceWarning, match="out of memory"):
        got = metric.metric_tensor(z)
    torch.testing.assert_close(got, reference, rtol=1e-12, atol=0)
    assert metric._first is not None  # the traced path was not switched off
    assert max(s for s in sizes if s <= 64) == 64 or 50 in sizes


_FRESH_PROCESS = """
import json, sys
import torch
from torch import nn
from latentgeo import _chunked
from latentgeo.metrics import PullbackMetric

torch.set_num_threads(1)
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 30)).double()
metric = PullbackMetric(net)
psutil_before = "psutil" in sys.modules
metric.metric_tensor(torch.randn(200, 2, dtype=torch.float64))  # > 3 probes: measured


def work():
    a = torch.ones(1000, dtype=torch.float64)
    return torch.ones(500, dtype=torch.float64) + a[:500].sum()


report = {
    "measured": len(_chunked._FOOTPRINTS.get(metric, {})),
    "dynamo_after_first_call": "torch._dynamo" in sys.modules,
    "psutil_imported_by_the_call": "psutil" in sys.modules and not psutil_before,
    "peak": _chunked.measure_peak(work)[1],
}
# a decoder compiled on its first call: dynamo is imported and runs under the tracker
report["peak_compiled_inside"] = _chunked.measure_peak(
    lambda: torch.compile(work, backend="eager")()
)[1]
assert "torch._dynamo" in sys.modules
report["peak_under_dynamo"] = _chunked.measure_peak(work)[1]  # the tracker hides from it
print(json.dumps(report))
"""


def test_measuring_a_footprint_does_not_import_dynamo() -> None:
    """The first measured call in a fresh process leaves ``torch._dynamo`` unimported (its
    import is ~2 CPU-s, 40x the call), and psutil too where /proc/meminfo gives the default
    budget (~25 CPU-ms); with dynamo loaded, or loaded by a decoder compiled on its first call
    inside the measurement, the tracker measures the same."""
    root = Path(latentgeo.__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["measured"] == 1  # the tracker did run
    assert report["dynamo_after_first_call"] is False
    if os.path.exists("/proc/meminfo"):
        assert report["psutil_imported_by_the_call"] is False
    assert report["peak"] == report["peak_compiled_inside"] == report["peak_under_dynamo"] > 0


def test_metrics_of_one_decoder_share_their_footprints(monkeypatch: pytest.MonkeyPatch) -> None:
    """``as_metric(decoder)`` made anew for each call (as ``connecting_geodesic(decoder, ...)``
    does) measures a footprint once per decoder; a metric of an embedding of its own keeps
    its own."""
    probes: list[object] = []
    real = _chunked._probe

    def counted(fn, owner, key, weight, device):  # type: ignore[no-untyped-def]
        probes.append(owner)
        return real(fn, owner, key, weight, device)

    monkeypatch.setattr(_chunked, "_probe", counted)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 5)).eval()
    z = torch.randn(100, 3)
    first = latentgeo.metrics.as_metric(net).metric_tensor(z)
    again = latentgeo.metrics.as_metric(net).metric_tensor(z)
    assert probes == [net]
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    other = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 5)).eval()
    latentgeo.metrics.as_metric(other).metric_tensor(z)
    own = PullbackMetric(lambda v: net(v))
    own.metric_tensor(z)
    assert probes == [net, other, own]


def test_a_fixed_chunk_size_remembers_its_out_of_memory_cap() -> None:
    """The preconditioner's chunks have an exact size (no probe): an out-of-memory error
    there caps its later calls too, instead of failing at the same size each call."""
    owner, sizes = _Owner(), []
    with pytest.warns(PerformanceWarning, match="out of memory in a chunk of 'pre'"):
        parts = run_chunked(_oom_above(100, sizes), 1000, owner=owner, key="pre", chunk_size=400)
    torch.testing.assert_close(torch.cat(parts), torch.arange(1000, dtype=torch.float64))
    assert sizes[:3] == [400, 200, 100]
    sizes.clear()
    run_chunked(_oom_above(100, sizes), 1000, owner=owner, key="pre", chunk_size=400)
    assert max(sizes) == 100 and len(sizes) == 10  # no failed attempt this time
    sizes.clear()
    run_chunked(_oom_above(100, sizes), 50, owner=owner, key="pre", chunk_size=30)
    assert max(sizes) == 30  # a smaller fixed size is kept


def test_a_measured_footprint_keeps_an_earlier_cap() -> None:
    owner, sizes = _Owner(), []
    with pytest.warns(PerformanceWarning):
        run_chunked(_oom_above(8, sizes), 20, owner=owner, key="k", chunk_size=16)
    fp = footprint(owner, "k")
    assert fp is not None and fp.cap == 8 and math.isnan(fp.per_point)
    _chunked._store(owner, "k", Footprint(per_point=1.0))  # a measurement made later
    assert footprint(owner, "k").cap == 8  # type: ignore[union-attr]


def test_an_item_over_the_whole_budget_is_announced_once() -> None:
    """A chunk holds at least one item: one that alone needs more than the budget runs
    over it, and says so once per owner and computation (not when it fits)."""
    owner = _Owner()
    x = torch.randn(200, 64, dtype=torch.float64)

    def fn(sl: slice) -> Tensor:
        return (x[sl, :, None] * x[sl, None, :]).sum((1, 2))  # 32 KiB an item

    with latentgeo.memory_budget(1 << 30):
        whole = torch.cat(run_chunked(fn, 200, owner=owner, key=("outer", 64)))
    with latentgeo.memory_budget(1 << 14):
        with pytest.warns(PerformanceWarning, match=r"_Owner, outer: one item \(a point, a plane, "
                          r"a pair of curves\) needs about \d+ KiB, more than the memory budget "
                          r"of 16 KiB"):  # fmt: skip
            parts = run_chunked(fn, 200, owner=owner, key=("outer", 64))
        assert len(parts) == 200  # one item a chunk
        again = run_chunked(fn, 200, owner=owner, key=("outer", 64))  # once: no warning now
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.cat(again), whole, rtol=1e-12, atol=0)
    with latentgeo.memory_budget(1 << 18):  # an item fits: nothing to say
        run_chunked(fn, 200, owner=_Owner(), key=("outer", 64))


def test_a_graph_of_the_parameters_beyond_the_budget_is_announced() -> None:
    """Chunks bound the work, not what their results keep: with the decoder's parameters
    requiring grad (PyTorch's default) and points that do not, ``metric_tensor`` keeps a
    graph of every chunk (an audit: 12 GB for 4000 points of a conv decoder under a 64 MiB
    budget). Beyond the budget that is said once; not under ``no_grad``, not without
    parameters requiring grad, not for points that ask for the graph themselves."""

    def net() -> nn.Module:  # a fresh decoder each time: the warning is once per decoder
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 100)).double()

    z = torch.randn(400, 3, dtype=torch.float64)
    with latentgeo.memory_budget(1 << 18):
        metric = PullbackMetric(net())
        with pytest.warns(PerformanceWarning, match=r"the results keep an autograd graph of "
                          r"the decoder's parameters .* under torch.no_grad\(\)"):  # fmt: skip
            g = metric.metric_tensor(z)
        assert g.requires_grad
        metric.metric_tensor(z)  # once per metric and computation
        with torch.no_grad():
            PullbackMetric(net()).metric_tensor(z)
        PullbackMetric(net()).metric_tensor(z.clone().requires_grad_())  # the points ask
        assert not PullbackMetric(net().requires_grad_(False)).metric_tensor(z).requires_grad
