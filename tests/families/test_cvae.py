"""The conditional VAE: log p(x | c) of a linear-Gaussian model in closed form, the condition
reaching both nets, `gankit sample --cond` and `gankit eval` end to end, and refusals."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.cli import main
from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.metrics.compute import likelihood_scores
from gankit.errors import ConfigError, GankitError
from gankit.models.vae import VAE
from gankit.nets.vae_nets import VAEDecoder, VAEEncoder
from gankit.models.likelihood import log_mean_exp

D, Z, K = 3, 2, 2
SIGMA = 0.5
INFO = DataInfo("vector", (D,), name="lg", num_classes=K, class_names=["left", "right"])


def linear_gaussian_cvae():
    """p(z) = N(0, I), p(x | z, c) = N(Wz + U onehot(c) + b, SIGMA^2 I); the encoder is the
    true posterior mean given (x, c), shifted, with a diagonal variance."""
    cfg = load_config(None, ["model.kind=vae", f"model.z_dim={Z}", "data.source=ring8",
                             "data.condition=label", "train.ema=0"])
    model = VAE(cfg, INFO).double()
    g = torch.Generator().manual_seed(0)
    W, U, b = (torch.randn(*shape, generator=g, dtype=torch.float64) for shape in ((D, Z), (D, K), (D,)))
    post_cov = torch.linalg.inv(torch.eye(Z, dtype=torch.float64) + W.T @ W / SIGMA ** 2)
    gain = post_cov @ W.T / SIGMA ** 2  # posterior mean = gain @ (x - U onehot(c) - b)
    model.decoder.net = VAEDecoder(nn.Linear(Z + K, D), Z, K).double()
    model.encoder.net = VAEEncoder(nn.Identity(), D + K, Z, K).double()
    with torch.no_grad():
        model.decoder.net.body.weight.copy_(torch.cat([W, U], 1))
        model.decoder.net.body.bias.copy_(b)
        head = model.encoder.net.head
        head.weight.zero_()
        head.weight[:Z, :D] = gain + 0.1 * torch.randn(Z, D, generator=g, dtype=torch.float64)
        head.weight[:Z, D:] = -gain @ U
        head.bias[:Z] = -gain @ b
        head.bias[Z:] = torch.log(2 * post_cov.diagonal())
        model.likelihood.log_std.fill_(math.log(SIGMA))
    return model, W, U, b


def exact_conditional_log_likelihood(W, U, b, x, y):
    cov = W @ W.T + SIGMA ** 2 * torch.eye(D, dtype=x.dtype)
    mean = F.one_hot(y, K).to(x.dtype) @ U.T + b
    return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)


def test_iwae_approaches_the_exact_conditional_likelihood():
    model, W, U, b = linear_gaussian_cvae()
    x = torch.randn(6, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    exact = exact_conditional_log_likelihood(W, U, b, x, y)
    log_w = model.log_weights(x, 5000, torch.Generator().manual_seed(4), use_ema=False, c=y)
    assert abs(float((exact - log_mean_exp(log_w, 0)).mean())) < 0.03
    # the other condition is a different, and here worse, likelihood: c reaches the decoder
    wrong = exact_conditional_log_likelihood(W, U, b, x, 1 - y)
    flipped = log_mean_exp(model.log_weights(x, 5000, torch.Generator().manual_seed(4),
                                             use_ema=False, c=1 - y), 0)
    assert abs(float((wrong - flipped).mean())) < 0.03
    assert float((exact - wrong).abs().mean()) > 0.5
    scores = likelihood_scores(model, [x[:3], x[3:]], k=50, conditions=[y[:3], y[3:]], use_ema=False)
    assert scores.protocol["nll_iwae_nats_continuous"]["given"] == "c (label)"


def test_conditions_are_required_exactly_when_the_vae_is_conditional():
    model, *_ = linear_gaussian_cvae()
    x = torch.zeros(2, D, dtype=torch.float64)
    with pytest.raises(ConfigError, match="log p\\(x \\| c\\)"):
        likelihood_scores(model, [x], k=2)
    plain = VAE(load_config(None, ["model.kind=vae", "model.z_dim=2", "data.source=ring8"]),
                DataInfo("vector", (D,), name="lg"))
    with pytest.raises(ConfigError, match="unconditional"):
        likelihood_scores(plain, [x.float()], k=2, conditions=[torch.zeros(2, dtype=torch.long)])
    with pytest.raises(GankitError, match="unconditional"):
        plain.parse_condition("left", 3)


def test_samples_follow_the_asked_class():
    model, W, U, b = linear_gaussian_cvae()
    model = model.float()
    c = model.parse_condition("right", 4000)
    assert torch.equal(c, torch.ones(4000, dtype=torch.long))
    x = model.generate(4000, generator=torch.Generator().manual_seed(0), c=c, use_ema=False)
    # sample_mode=mean shows E[x | z, c] = Wz + U e_c + b, whose mean over z is U e_c + b
    torch.testing.assert_close(x.mean(0), (U[:, 1] + b).float(), atol=0.1, rtol=0)
    default = model.sample_inputs(5)["c"]
    assert default.tolist() == [0, 1, 0, 1, 0]


def test_cvae_trains_on_digits_and_eval_reports_log_p_x_given_c(tmp_path, capsys):
    run = tmp_path / "cvae"
    args = ["model.kind=vae", "data.source=digits", "data.condition=label", "data.held_out=0.2",
            "data.batch_size=64", "G.name=mlp", "G.width=64", "G.depth=1", "G.norm=none",
            "model.z_dim=4", "model.iwae_k=20", "optim.lr_g=0.003", "train.steps=300",
            "train.ema=0", "train.log_every=100", "train.sample_every=0", "train.ckpt_every=0",
            "train.progress=false", "train.threads=1"]
    assert main(["train", *args, "--out", str(run)]) == 0
    assert main(["sample", str(run), "--n", "6", "--cond", "seven", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*"))) > 0
    assert main(["eval", str(run), "--metrics", "fid", "--n", "200", "--extractor", "identity"]) == 0
    assert "nll_iwae_bpd_8bit" in capsys.readouterr().out
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["protocol"]["nll_iwae_bpd_8bit"]["given"] == "c (label)"

    from gankit.api import load_run
    from gankit.data import held_out_tensors

    loaded = load_run(run)
    held = held_out_tensors(loaded.cfg.data, loaded.cfg.train.seed)
    x, y = held["x"], held["y"]
    right = likelihood_scores(loaded.model, [x], k=20, conditions=[y], use_ema=False)
    shuffled = (y + 1 + torch.randint(0, 9, y.shape, generator=torch.Generator().manual_seed(0))) % 10
    wrong = likelihood_scores(loaded.model, [x], k=20, conditions=[shuffled], use_ema=False)
    key = "nll_iwae_bpd_8bit"
    # the decoder learned to use the class: the true labels explain held-out digits better
    assert right[key] < wrong[key] - 0.3, (right[key], wrong[key])
