"""Channels-last tensors made by the engine's transposed convolutions never reach code
that could not take them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentgeo.metrics import as_metric
from latentgeo.metrics.forward.layout import plain, plain_readers
from latentgeo.metrics.forward.tracing import traced_graph


class ViewingDecoder(nn.Module):
    """A transposed convolution to many channels, an activation, then ``view`` (which a
    channels-last tensor does not allow) and a last transposed convolution to one channel."""

    def __init__(self) -> None:
        super().__init__()
        self.lift = nn.Linear(3, 8 * 3 * 3)
        self.up = nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1)  # 3×3 -> 6×6
        self.act = nn.ELU()
        self.out = nn.ConvTranspose2d(6, 1, 4, stride=2, padding=1)  # 6×6 -> 12×12

    def forward(self, z: Tensor) -> Tensor:
        h = self.act(self.up(self.lift(z).view(-1, 8, 3, 3)))
        flat = h.view(h.shape[0], -1)  # fails on a channels-last tensor
        return self.out(torch.tanh(flat).view(-1, 6, 6, 6)).flatten(1)


def _jacobian(net: nn.Module, z: Tensor) -> Tensor:
    return torch.func.vmap(torch.func.jacrev(lambda v: net(v[None])[0]))(z)


def test_a_decoder_that_views_gets_the_exact_metric_and_chords() -> None:
    torch.manual_seed(0)
    net = ViewingDecoder().double().eval()
    metric = as_metric(net)
    z = torch.randn(5, 3, dtype=torch.float64)
    jac = _jacobian(net, z)
    torch.testing.assert_close(metric.metric_tensor(z), jac.mT @ jac, rtol=1e-10, atol=1e-10)
    pos = torch.randn(2, 4, 3, dtype=torch.float64)
    out = net(pos.reshape(-1, 3)).reshape(2, 4, -1)
    want = ((out[:, 1:] - out[:, :-1]) ** 2).sum(-1)
    torch.testing.assert_close(metric.chords(pos), want, rtol=1e-12, atol=1e-12)


def test_the_readers_are_the_calls_past_the_layout_free_ones() -> None:
    net = ViewingDecoder()
    trace = traced_graph(net)
    assert trace is not None
    graph = trace.graph
    nodes = {str(n.target): n for n in graph.nodes if n.op == "call_module"}
    readers = plain_readers(graph, net, [nodes["up"], nodes["out"]])
    # ``act`` is elementwise and passes the layout on: the readers are exactly the calls
    # that take ``act``'s output (its ``view`` and its ``shape``) or ``out``'s (``flatten``)
    assert readers == set(nodes["act"].users) | set(nodes["out"].users)
    assert any(n.op == "call_method" and n.target == "view" for n in readers)


def test_plain_makes_channels_last_tensors_contiguous_in_containers() -> None:
    last = torch.zeros(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    other = torch.zeros(4, 5).T  # not contiguous, not channels-last: left as it is
    got = plain([last, (other, {"x": last}), 3])
    assert got[0].is_contiguous() and got[1][1]["x"].is_contiguous()
    assert got[1][0] is other and got[2] == 3


def test_torch_func_transforms_go_through_the_layouts() -> None:
    """``jacfwd`` and ``jacrev`` of the metric (vmap over the engine: the layout is read
    from strides, and made channels-last by permutes, both of which vmap can batch)."""
    torch.manual_seed(1)
    metric = as_metric(ViewingDecoder().double().eval())
    z = torch.randn(3, 3, dtype=torch.float64)
    forward = torch.func.jacfwd(lambda v: metric.metric_tensor(v, validate=False))(z)
    reverse = torch.func.jacrev(lambda v: metric.metric_tensor(v, validate=False))(z)
    torch.testing.assert_close(forward, reverse, rtol=1e-10, atol=1e-12)
