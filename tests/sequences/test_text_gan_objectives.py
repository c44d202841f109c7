"""loss.name picks the D objective of the text GANs and of style transfer (binary
cross-entropy by default, bit for bit the loss they had); names that do not fit are refused."""
import math

import pytest
import torch
from torch import nn

from gankit.config import load_config
from gankit.data.text import load_text_data
from gankit.errors import ConfigError
from gankit.training.trainer import build_model
from tests.sequences.conftest import tiny_text_config

REAL_OUT = torch.tensor([2.0, -0.5, 0.3])
FAKE_OUT = torch.tensor([-1.0, 0.5, 1.5])
REAL = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18]])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# D's loss on REAL_OUT and FAKE_OUT, by hand
BY_HAND = {
    "nonsaturating": (softplus(-2.0) + softplus(0.5) + softplus(-0.3)) / 3
    + (softplus(-1.0) + softplus(0.5) + softplus(1.5)) / 3,
    "hinge": (0.0 + 1.5 + 0.7) / 3 + (0.0 + 1.5 + 2.5) / 3,
    "lsgan": 0.5 * (1.0 + 2.25 + 0.49) / 3 + 0.5 * (1.0 + 0.25 + 2.25) / 3,
}


class FixedD(nn.Module):
    """Scores REAL with REAL_OUT and anything else with FAKE_OUT (times a weight of 1, so
    that D has a parameter to step); ``prefix_scores`` gives every prefix the same score."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x, c=None):
        return self.w * (REAL_OUT if torch.equal(x, REAL) else FAKE_OUT)

    def prefix_scores(self, x, c=None):
        return self.forward(x, c).unsqueeze(1).expand(-1, x.shape[1])


def model_with_fixed_d(kind, loss):
    cfg = tiny_text_config(kind, **{"loss.name": loss})
    model = build_model(cfg, load_text_data(cfg.data).info)
    model.D = FixedD()
    model.optimizers = model.configure_optimizers()
    return model


@pytest.mark.parametrize("kind", ["seqgan", "dense"])
@pytest.mark.parametrize("loss", sorted(BY_HAND))
def test_loss_name_is_the_d_loss_of_the_text_gans(kind, loss):
    model = model_with_fixed_d(kind, loss)
    logs = model.d_step({"x": REAL}, step=3)
    assert logs["loss/D"].item() == pytest.approx(BY_HAND[loss], rel=1e-6)


def test_the_default_is_the_binary_cross_entropy_the_text_gans_had_to_the_bit():
    model = model_with_fixed_d("seqgan", "nonsaturating")
    old = nn.functional.softplus(-REAL_OUT).mean() + nn.functional.softplus(FAKE_OUT).mean()
    assert torch.equal(model.d_step({"x": REAL}, step=3)["loss/D"], old)


@pytest.mark.parametrize("kind", ["seqgan", "dense"])
@pytest.mark.parametrize("loss", ["wgan-gp", "wgan", "kl"])
def test_objectives_that_do_not_fit_a_text_gan_are_refused_in_one_line(kind, loss):
    with pytest.raises(ConfigError, match=f"model.kind={kind} takes loss.name=nonsaturating "
                                          r"\| minimax \| lsgan \| hinge") as e:
        model_with_fixed_d(kind, loss)
    assert "\n" not in str(e.value)


def test_style_transfer_takes_loss_name_but_no_d_regulariser():
    base = ["data.source=style_synth", "model.kind=style", "G.width=8", "G.depth=1", "model.emb_dim=8",
            "model.d_emb_dim=8", "model.d_filters=[4,4,4,4]"]
    cfg = load_config(None, base + ["loss.name=lsgan"])
    model = build_model(cfg, load_text_data(cfg.data).info)
    assert model.loss.name == "lsgan"
    cfg = load_config(None, base + ["loss.name=wgan-gp"])
    with pytest.raises(ConfigError, match="style takes no discriminator penalty"):
        build_model(cfg, load_text_data(cfg.data).info)


# The relativistic objectives by hand on REAL_OUT and FAKE_OUT: RSGAN pairs real i with fake i
# (differences 3, -1, -1.2); RaGAN compares with the other side's mean (fake 1/3, real 0.6).
RELATIVISTIC = {
    "rsgan": ((softplus(-3.0) + softplus(1.0) + softplus(1.2)) / 3,
              (softplus(3.0) + softplus(-1.0) + softplus(-1.2)) / 3),
    "ragan": (sum(softplus(-(r - 1 / 3)) for r in (2.0, -0.5, 0.3)) / 3
              + sum(softplus(f - 0.6) for f in (-1.0, 0.5, 1.5)) / 3,
              sum(softplus(-(f - 0.6)) for f in (-1.0, 0.5, 1.5)) / 3
              + sum(softplus(r - 1 / 3) for r in (2.0, -0.5, 0.3)) / 3),
}


class FixedRelaxedD(FixedD):
    """FixedD for the Gumbel GAN, whose D sees G's relaxed one-hot rows [B, L, V] (joined
    to its fixed scores by a zero term, so that G's loss has a graph to step)."""

    def forward(self, x, c=None):
        if x.dim() == 2 and torch.equal(x, REAL):
            return self.w * REAL_OUT
        return self.w * FAKE_OUT + 0.0 * x.sum()


@pytest.mark.parametrize("loss", sorted(RELATIVISTIC))
def test_gumbel_plays_the_registered_relativistic_objectives(loss):
    model = model_with_fixed_d("gumbel", loss)
    model.D = FixedRelaxedD()
    model.optimizers = model.configure_optimizers()
    d, g = RELATIVISTIC[loss]
    # G's step first: D's step moves D's weight
    assert model.adversarial_g_step({"x": REAL}, step=3)["loss/G"].item() == pytest.approx(g, rel=1e-6)
    assert model.d_step({"x": REAL}, step=3)["loss/D"].item() == pytest.approx(d, rel=1e-6)


def test_gumbel_preset_keeps_relgans_relativistic_standard_loss():
    assert load_config("gumbel_oracle").loss.name == "rsgan"


@pytest.mark.parametrize("kind", ["seqgan", "dense"])
def test_reinforce_text_gans_refuse_the_relativistic_objectives(kind):
    with pytest.raises(ConfigError, match=f"model.kind={kind} takes loss.name=nonsaturating"):
        model_with_fixed_d(kind, "ragan")


def test_style_transfer_refuses_an_objective_its_g_step_cannot_feed():
    cfg = load_config(None, ["data.source=style_synth", "model.kind=style", "G.width=8", "G.depth=1",
                             "model.emb_dim=8", "model.d_emb_dim=8", "model.d_filters=[4,4,4,4]",
                             "loss.name=ragan"])
    with pytest.raises(ConfigError, match="loss.name=ragan needs D's outputs on real data in G's loss, "
                                          "which model.kind=style's G step does not compute") as e:
        build_model(cfg, load_text_data(cfg.data).info)
    assert "\n" not in str(e.value)
