"""Which operations make a metric jump: module types and traced functional calls."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from latentgeo.metrics import FeatureMetric, MeanMetric, as_metric
from latentgeo.metrics.forward.kinks import kinked_operations
from latentgeo.testing import StereographicSphere


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(z)).clamp(min=0.1) + self.linear(z).abs_()


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.Sequential(nn.Linear(2, 4), nn.ReLU(inplace=True)), ("ReLU at '1'",)),
        (nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(), nn.Hardtanh()),
         ("LeakyReLU at '1'", "Hardtanh at '2'")),
        (nn.Sequential(nn.Linear(2, 4), nn.ELU(alpha=0.5), nn.ELU()), ("ELU at '1'",)),
        (Functional(), ("relu at node 'relu'", "clamp at node 'clamp'", "abs_ at node 'abs_'")),
        (nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Softplus(), nn.GELU(), nn.SiLU()), ()),
        (StereographicSphere(), ()),
        (lambda z: torch.relu(z), ()),  # a function is not inspected
    ],
)  # fmt: skip
def test_kinked_operations_name_each_site(module: object, expected: tuple[str, ...]) -> None:
    assert kinked_operations(module) == expected


def test_metrics_ask_their_parts() -> None:
    relu = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 5)).eval()
    smooth = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 5)).eval()

    class Gaussian(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.std = relu, nn.Sequential(nn.Linear(2, 5), nn.Softplus())

        def forward(self, z: torch.Tensor) -> Normal:
            return Normal(self.body(z), self.std(z))

    assert as_metric(relu).kinks() == ("ReLU at '1'",)
    assert as_metric(smooth).kinks() == ()
    assert as_metric(Gaussian().eval()).kinks() == ("ReLU at 'decoder.body.1'",)
    mean = as_metric([relu, smooth, relu])
    assert isinstance(mean, MeanMetric) and mean.kinks() == ("ReLU at '1'",)  # once
    assert (as_metric(smooth) + 2.0 * as_metric(relu)).kinks() == ("ReLU at '1'",)
    feature = FeatureMetric(smooth, nn.Sequential(nn.Linear(5, 3), nn.ReLU()))
    assert feature.kinks() == ("feature's ReLU at '1'",)


def test_what_is_not_a_kink_of_the_decoder() -> None:
    # found by review: each of these was named a kink
    smooth = nn.Sequential(nn.Linear(2, 8), nn.Softplus(), nn.Linear(8, 3))

    class BernoulliDecoder(nn.Module):  # tracing's own Bernoulli(probs=...) clamps
        def __init__(self) -> None:
            super().__init__()
            self.net = smooth

        def forward(self, z: torch.Tensor) -> torch.distributions.Bernoulli:
            return torch.distributions.Bernoulli(probs=torch.sigmoid(self.net(z)))

    class ClampedParameter(nn.Module):  # a clamp of a parameter; a module never called
        def __init__(self) -> None:
            super().__init__()
            self.net, self.log_scale, self.unused = smooth, nn.Parameter(torch.zeros(3)), nn.ReLU()

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.net(z) * self.log_scale.clamp(-5.0, 5.0).exp()

    class VAE(nn.Module):  # a function capturing a whole VAE whose encoder has ReLU
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
            self.decoder = smooth

    vae = VAE().eval()
    assert as_metric(BernoulliDecoder().eval()).kinks() == ()
    assert kinked_operations(ClampedParameter()) == ()
    assert as_metric(lambda z: vae.decoder(z), latent_dim=2).kinks() == ()
