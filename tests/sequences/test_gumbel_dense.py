"""Gumbel-softmax annealing over the steps actually run; dense rewards and discounted returns."""
import pytest
import torch

from gankit.data.text import load_text_data
from gankit.models.dense import discounted_returns
from gankit.models.gumbel import annealed_beta
from gankit.training.trainer import build_model
from tests.sequences.conftest import tiny_text_config


def model_for(cfg):
    return build_model(cfg, load_text_data(cfg.data).info)


def test_beta_goes_from_one_to_beta_max_over_the_adversarial_steps_of_this_run():
    cfg = tiny_text_config("gumbel", **{"train.steps": 23, "model.pretrain_steps": 2,
                                        "model.d_pretrain_steps": 1, "model.beta_max": 1000.0})
    model = model_for(cfg)
    first, last = 3, 22  # steps 0-1 MLE, 2 D alone, 3..22 adversarial (20 steps)
    assert model.beta(first) == 1.0
    assert model.beta(last) == pytest.approx(1000.0)
    assert model.beta(first + 10) == pytest.approx(1000.0 ** (10 / 19))
    betas = [model.beta(s) for s in range(first, last + 1)]
    assert all(a < b for a, b in zip(betas, betas[1:]))
    assert annealed_beta(0, 1, 50.0) == 50.0


def test_discounted_returns_match_the_closed_form():
    gamma, L = 0.9, 6
    r = torch.full((1, L), 2.0)
    expected = torch.tensor([[2.0 * (1 - gamma ** (L - t)) / (1 - gamma) for t in range(L)]])
    torch.testing.assert_close(discounted_returns(r, gamma), expected)
    r = torch.tensor([[1.0, 0.0, 0.0, 4.0], [0.0, 3.0, 0.0, 0.0]])
    expected = torch.tensor([[1 + 4 * 0.5 ** 3, 4 * 0.5 ** 2, 4 * 0.5, 4.0], [1.5, 3.0, 0.0, 0.0]])
    torch.testing.assert_close(discounted_returns(r, 0.5), expected)
    torch.testing.assert_close(discounted_returns(r, 0.0), r)


def test_dense_rewards_are_deterministic_probabilities_of_every_prefix():
    cfg = tiny_text_config("dense", **{"model.d_dropout": 0.5})
    model = model_for(cfg)
    x = torch.randint(0, 40, (5, 6))
    model.D.train()
    first, second = model.rewards(x, None), model.rewards(x, None)
    torch.testing.assert_close(first, second)
    assert model.D.training and not first.requires_grad
    model.D.eval()
    torch.testing.assert_close(first, torch.sigmoid(model.D.prefix_scores(x)))


def test_stages_follow_the_step():
    model = model_for(tiny_text_config("seqgan", **{"train.steps": 10, "model.pretrain_steps": 3,
                                                    "model.d_pretrain_steps": 2}))
    assert [model.stage(s) for s in range(10)] == ["mle"] * 3 + ["d"] * 2 + ["adv"] * 5
