"""Each objective against values worked out by hand from its definition."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.errors import ConfigError
from gankit.objectives import OBJECTIVES, get_objective

REAL = [0.5, -1.0]
FAKE = [2.0, 0.0]


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def losses(name: str, fgan_g: str = "nonsaturating"):
    obj = get_objective(name, fgan_g)
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    return obj.d_loss(real, fake), obj.g_loss(fake, real)


def scalar(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ---- the original game and its relatives ------------------------------------------------------
BCE_D = mean(-math.log(sigmoid(v)) for v in REAL) + mean(-math.log(1 - sigmoid(v)) for v in FAKE)

HAND = {
    # name: (D loss, G loss), each written from the paper's formula
    "minimax": (BCE_D, mean(math.log(1 - sigmoid(v)) for v in FAKE)),
    "nonsaturating": (BCE_D, mean(-math.log(sigmoid(v)) for v in FAKE)),
    # 0.5 * mean(0.25, 4) + 0.5 * mean(4, 0) and 0.5 * mean(1, 1)
    "lsgan": (0.5 * (0.25 + 4.0) / 2 + 0.5 * (4.0 + 0.0) / 2, 0.5),
    # mean(relu(0.5), relu(2)) + mean(relu(3), relu(1)) and -mean(2, 0)
    "hinge": ((0.5 + 2.0) / 2 + (3.0 + 1.0) / 2, -1.0),
    # mean(fake) - mean(real) = 1 - (-0.25)
    "wgan": (1.25, -1.0),
    "wgan-gp": (1.25, -1.0),
}


# ---- relativistic: D~ = sigmoid of a difference of critic values ----------------------------------
def softplus(v: float) -> float:
    return math.log(1 + math.exp(v))


# RSGAN pairs real i with fake i: differences 0.5 - 2 = -1.5 and -1 - 0 = -1.
# RaGAN: mean(FAKE) = 1, mean(REAL) = -0.25, so real - mean(fake) = (-0.5, -2) and
# fake - mean(real) = (2.25, 0.25).
HAND["rsgan"] = (mean(-math.log(sigmoid(v)) for v in (-1.5, -1.0)),
                 mean(-math.log(sigmoid(v)) for v in (1.5, 1.0)))
HAND["ragan"] = (
    # -E log D~(x_r) - E log(1 - D~(x_f))
    mean(-math.log(sigmoid(v)) for v in (-0.5, -2.0)) + mean(-math.log(1 - sigmoid(v)) for v in (2.25, 0.25)),
    # G swaps the labels: -E log D~(x_f) - E log(1 - D~(x_r))
    mean(-math.log(sigmoid(v)) for v in (2.25, 0.25)) + mean(-math.log(1 - sigmoid(v)) for v in (-0.5, -2.0)),
)


@pytest.mark.parametrize("name", sorted(HAND))
def test_classic_objectives_match_hand_values(name):
    d, g = losses(name)
    assert_close(d, scalar(HAND[name][0]))
    assert_close(g, scalar(HAND[name][1]))


def test_ragan_compares_each_side_with_the_other_sides_mean():
    obj = get_objective("ragan")
    assert obj.g_sees_real and not obj.splits
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    # Moving every fake by the same amount as every real leaves each difference as it was.
    assert_close(obj.d_loss(real + 5, fake + 5), obj.d_loss(real, fake))
    # D~(x_r) = sigmoid((1, 3) - 1), D~(x_f) = sigmoid((0, 2) - 2) by hand
    expected = (softplus(-0.0) + softplus(-2.0)) / 2 + (softplus(-2.0) + softplus(0.0)) / 2
    assert_close(obj.d_loss(real, fake), torch.tensor(expected))
    # G's loss moves with D's outputs on reals, and cannot be computed without them
    assert obj.g_loss(fake, real + 1) > obj.g_loss(fake, real)
    with pytest.raises(ValueError, match="needs D's outputs on reals"):
        obj.g_loss(fake)


def test_relativistic_generator_gradient_pushes_fakes_above_reals():
    # d/dv of RaGAN's G loss on one fake (one real r): -(1 - sigmoid(v - r)) - sigmoid(r - v)
    # = -2 sigmoid(r - v) < 0, so G raises its critic values; RSGAN's alone: -sigmoid(r - v)
    for name, factor in (("ragan", 2.0), ("rsgan", 1.0)):
        v = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
        get_objective(name).g_loss(v, torch.tensor([2.0], dtype=torch.float64)).backward()
        assert_close(float(v.grad), -factor * sigmoid(2.0 - 0.5))


def test_minimax_generator_loss_is_the_saturating_one():
    _, g_minimax = losses("minimax")
    _, g_ns = losses("nonsaturating")
    assert not torch.isclose(g_minimax, g_ns)
    # log(1 - D) <= 0 < -log D for any D in (0, 1): the two are not even of one sign.
    assert g_minimax < 0 < g_ns


def generator_gradient(name: str, logit: float) -> float:
    v = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    get_objective(name).g_loss(v).backward()
    return float(v.grad)


def test_minimax_gradient_vanishes_when_discriminator_rejects_fakes():
    # D(G(z)) = sigmoid(v) -> 0 as v -> -inf: d/dv log(1 - sigmoid(v)) = -sigmoid(v).
    for v in (-5.0, -10.0, -20.0):
        assert_close(generator_gradient("minimax", v), -sigmoid(v))
        assert_close(generator_gradient("nonsaturating", v), -(1 - sigmoid(v)))
    assert abs(generator_gradient("minimax", -20.0)) < 1e-8
    assert abs(generator_gradient("nonsaturating", -20.0)) > 0.99


def test_logit_losses_stay_finite_for_extreme_logits():
    big = torch.tensor([200.0, -200.0])
    for name in ("minimax", "nonsaturating"):
        obj = get_objective(name)
        assert torch.isfinite(obj.d_loss(big, big)) and torch.isfinite(obj.g_loss(big))
    # the -200 logit alone: -log sigmoid(-200) = 200 exactly in floating point
    assert_close(get_objective("nonsaturating").g_loss(torch.tensor([-200.0])), torch.tensor(200.0))


def test_patch_outputs_are_averaged_over_every_element():
    torch.manual_seed(0)
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    for name in OBJECTIVES:
        obj = get_objective(name)
        assert_close(obj.d_loss(real, fake), obj.d_loss(real.flatten(), fake.flatten()))
        assert_close(obj.g_loss(fake, real), obj.g_loss(fake.flatten(), real.flatten()))


# ---- f-GAN ------------------------------------------------------------------------------------
# (output activation g_f, conjugate f*) per divergence, written independently of the package.
FGAN_HAND = {
    "kl": (lambda v: v, lambda t: math.exp(t - 1)),
    "reverse-kl": (lambda v: -math.exp(-v), lambda t: -1 - math.log(-t)),
    "pearson": (lambda v: v, lambda t: t * t / 4 + t),
    "hellinger": (lambda v: 1 - math.exp(-v), lambda t: t / (1 - t)),
    "js": (lambda v: math.log(2) - math.log(1 + math.exp(-v)),
           lambda t: -math.log(2 - math.exp(t))),
}


@pytest.mark.parametrize("name", sorted(FGAN_HAND))
def test_fgan_objectives_match_hand_values(name):
    g, conj = FGAN_HAND[name]
    bound = mean(g(v) for v in REAL) - mean(conj(g(v)) for v in FAKE)
    d, g_ns = losses(name, "nonsaturating")
    _, g_sat = losses(name, "saturating")
    assert_close(d, scalar(-bound))
    assert_close(g_ns, scalar(-mean(g(v) for v in FAKE)))
    assert_close(g_sat, scalar(-mean(conj(g(v)) for v in FAKE)))


def test_fgan_default_generator_loss_is_nonsaturating():
    fake = torch.tensor(FAKE)
    default = get_objective("js").g_loss(fake)
    assert_close(default, get_objective("js", "nonsaturating").g_loss(fake))
    assert not torch.isclose(get_objective("js").g_loss(fake),
                             get_objective("js", "saturating").g_loss(fake))


# ---- registry ---------------------------------------------------------------------------------
def test_registered_names_and_defaults():
    assert set(OBJECTIVES) == {"minimax", "nonsaturating", "lsgan", "hinge", "wgan", "wgan-gp",
                               "rsgan", "ragan", "kl", "reverse-kl", "js", "pearson", "hellinger"}
    for name in OBJECTIVES:
        obj = get_objective(name)
        assert obj.name == name
        assert obj.default_penalty == ("gp" if name == "wgan-gp" else "none")
        assert obj.default_clip == (0.01 if name == "wgan" else 0.0)


@pytest.mark.parametrize("typo, closest", [("hinj", "hinge"), ("wgan_gp", "wgan-gp"),
                                           ("nonsaturatng", "nonsaturating")])
def test_unknown_objective_names_the_closest(typo, closest):
    with pytest.raises(ConfigError, match=f"did you mean '{closest}'"):
        get_objective(typo)


def test_unknown_fgan_generator_mode_is_rejected():
    with pytest.raises(ConfigError, match="fgan_g"):
        get_objective("kl", "minimax")


def test_saturating_mode_is_rejected_outside_fgan():
    with pytest.raises(ConfigError, match="loss.name=minimax"):
        get_objective("hinge", "saturating")


def test_masked_d_loss_averages_each_sides_terms_over_the_kept_elements():
    from gankit.objectives import masked_d_loss

    real = torch.tensor([[2.0, -0.5, 9.0], [0.3, 9.0, 9.0]])
    fake = torch.tensor([[-1.0, 0.5, -9.0], [1.5, -9.0, -9.0]])
    real_mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    fake_mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    hinge = masked_d_loss(get_objective("hinge"), real, fake, real_mask, fake_mask)
    assert hinge.item() == pytest.approx((0.0 + 1.5 + 0.7) / 3 + (0.0 + 1.5 + 2.5) / 3)
    bce = get_objective("nonsaturating")
    kept = masked_d_loss(bce, real, fake, real_mask, fake_mask)
    assert kept.item() == pytest.approx(bce.d_loss(real[real_mask > 0], fake[fake_mask > 0]).item())
    with pytest.raises(ValueError, match="does not split"):
        masked_d_loss(get_objective("ragan"), real, fake, real_mask, fake_mask)
