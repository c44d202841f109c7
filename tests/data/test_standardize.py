"""Point clouds at any scale: standardisation by hand, the nets' fixed affine maps, penalties
measured in the standardised space, and a training run that carries over to a moved cloud."""
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gankit.config import NetConfig
from gankit.data import standardization
from gankit.data.info import DataInfo
from gankit.data.toy import sample_mixture
from gankit.nets.mlp import mlp_discriminator, mlp_generator
from gankit.objectives import gradient_penalty, r1_penalty
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config


def test_standardization_by_hand():
    # centre (2, 0); deviations (+-2, 0): mean squared norm 4 over 2 dimensions -> scale sqrt(2)
    shift, scale = standardization(torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    assert shift == [2.0, 0.0] and scale == pytest.approx(math.sqrt(2))
    shift, scale = standardization(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]))
    assert shift == [1.0, 1.0] and scale == pytest.approx(1.0)


def test_a_single_repeated_point_is_only_centred():
    assert standardization(torch.ones(5, 3)) == ([1.0, 1.0, 1.0], 1.0)


def _nets(info):
    cfg = NetConfig(name="mlp", width=16, depth=2, norm="none")
    torch.manual_seed(0)
    return mlp_generator(cfg, info, 4), mlp_discriminator(cfg, info)


def test_nets_work_in_the_standardised_space():
    """G and D with the same weights, one pair on a moved, scaled cloud: G's samples are the
    same points moved and scaled, D's scores and both penalties are equal."""
    plain = DataInfo("vector", (2,))
    moved = DataInfo("vector", (2,), shift=[50.0, -3.0], scale=100.0)
    (g0, d0), (g1, d1) = _nets(plain), _nets(moved)
    z = torch.randn(8, 4)
    u = g0(z)
    x = g1(z)
    assert_close(x, u * 100 + torch.tensor([50.0, -3.0]))
    assert_close(d1(x), d0(u))
    assert_close(r1_penalty(d1, x), r1_penalty(d0, u))
    eps = torch.rand(8)
    assert_close(gradient_penalty(d1, x, x.flip(0), eps=eps), gradient_penalty(d0, u, u.flip(0), eps=eps))


def test_training_on_a_moved_cloud_gives_the_moved_samples(tmp_path):
    """The same run on ring points and on 100 x points + (50, -3): the samples of the second
    are those of the first, moved and scaled (to float rounding): the preset carries over."""
    x, _ = sample_mixture("ring8", 512, seed=0)
    np.save(tmp_path / "ring.npy", x.numpy())
    np.save(tmp_path / "moved.npy", (x.double() * 100 + torch.tensor([50.0, -3.0])).numpy())
    samples = []
    for name in ("ring", "moved"):
        cfg = tiny_toy_config(**{"data.source": str(tmp_path / f"{name}.npy"), "train.steps": 20,
                                 "loss.penalty": "r1"})
        trainer = Trainer(cfg, tmp_path / name)
        trainer.fit()
        samples.append(trainer.model.generate(64, generator=torch.Generator().manual_seed(1)))
    assert_close(samples[1], samples[0] * 100 + torch.tensor([50.0, -3.0]), rtol=1e-3, atol=1e-2)
    assert samples[0].std() > 0.1  # the ring run learned something to compare


def test_standardize_false_keeps_data_space(tmp_path):
    cfg = tiny_toy_config(**{"data.standardize": False})
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.info.shift == [] and trainer.info.scale == 1.0
