"""InfoGAN's categorical code (model.info_codes): the latent's last coordinates become a one-hot
code, D's head Q reads it back, and both losses carry info_weight x its cross-entropy."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import ConfigError
from gankit.models import MODELS
from gankit.nets.common import Generator
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config
from tests.models.test_cgan import INFO, batch_of, tiny_config


def build(**overrides):
    torch.manual_seed(0)
    cfg = tiny_config(**{"data.condition": "none", "model.z_dim": 6, "model.info_codes": 3,
                         **overrides})
    model = MODELS.get("gan")(cfg, INFO)
    model.optimizers = model.configure_optimizers()
    return model


def test_code_latent_replaces_the_tail_by_the_one_hot_of_its_argmax():
    G = Generator(5, 0, (1,))
    z = torch.tensor([[0.25, 0.5, -1.0, 2.0, 0.75], [7.0, -7.0, 0.5, -0.25, -0.75]])
    assert torch.equal(G.code_latent(z), z)  # code_dim 0: untouched
    G.code_dim = 3
    assert G.code_latent(z).tolist() == [[0.25, 0.5, 0.0, 1.0, 0.0], [7.0, -7.0, 1.0, 0.0, 0.0]]


def test_generator_sees_only_the_code_not_the_tail_values():
    model = build()
    G = model.G.eval()
    z = torch.randn(4, 6)
    moved = z.clone()
    moved[:, -3:] += 10.0 * torch.tensor([1.0, 1.0, 1.0])  # same argmax, other values
    other = z.clone()
    other[:, -3:] = torch.tensor([5.0, 0.0, 0.0])  # code 0 everywhere
    with torch.no_grad():
        assert torch.equal(G(z), G(moved))
        changed = (G(z) - G(other)).abs().flatten(1).amax(1)
    was_code0 = z[:, -3:].argmax(1) == 0
    assert torch.all(changed[~was_code0] > 0) and torch.all(changed[was_code0] == 0)


def test_code_drawn_from_normals_is_uniform():
    model = build(**{"model.z_dim": 12, "model.info_codes": 4})
    codes = model._code_of(torch.randn(40_000, 12, generator=torch.Generator().manual_seed(1)))
    share = torch.bincount(codes, minlength=4).double() / len(codes)
    assert torch.allclose(share, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)


def test_losses_carry_weight_times_log_k_when_q_knows_nothing():
    """With Q's weights at zero its logits are 0, so the cross-entropy is exactly log K: the
    D and G losses are the plain objective's plus info_weight * log 3."""
    model = build(**{"model.info_weight": 2.5})
    with torch.no_grad():
        model.D.info_head.weight.zero_()
        model.D.info_head.bias.zero_()
    plain = MODELS.get("gan")(tiny_config(**{"data.condition": "none", "model.z_dim": 6}), INFO)
    plain.D.load_state_dict({k: v for k, v in model.D.state_dict().items()
                             if not k.startswith("info_head")})
    real, fake = batch_of([0, 1, 2, 3])["x"], torch.rand(4, 1, 8, 8)
    code = torch.tensor([0, 2, 1, 1])
    loss, logs = model._d_loss(real, fake, None, None, code)
    base, _ = plain._d_loss(real, fake, None, None)
    assert logs["loss/D/info"].item() == pytest.approx(math.log(3), abs=1e-6)
    assert loss.item() == pytest.approx(base.item() + 2.5 * math.log(3), abs=1e-5)
    g_logs = model.train_phase("G", None, 0)
    assert g_logs["loss/G/info"].item() == pytest.approx(math.log(3), abs=1e-6)


def test_q_cross_entropy_matches_a_hand_computed_value():
    model = build()
    fake = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        h = model.D.features(fake)
        logits = model.D.info_head(h)
    code = torch.tensor([2, 0])
    expected = -(F.log_softmax(logits, 1)[0, 2] + F.log_softmax(logits, 1)[1, 0]).item() / 2
    _, logs = model._d_loss(batch_of([0, 1])["x"], fake, None, None, code)
    assert logs["loss/D/info"].item() == pytest.approx(expected, rel=1e-6)


def test_q_and_g_learn_to_agree_on_the_code(tmp_path):
    """On the ring-8 toy, 300 steps: Q reads G's code for nearly every sample (1.0 when this
    was written). Without the info term (weight 0) G has no reason to make its codes readable
    (0.22: a quarter is chance)."""
    def final_acc(weight: float) -> float:
        cfg = tiny_toy_config(**{"model.z_dim": 8, "model.info_codes": 4, "model.info_weight": weight,
                                 "optim.lr_g": 3e-3, "optim.lr_d": 3e-3, "train.steps": 300,
                                 "train.log_every": 10, "train.seed": 0})
        Trainer(cfg, tmp_path / str(weight)).fit()
        lines = (tmp_path / str(weight) / "log.jsonl").read_text().splitlines()[-3:]
        return sum(json.loads(line)["G/info_acc"] for line in lines) / 3

    assert final_acc(1.0) >= 0.9
    assert final_acc(0.0) <= 0.4


@pytest.mark.parametrize("overrides, message", [
    ({"model.info_codes": 6}, r"in \[0, model.z_dim\)"),
    ({"model.info_codes": 1}, "one value"),
    ({"model.info_weight": -1.0}, "info_weight >= 0"),
    ({"data.condition": "label"}, "unconditional"),
    ({"model.pack": 2}, "unconditional"),
])
def test_bad_info_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)
