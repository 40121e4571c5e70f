"""Decoders in training mode: a clear error naming the layer; latentgeo never changes a module."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentgeo.analysis import geodesic_distances
from latentgeo.geometry import frechet_mean, parallel_transport, riemann_tensor
from latentgeo.metrics import FeatureMetric, PullbackMetric, as_metric, check_eval_mode
from latentgeo.metrics.forward.layers import TrainingModeError
from latentgeo.solvers import connecting_geodesic, exp_map, geodesic_acceleration, log_map

from .reference import autograd_jacobian, conv_decoder


def _net(layer: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 4), layer, nn.Linear(4, 3))


TRAINING = {
    "Dropout": (lambda: _net(nn.Dropout(0.2)), "drops units at random"),
    "AlphaDropout": (lambda: _net(nn.AlphaDropout(0.2)), "drops units at random"),
    "BatchNorm1d": (lambda: _net(nn.BatchNorm1d(4)), "batch's statistics"),
    "InstanceNorm1d": (
        lambda: nn.Sequential(
            nn.Unflatten(1, (2, 2)), nn.InstanceNorm1d(2, track_running_stats=True)
        ),
        "running statistics",
    ),
    "RReLU": (lambda: _net(nn.RReLU()), "random"),
}


@pytest.mark.parametrize("kind", list(TRAINING))
def test_layers_in_training_mode_are_refused_with_the_cure(kind: str) -> None:
    make, reason = TRAINING[kind]
    decoder = make().train()
    index = "1"
    with pytest.raises(
        ValueError, match=rf"layer '{index}' \({kind}\).*{reason}.*decoder\.eval\(\)"
    ):
        as_metric(decoder)
    with pytest.raises(ValueError, match=r"decoder\.eval\(\)"):
        PullbackMetric(decoder)
    assert decoder.training  # the error changed nothing
    as_metric(decoder.eval())  # in eval mode: fine


def test_check_eval_mode_accepts_what_behaves_the_same_in_training() -> None:
    check_eval_mode(_net(nn.Tanh()).train())
    check_eval_mode(nn.Sequential(nn.Unflatten(1, (2, 2)), nn.InstanceNorm1d(2)).train())
    check_eval_mode(lambda z: z)  # functions are not inspected
    with pytest.raises(ValueError, match="no running statistics"):
        check_eval_mode(_net(nn.BatchNorm1d(4, track_running_stats=False)).eval())


def test_functional_dropout_in_training_is_refused_when_the_metric_is_built() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 5)

        def forward(self, z: Tensor) -> Tensor:
            return F.dropout(self.a(z), 0.3, training=self.training)

    with pytest.raises(ValueError, match=r"F\.dropout with training=True.*decoder\.eval\(\)"):
        as_metric(Functional().train())
    z = torch.randn(3, 2)
    metric = as_metric(Functional().eval())
    torch.testing.assert_close(
        metric.metric_tensor(z), (lambda j: j.mT @ j)(autograd_jacobian(metric.embed, z))
    )


def test_a_layer_switched_to_training_after_the_metric_was_built_is_an_error() -> None:
    decoder = conv_decoder().double()
    metric = as_metric(decoder)
    decoder.train()
    with pytest.raises(ValueError, match=r"BatchNorm2d.*decoder\.eval\(\)"):
        metric.metric_tensor(torch.zeros(2, 3, dtype=torch.float64))


def test_a_call_refused_for_a_layer_switched_to_training_leaves_its_buffers_alone() -> None:
    """The refusal comes before the decoder runs: BatchNorm's running statistics and batch
    counter are those of before (the forward-mode rule refused only after the layer had
    run in training mode and updated them), at every entry point."""
    decoder = conv_decoder().double()
    metric = as_metric(decoder)
    features = FeatureMetric(decoder, nn.Flatten(), latent_dim=3)
    decoder.train()
    tensors = {k: v.clone() for k, v in decoder.state_dict().items()}
    z, v = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    calls = {
        "metric_tensor": lambda: metric.metric_tensor(z),
        "squared_norm": lambda: metric.squared_norm(z, v),
        "jacobian": lambda: metric.jacobian(z),
        "feature metric": lambda: features.squared_norm(z, v),
        "exp_map": lambda: exp_map(metric, z, v),
        "log_map": lambda: log_map(metric, z, z + v),
        "connecting_geodesic": lambda: connecting_geodesic(metric, z, z + v),
        "riemann_tensor": lambda: riemann_tensor(metric, z),
        "parallel_transport": lambda: parallel_transport(metric, z, v, v),
        "geodesic_distances": lambda: geodesic_distances(metric, z, z + v),
        "frechet_mean": lambda: frechet_mean(metric, z),
    }
    for name, call in calls.items():
        with pytest.raises(TrainingModeError, match=r"left evaluation mode after its metric"):
            call()
        for key, value in decoder.state_dict().items():
            assert torch.equal(value, tensors[key]), (name, key)


def _state(module: nn.Module) -> dict[str, object]:
    return {
        "tensors": {k: v.clone() for k, v in module.state_dict().items()},
        "training": [m.training for m in module.modules()],
        "dtypes": {p.dtype for p in module.parameters()},
        "grad": [p.requires_grad for p in module.parameters()],
    }


def test_metrics_and_geodesics_never_change_the_decoder() -> None:
    """Buffers (BatchNorm running statistics and its batch counter), parameters, modes and
    dtypes are exactly as before after metric, ODE and geodesic calls."""
    decoder = conv_decoder()
    before = _state(decoder)
    metric = as_metric(decoder)
    z, v = torch.randn(4, 3), torch.randn(4, 3)
    metric.metric_tensor(z)
    metric.squared_norm(z, v)
    geodesic_acceleration(metric, z, v)
    exp_map(decoder, z[:2], 0.1 * v[:2], method="rk4", steps=4)
    connecting_geodesic(decoder, z[:2], z[2:], max_iter=3)
    after = _state(decoder)
    assert after["training"] == before["training"] and after["grad"] == before["grad"]
    assert after["dtypes"] == before["dtypes"]
    tensors_before, tensors_after = before["tensors"], after["tensors"]
    assert isinstance(tensors_before, dict) and isinstance(tensors_after, dict)
    for key, value in tensors_before.items():
        assert torch.equal(tensors_after[key], value), key
