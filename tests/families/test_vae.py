"""VAE: the IWAE bound against the ELBO and the exact likelihood of a linear-Gaussian model,
KL warm-up, free bits, active units, and likelihoods that refuse the wrong data."""
import itertools
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.metrics.compute import likelihood_scores
from gankit.errors import ConfigError
from gankit.models.vae import VAE, LogisticMixture, active_units
from gankit.nets.vae_nets import VAEDecoder, VAEEncoder
from gankit.models.likelihood import log_mean_exp

D, Z = 3, 2
SIGMA = 0.5


def linear_gaussian_vae():
    """p(z) = N(0, I), p(x | z) = N(Wz + b, SIGMA^2 I), and a linear encoder that is a
    perturbed true posterior (shifted mean, doubled diagonal variance, no correlations), so
    the ELBO leaves a gap for IWAE to close."""
    cfg = load_config(None, ["model.kind=vae", f"model.z_dim={Z}", "data.source=ring8",
                             "train.ema=0"])
    model = VAE(cfg, DataInfo("vector", (D,), name="lg")).double()
    g = torch.Generator().manual_seed(0)
    W = torch.randn(D, Z, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    post_cov = torch.linalg.inv(torch.eye(Z, dtype=torch.float64) + W.T @ W / SIGMA ** 2)
    gain = post_cov @ W.T / SIGMA ** 2  # posterior mean = gain @ (x - b)
    model.decoder = VAEDecoder(nn.Linear(Z, D), Z, 0).double()
    model.encoder = VAEEncoder(nn.Identity(), D, Z, 0).double()
    with torch.no_grad():
        model.decoder.body.weight.copy_(W)
        model.decoder.body.bias.copy_(b)
        head = model.encoder.head
        head.weight.zero_()
        head.weight[:Z] = gain + 0.1 * torch.randn(Z, D, generator=g, dtype=torch.float64)
        head.bias[:Z] = -gain @ b
        head.bias[Z:] = torch.log(2 * post_cov.diagonal())
        model.likelihood.log_std.fill_(math.log(SIGMA))
    return model


def exact_log_likelihood(model, x):
    lin = model.decoder.body
    cov = lin.weight @ lin.weight.T + SIGMA ** 2 * torch.eye(D, dtype=x.dtype)
    return torch.distributions.MultivariateNormal(lin.bias, cov).log_prob(x)


def exact_elbo(model, x):
    """E_q[log p(x | z)] - KL(q || p), both in closed form for the linear-Gaussian model."""
    W, b = model.decoder.body.weight, model.decoder.body.bias
    mean, logvar = model.encoder(x)
    var = logvar.exp()
    sq = ((x - mean @ W.T - b) ** 2).sum(1) + (var @ (W ** 2).T).sum(1)
    rec = -sq / (2 * SIGMA ** 2) - D * math.log(SIGMA) - 0.5 * D * math.log(2 * math.pi)
    kl = 0.5 * (mean ** 2 + var - 1 - logvar).sum(1)
    return rec - kl


@pytest.fixture(scope="module")
def lg():
    model = linear_gaussian_vae()
    x = torch.randn(6, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return model, x


def test_iwae_with_k_1_is_the_elbo_in_expectation(lg):
    model, x = lg
    log_w = model.log_weights(x, 40_000, torch.Generator().manual_seed(2), use_ema=False)
    one_sample = log_w  # each row is an IWAE-1 estimate
    stderr = one_sample.std(0) / math.sqrt(len(one_sample))
    assert_close(one_sample.mean(0), exact_elbo(model, x).detach(), rtol=0, atol=float(4 * stderr.max()))


def test_iwae_does_not_decrease_with_k(lg):
    """For a fixed pool of weights, the average IWAE-k over all k-subsets never decreases in k
    (Burda et al.'s argument holds exactly for this U-statistic)."""
    model, x = lg
    pool = model.log_weights(x, 10, torch.Generator().manual_seed(3), use_ema=False)
    previous = torch.full((x.shape[0],), -math.inf, dtype=torch.float64)
    for k in range(1, 11):
        subsets = torch.stack([log_mean_exp(pool[list(s)], 0) for s in itertools.combinations(range(10), k)])
        mean_k = subsets.mean(0)
        assert (mean_k >= previous - 1e-12).all(), k
        previous = mean_k


def test_iwae_approaches_the_exact_likelihood(lg):
    model, x = lg
    exact = exact_log_likelihood(model, x).detach()
    gaps = {}
    for k in (1, 5000):
        log_w = model.log_weights(x, k, torch.Generator().manual_seed(4), use_ema=False)
        gaps[k] = (exact - log_mean_exp(log_w, 0)).mean()
    elbo_gap = (exact - exact_elbo(model, x).detach()).mean()
    assert elbo_gap > 0.5  # the encoder is off the posterior: the ELBO is loose
    assert gaps[1] > 0.5  # and so is the one-sample estimate
    assert abs(float(gaps[5000])) < 0.03
    assert abs(float(gaps[5000])) < 0.05 * float(elbo_gap)


def test_likelihood_scores_report_units_and_iwae_above_elbo(lg):
    model, x = lg
    scores = likelihood_scores(model, [x[:3], x[3:]], k=50)
    assert scores["nll_iwae_nats_continuous"] <= scores["nll_elbo_nats_continuous"]
    assert scores.protocol["nll_iwae_nats_continuous"]["unit"] == "nats per item"
    assert scores.protocol["nll_iwae_nats_continuous"]["k"] == 50
    assert scores.protocol["nll_elbo_nats_continuous"]["n"] == 6


def tiny_vae(*extra):
    cfg = load_config(None, ["model.kind=vae", "model.z_dim=4", "data.source=ring8",
                             "G.width=8", "G.depth=1", "G.norm=none", "train.ema=0", *extra])
    model = VAE(cfg, DataInfo("vector", (2,), name="ring8"))
    model.optimizers = model.configure_optimizers()
    return model


def test_kl_warm_up_weights():
    model = tiny_vae("model.kl_warmup=4")
    assert [model.kl_weight(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert tiny_vae().kl_weight(0) == 1.0


def test_free_bits_leave_small_kls_uncharged():
    model = tiny_vae("model.free_bits=100")
    x = {"x": torch.randn(16, 2)}
    torch.manual_seed(0)
    logs = model.train_phase("vae", x, 0)
    # with 100 free nats per dimension the KL term is a constant 4 * 100
    assert_close(logs["loss/vae"], logs["vae/recon_nats"] + 400.0)
    free = tiny_vae()
    torch.manual_seed(0)
    logs = free.train_phase("vae", x, 0)
    assert_close(logs["loss/vae"], logs["vae/recon_nats"] + logs["vae/kl_nats"])


def test_active_units_by_hand():
    means = torch.tensor([[0.0, 1.0, 5.0], [0.05, -1.0, 5.0], [0.1, 0.5, 5.0]])
    # variances over items: 0.0025, 1.75, 0 -> only unit 1 is above 0.01
    assert int(active_units(means)) == 1


def test_logistic_samples_are_pixel_values_and_means_in_range():
    lik = LogisticMixture(2)
    out = torch.randn(3, 6, 4, 4)  # 3K = 6 numbers for one channel
    g = torch.Generator().manual_seed(0)
    x = lik.sample(out, torch.rand(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g))
    pixels = (x + 1) * 127.5
    assert_close(pixels, pixels.round(), rtol=0, atol=1e-4)
    assert lik.mean(out).abs().max() <= 1.0


def test_likelihoods_refuse_the_wrong_data():
    image = DataInfo("image", (1, 28, 28), name="mnist5k", size=10)
    with pytest.raises(ConfigError, match="data.binarize=true"):
        VAE(load_config("mnist_vae", ["model.likelihood=bernoulli"]), image)
    with pytest.raises(ConfigError, match="not a probability of the images"):
        VAE(load_config("mnist_vae", ["model.likelihood=gaussian"]), image)
    with pytest.raises(ConfigError, match="for images"):
        tiny_vae("model.likelihood=logistic")
