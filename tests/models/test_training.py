"""VAEs and their training: ELBO, ensemble modes, reproducibility, early stopping, RBF stage."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from latentgeo.data import ring
from latentgeo.models import (
    MLP,
    VAE,
    GaussianEncoder,
    calibrate_rbf,
    fit,
    make_ensemble_vae,
    make_rbf_vae,
)


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return ring(256, noise=0.05, seed=0).x


def _small_ensemble(seed: int = 0, k: int = 3) -> VAE:
    return make_ensemble_vae(2, num_members=k, hidden=(16,), seed=seed)


def test_vae_on_ring_lowers_its_loss(data: torch.Tensor) -> None:
    vae = make_rbf_vae(2, num_centres=8, hidden=(16,), seed=0)
    h = fit(vae, data, epochs=8, batch_size=32, lr=3e-3, progress=False)
    assert len(h.train_loss) == 8 and h.train_loss[-1] < h.train_loss[0]
    assert h.samples == 8 * 256 and h.samples_per_second > 0 and h.best_epoch == 7


@pytest.mark.parametrize("mode", ["partition", "random_member", "all"])
def test_both_ensemble_modes_train_every_member(data: torch.Tensor, mode: str) -> None:
    vae = _small_ensemble()
    before = [m.state_dict()["net.0.weight"].clone() for m in vae.decoder.members]
    h = fit(vae, data, epochs=6, batch_size=32, lr=3e-3, ensemble_mode=mode, progress=False)
    assert h.train_loss[-1] < h.train_loss[0]
    after = [m.state_dict()["net.0.weight"] for m in vae.decoder.members]
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    # members keep different weights (independent initialisations)
    assert not torch.allclose(after[0], after[1])


def test_partition_splits_each_batch_across_members() -> None:
    vae = _small_ensemble(k=4)
    x = ring(8, seed=1).x
    g = torch.Generator().manual_seed(3)
    loss = vae.training_loss(x, generator=g, ensemble_mode="partition")
    # the same loss by hand: member (i + r) mod K for row i, with the same random draws
    g = torch.Generator().manual_seed(3)
    r = int(torch.randint(4, (1,), generator=g).item())
    member = (torch.arange(8) + r) % 4
    expected = -vae.elbo(x, generator=g, member=member).mean()
    torch.testing.assert_close(loss, expected)


def test_same_seed_same_weights(data: torch.Tensor) -> None:
    def run(seed: int) -> list[torch.Tensor]:
        vae = _small_ensemble(seed=seed)
        fit(vae, data, epochs=2, batch_size=64, seed=seed, val_fraction=0.25, progress=False)
        return [p.detach().clone() for p in vae.parameters()]

    a, b, c = run(5), run(5), run(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_fit_does_not_touch_the_global_rng(data: torch.Tensor) -> None:
    vae = _small_ensemble()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit(vae, data, epochs=1, progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_early_stopping_restores_the_best_weights(data: torch.Tensor) -> None:
    vae = _small_ensemble()
    # a huge learning rate makes the validation loss wander: early stopping must kick in
    h = fit(
        vae,
        data,
        epochs=40,
        lr=0.5,
        val_fraction=0.25,
        early_stopping=2,
        batch_size=64,
        progress=False,
    )
    assert h.stopped_early and len(h.val_loss) < 40
    assert h.val_loss[h.best_epoch] == min(h.val_loss)


def test_progress_bar_can_be_silenced(data: torch.Tensor, capsys: pytest.CaptureFixture) -> None:
    fit(_small_ensemble(), data, epochs=1, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


class _IndependentDecoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = MLP(2, 3, hidden=(8,))

    def forward(self, z: torch.Tensor) -> Independent:
        return Independent(Normal(self.net(z), 0.5, validate_args=False), 1)


def test_independent_normal_decoders_and_sampled_rbf_codes(data: torch.Tensor) -> None:
    vae = VAE(GaussianEncoder(3, 2, hidden=(8,)), _IndependentDecoder())
    x = torch.randn(10, 3)
    expected = Normal(vae.decoder.net(torch.zeros(10, 2)), 0.5).log_prob(x).sum(-1)
    torch.testing.assert_close(vae.log_likelihood(x, torch.zeros(10, 2)), expected)
    rbf = make_rbf_vae(2, num_centres=4, hidden=(8,), seed=0)
    nll = calibrate_rbf(rbf, data, codes="sample", epochs=5, progress=False)
    assert len(nll) == 5
    with pytest.raises(ValueError, match="codes"):
        calibrate_rbf(rbf, data, codes="median", progress=False)


@pytest.mark.parametrize("dtype", [torch.float64])
def test_fit_follows_the_model_device_and_dtype(
    data: torch.Tensor, device: torch.device, dtype: torch.dtype
) -> None:
    vae = _small_ensemble().to(device=device, dtype=dtype)
    # the data are float32 on the CPU: fit moves them to the model
    h = fit(vae, data, epochs=2, batch_size=64, val_fraction=0.2, progress=False)
    assert len(h.val_loss) == 2
    assert all(p.device.type == device.type and p.dtype == dtype for p in vae.parameters())


def test_bad_arguments_give_clear_errors(data: torch.Tensor) -> None:
    vae = _small_ensemble()
    with pytest.raises(ValueError, match="ensemble_mode"):
        fit(vae, data, ensemble_mode="each", progress=False)
    with pytest.raises(ValueError, match="val_fraction"):
        fit(vae, data, val_fraction=1.0, progress=False)
    with pytest.raises(ValueError, match="early_stopping needs"):
        fit(vae, data, early_stopping=3, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        fit(vae, data, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="lr"):
        fit(vae, data, lr=-1.0, progress=False)
    with pytest.raises(TypeError, match="data must be a Tensor"):
        fit(vae, [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="NaN"):
        fit(vae, torch.full((4, 2), float("nan")), progress=False)
    with pytest.raises(TypeError, match="training_loss"):
        fit(MLP(2, 2), data, progress=False)
    with pytest.raises(TypeError, match="RBFPrecision"):
        calibrate_rbf(vae, data, progress=False)
    with pytest.raises(ValueError, match="beta"):
        VAE(GaussianEncoder(2, 2), MLP(2, 2), beta=0.0)
    with pytest.raises(ValueError, match="obs_std"):
        VAE(GaussianEncoder(2, 2), MLP(2, 2), obs_std=-1.0)


def test_fixed_validation_data_trains_on_all_of_data(data: torch.Tensor) -> None:
    val = data[:50] + 0.01
    h = fit(_small_ensemble(), data, val_data=val, epochs=5, eval_every=2, progress=False)
    assert h.samples == 5 * data.shape[0]  # nothing held out of data
    assert h.val_epochs == [1, 3, 4]  # every 2nd epoch and the last
    assert len(h.val_loss) == 3 and h.best_val_loss == h.val_loss[-1]  # no early stopping
    vae = _small_ensemble()
    ref = fit(_small_ensemble(), data, epochs=0, progress=False)
    assert math.isnan(ref.best_val_loss)
    with pytest.raises(ValueError, match="val_data or val_fraction"):
        fit(vae, data, val_data=val, val_fraction=0.1, progress=False)
    with pytest.raises(ValueError, match="eval_every"):
        fit(vae, data, val_data=val, eval_every=0, progress=False)
    with pytest.raises(ValueError, match="min_delta"):
        fit(vae, data, val_data=val, early_stopping=2, min_delta=-1.0, progress=False)


def test_min_delta_stops_on_small_gains_and_keeps_the_best_weights(data: torch.Tensor) -> None:
    val = data[:64]
    plain = fit(
        _small_ensemble(), data, val_data=val, epochs=30, early_stopping=3, lr=3e-3, progress=False
    )
    # a min_delta larger than any epoch's gain: patience runs out 3 epochs after the first
    strict = fit(
        _small_ensemble(),
        data,
        val_data=val,
        epochs=30,
        early_stopping=3,
        lr=3e-3,
        min_delta=1e6,
        progress=False,
    )
    assert strict.stopped_early and len(strict.val_loss) == 4
    assert strict.best_val_loss == min(strict.val_loss)  # small gains' weights kept all the same
    assert len(plain.val_loss) >= len(strict.val_loss)


def test_fused_adam_steps_like_foreach_adam() -> None:
    from latentgeo.models.training import _adam

    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = _adam(a, list(a.parameters()), 1e-2, 1e-4)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, weight_decay=1e-4, foreach=True)
    x = torch.randn(8, 3)
    for _ in range(5):
        for m, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            m(x).pow(2).sum().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
