"""PacGAN packing: how items are joined, what the packed D and the penalties see, config
checks, and a short training run."""
import json

import pytest
import torch
from torch import nn

from gankit.api import load_run
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.models import MODELS
from gankit.nets.pack import PackedDiscriminator, packed_info
from gankit.objectives import gradient_penalty, r1_penalty
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

RING = DataInfo("vector", (2,), name="ring8")


class Recorder(nn.Module):
    """Returns the sum of each input row and remembers what it was given."""

    def forward(self, x, c=None):
        self.seen = x
        return x.flatten(1).sum(1)


def test_images_are_joined_along_channels_in_batch_order():
    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
    inner = Recorder()
    out = PackedDiscriminator(inner, 2)(x)
    assert inner.seen.shape == (2, 6, 2, 2)
    assert torch.equal(inner.seen[0, :3], x[0]) and torch.equal(inner.seen[0, 3:], x[1])
    assert torch.equal(inner.seen[1, :3], x[2]) and torch.equal(inner.seen[1, 3:], x[3])
    assert torch.equal(out, torch.stack([x[:2].sum(), x[2:].sum()]))


def test_vectors_are_joined_along_features():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
    inner = Recorder()
    PackedDiscriminator(inner, 3)(x)
    assert torch.equal(inner.seen, torch.tensor([[1.0, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]))


def test_packed_info_widens_the_first_axis_only():
    assert packed_info(RING, 3).shape == (6,)
    img = DataInfo("image", (3, 28, 28), name="stacked_mnist")
    assert packed_info(img, 2).shape == (6, 28, 28)
    assert packed_info(img, 1) is img
    with pytest.raises(ConfigError, match="model.pack"):
        packed_info(DataInfo("sequence", (20,)), 2)


def test_a_batch_that_does_not_split_into_packs_is_refused():
    with pytest.raises(DataError, match="multiple of model.pack"):
        PackedDiscriminator(Recorder(), 4)(torch.zeros(6, 2))


class Quadratic(nn.Module):
    """D(pack) = sum of squares of the whole pack: its input gradient is 2 * pack."""

    pack = 2

    def forward(self, x, c=None):
        return x.reshape(x.shape[0] // 2, -1).square().sum(1)


def test_r1_takes_gradient_norms_over_whole_packs():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    # packs (1,0,0,2) and (3,0,0,0): ||2x||^2 = 4*5 = 20 and 4*9 = 36; mean 28.
    assert r1_penalty(Quadratic(), real).item() == pytest.approx(28.0)


def test_gradient_penalty_interpolates_with_one_eps_per_pack():
    real = torch.ones(4, 2)
    fake = torch.zeros(4, 2)
    gen = torch.Generator().manual_seed(3)
    eps = torch.rand(2, 1, generator=torch.Generator().manual_seed(3))
    # x_hat for pack k is eps_k * ones(4); the gradient 2 x_hat has norm 2 * eps_k * 2.
    expected = ((4.0 * eps.squeeze(1) - 1.0) ** 2).mean()
    got = gradient_penalty(Quadratic(), real, fake, generator=gen)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_penalty_takes_a_given_eps_per_pack():
    real, fake = torch.ones(4, 2), torch.zeros(4, 2)
    eps = torch.tensor([0.25, 0.75])
    # packs are 0.25 * ones(4) and 0.75 * ones(4): gradient norms 2 * 0.25 * 2 = 1 and 3
    assert gradient_penalty(Quadratic(), real, fake, eps=eps).item() == pytest.approx((0 + 4) / 2)
    with pytest.raises(ValueError, match="one value per input of D"):
        gradient_penalty(Quadratic(), real, fake, eps=torch.rand(4))


def build(**overrides):
    cfg = tiny_toy_config(**overrides)
    torch.manual_seed(0)
    return cfg, MODELS.get("gan")(cfg, RING)


def test_packed_gan_builds_a_wider_first_layer_and_scores_per_pack():
    _, plain = build()
    _, packed = build(**{"model.pack": 4})
    first = [m for m in packed.D.modules() if isinstance(m, nn.Linear)][0]
    first_plain = [m for m in plain.D.modules() if isinstance(m, nn.Linear)][0]
    assert first_plain.in_features == 2 and first.in_features == 8
    assert packed.D(torch.randn(32, 2)).shape == (8,)


@pytest.mark.parametrize("overrides, message", [
    ({"model.pack": 0}, "model.pack must be"),
    ({"model.pack": 3}, "multiple of model.pack"),  # batch 32
])
def test_bad_pack_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_conditional_gan_refuses_packing():
    cfg = tiny_toy_config(**{"model.pack": 2})
    cfg.data.condition = "label"
    info = DataInfo("vector", (2,), name="ring8", num_classes=8, class_names=list("abcdefgh"))
    with pytest.raises(ConfigError, match="unconditional"):
        MODELS.get("gan")(cfg, info)


@pytest.mark.parametrize("loss, penalty, term", [("nonsaturating", "r1", "loss/D/r1"),
                                                  ("wgan-gp", "auto", "loss/D/gp")])
def test_packed_gan_trains_reloads_and_samples(tmp_path, loss, penalty, term):
    cfg = tiny_toy_config(**{"model.pack": 2, "loss.name": loss, "loss.penalty": penalty,
                             "train.log_every": 1})
    Trainer(cfg, tmp_path / "run").fit()
    lines = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    logged = [line for line in lines if term in line]
    assert len(logged) == cfg.train.steps
    # the first step's penalty, recomputed: the same initial D, batch and (for gp) the same draws
    twin = Trainer(cfg, tmp_path / "twin")
    real = twin.source.next_batch()["x"]
    if penalty == "r1":
        expected = r1_penalty(twin.model.D, real)
    else:
        fake = twin.model.G(twin.model.randn(real.shape[0], cfg.model.z_dim))
        eps = twin.model.rand(real.shape[0] // 2)  # one per pack
        expected = gradient_penalty(twin.model.D, real, fake.detach(), eps=eps)
    assert logged[0][term] == pytest.approx(expected.item(), rel=1e-5)
    run = load_run(tmp_path / "run")
    assert isinstance(run.model.D, PackedDiscriminator) and run.model.D.pack == 2
    samples = run.generate(10, seed=1)
    assert samples.shape == (10, 2) and torch.equal(samples, run.generate(10, seed=1))
