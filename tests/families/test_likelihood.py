"""Likelihood bookkeeping: discrete likelihoods are distributions, dequantisation and the
logit transform count their Jacobians, units and variants are named."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.errors import ConfigError
from gankit.models import likelihood as lk

PIXELS = torch.arange(256, dtype=torch.float64)


@pytest.mark.parametrize("mean,log_scale", [(0.0, -3.0), (-0.93, -5.0), (0.999, -1.0),
                                            (-4.0, -6.0), (2.5, 0.5), (0.3, -7.0)])
def test_discretised_logistic_sums_to_one_over_the_256_values(mean, log_scale):
    m = torch.full((256,), mean, dtype=torch.float64)
    s = torch.full((256,), log_scale, dtype=torch.float64)
    log_p = lk.discretized_logistic_log_prob(PIXELS, m, s)
    assert torch.isfinite(log_p).all()
    assert_close(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-10)


def test_discretised_logistic_bin_probability_by_hand():
    # A logistic centred on pixel 100 with scale s: P = sigmoid(h/s) - sigmoid(-h/s) = tanh(h/2s).
    h, s = 1.0 / 255, 0.01
    centre = 100 * 2.0 / 255 - 1.0
    log_p = lk.discretized_logistic_log_prob(torch.tensor([100.0], dtype=torch.float64),
                                             torch.tensor([centre], dtype=torch.float64),
                                             torch.tensor([math.log(s)], dtype=torch.float64))
    assert_close(log_p, torch.tensor([math.log(math.tanh(h / (2 * s)))], dtype=torch.float64))
    # Pixel 0 takes the whole left tail: P = sigmoid((-1 + h - mean)/s).
    log_p0 = lk.discretized_logistic_log_prob(torch.tensor([0.0], dtype=torch.float64),
                                              torch.tensor([-1.0], dtype=torch.float64),
                                              torch.tensor([math.log(s)], dtype=torch.float64))
    assert_close(log_p0, torch.tensor([math.log(1 / (1 + math.exp(-h / s)))], dtype=torch.float64))


def test_discretised_logistic_mixture_sums_to_one_and_mixes_by_hand():
    w = torch.tensor([[0.3], [-1.2], [2.0]], dtype=torch.float64).expand(3, 256)
    m = torch.tensor([[-0.9], [0.1], [0.95]], dtype=torch.float64).expand(3, 256)
    s = torch.tensor([[-4.0], [-2.0], [-5.5]], dtype=torch.float64).expand(3, 256)
    log_p = lk.discretized_logistic_mixture_log_prob(PIXELS, w, m, s)
    assert_close(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-10)
    pi = torch.softmax(w[:, 0], 0)
    by_hand = sum(pi[k] * lk.discretized_logistic_log_prob(PIXELS, m[k], s[k]).exp() for k in range(3))
    assert_close(log_p.exp(), by_hand)


def test_bernoulli_and_gaussian_log_probs_by_hand():
    assert_close(lk.bernoulli_log_prob(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])),
                 torch.tensor([math.log(0.5), math.log(1 - 1 / (1 + math.exp(-2.0)))]))
    # N(1; 0, 2^2): -(1/2)^2 / 2 - log(2 pi)/2 - log 2
    log_p = lk.gaussian_log_prob(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([math.log(2.0)]))
    assert_close(log_p, torch.tensor([-0.125 - 0.5 * math.log(2 * math.pi) - math.log(2.0)]))
    # KL(N(1, e^0.5) || N(0, 1)) = (1 + e^0.5 - 1 - 0.5) / 2
    assert_close(lk.gaussian_kl(torch.tensor([1.0]), torch.tensor([0.5])),
                 torch.tensor([(math.exp(0.5) - 0.5) / 2]))


@pytest.mark.parametrize("alpha", [0.0, 0.05, 1e-6])
def test_a_uniform_model_gives_exactly_8_bits_per_dim_after_dequantisation(alpha):
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (5, 1, 6, 6), generator=g).double()
    y = lk.dequantize(pixels, torch.rand(pixels.shape, generator=g, dtype=torch.float64))
    z, logit_det = lk.logit_transform(y, alpha)
    # The uniform density on y, seen in logit space: p(z) = s (1 - s) / (1 - 2 alpha).
    s = torch.sigmoid(z)
    log_pz = (torch.log(s) + torch.log1p(-s) - math.log(1 - 2 * alpha)).flatten(1).sum(1)
    bpd = lk.dequantized_bits_per_dim(log_pz, logit_det, dims=36)
    assert_close(bpd, torch.full((5,), 8.0, dtype=torch.float64))
    # Forgetting the logit transform's Jacobian is the classic mistake: it moves the number.
    no_jacobian = lk.dequantized_bits_per_dim(log_pz, torch.zeros(5, dtype=torch.float64), 36)
    assert not torch.allclose(no_jacobian, bpd, atol=0.1)


def test_logit_transform_log_jacobian_matches_autograd_and_inverts():
    y = torch.tensor([[0.001, 0.3, 0.5, 0.97]], dtype=torch.float64, requires_grad=True)
    z, log_det = lk.logit_transform(y, 0.05)
    (dz,) = torch.autograd.grad(z.sum(), y)  # element-wise map: the Jacobian is diagonal
    assert_close(log_det, dz.log().sum(1).detach())
    assert_close(lk.inverse_logit_transform(z.detach(), 0.05), y.detach())
    with pytest.raises(ConfigError, match="alpha"):
        lk.logit_transform(y, 0.5)


def test_pixels_round_trip_from_the_data_scale():
    pixels = torch.arange(256.0)
    assert_close(lk.to_pixels(pixels * (2 / 255) - 1), pixels, rtol=0, atol=0)


def test_iwae_bound_and_log_mean_exp_by_hand():
    log_w = torch.log(torch.tensor([[1.0, 4.0], [3.0, 8.0]]))
    assert_close(lk.iwae_bound(log_w), torch.log(torch.tensor([2.0, 6.0])))
    assert_close(lk.iwae_bound(log_w[:1]), log_w[0])  # k = 1: the one-sample ELBO itself
    assert_close(lk.log_mean_exp(torch.tensor([1000.0, 1000.0])), torch.tensor(1000.0))  # no overflow


def test_bits_per_dim_and_metric_names():
    assert_close(lk.bits_per_dim(torch.tensor(784 * math.log(2)), 784), torch.tensor(1.0))
    assert lk.metric_name("iwae", "bpd", "8bit") == "nll_iwae_bpd_8bit"
    assert lk.metric_name("", "bpd", "8bit_dequantised") == "nll_bpd_8bit_dequantised"
    with pytest.raises(ConfigError, match="unit"):
        lk.metric_name("elbo", "bits", "8bit")
    with pytest.raises(ConfigError, match="variant"):
        lk.metric_name("elbo", "nats", "binary")
