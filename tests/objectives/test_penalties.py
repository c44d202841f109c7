"""Gradient penalty, R1 and weight clipping on discriminators whose input gradients are known."""
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.objectives import clip_weights, get_objective, gradient_penalty, r1_penalty


def linear_critic(w: list[float], b: float = 0.3) -> nn.Linear:
    """D(x) = w.x + b: its input gradient is w at every point."""
    D = nn.Linear(len(w), 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([w]))
        D.bias.fill_(b)
    return D


def points(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=gen), torch.randn(n, 2, generator=gen) + 3.0


@pytest.mark.parametrize("w, two_sided, one_sided", [
    ([0.3, 0.4], (0.5 - 1) ** 2, 0.0),  # ||w|| = 0.5: inside the unit ball
    ([3.0, 4.0], (5.0 - 1) ** 2, (5.0 - 1) ** 2),  # ||w|| = 5
])
def test_gradient_penalty_of_a_linear_critic(w, two_sided, one_sided):
    real, fake = points()
    D = linear_critic(w)
    assert_close(gradient_penalty(D, real, fake), torch.tensor(two_sided))
    assert_close(gradient_penalty(D, real, fake, one_sided=True), torch.tensor(one_sided))


def test_gradient_penalty_backpropagates_into_the_critic():
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||: needs create_graph through dD/dx.
    real, fake = points()
    D = linear_critic([3.0, 4.0])
    gradient_penalty(D, real, fake).backward()
    assert_close(D.weight.grad, torch.tensor([[2 * 4 * 3 / 5, 2 * 4 * 4 / 5]]))


class HalfSquaredNorm(nn.Module):
    """D(x) = ||x||^2 / 2 per sample, so grad_x D = x: the penalty sees x_hat itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).square().sum(1)


def test_interpolation_draws_one_eps_per_sample_from_the_generator():
    real = torch.full((4, 3, 2, 2), 2.0)
    fake = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous()
    eps = torch.rand(4, generator=torch.Generator().manual_seed(7))
    # x_hat_i = eps_i * 2 + (1 - eps_i) * i in each of the 12 entries: ||x_hat_i|| = sqrt(12) |.|
    norms = math.sqrt(12) * (eps * 2 + (1 - eps) * torch.arange(4.0)).abs()
    expected = (norms - 1).square().mean()
    gen = torch.Generator().manual_seed(7)
    got = gradient_penalty(HalfSquaredNorm(), real, fake, generator=gen)
    assert_close(got, expected)


def test_condition_is_passed_to_the_critic():
    class Conditional(nn.Module):
        def forward(self, x, c):  # D(x, c) = x.c, so grad_x D = c
            return (x * c).sum(1)

    real, fake = points(3)
    c = torch.tensor([[0.6, 0.8], [3.0, 4.0], [0.0, 2.0]])  # norms 1, 5, 2
    assert_close(gradient_penalty(Conditional(), real, fake, c=c),
                 torch.tensor((0.0 + 16.0 + 1.0) / 3))
    assert_close(r1_penalty(Conditional(), real, c=c), torch.tensor((1.0 + 25.0 + 4.0) / 3))


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    real, _ = points()
    assert_close(r1_penalty(linear_critic([3.0, 4.0]), real), torch.tensor(25.0))
    assert_close(r1_penalty(HalfSquaredNorm(), real), real.square().sum(1).mean())


def mlp_critic(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32),
                         nn.LeakyReLU(0.2), nn.Linear(32, 1))


def test_gradient_penalty_changes_the_critics_gradients():
    real, fake = points(16)
    objective = get_objective("wgan-gp")
    grads = []
    for weight in (0.0, 10.0):
        D = mlp_critic()
        loss = objective.d_loss(D(real), D(fake))
        if weight:
            gen = torch.Generator().manual_seed(0)
            loss = loss + weight * gradient_penalty(D, real, fake, generator=gen)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters()]))
    assert not torch.allclose(grads[0], grads[1], atol=1e-3)


def interpolate_norms_after_training(weight: float, steps: int = 200) -> float:
    """Train a critic between two Gaussians 1 apart; return its mean gradient norm at
    interpolates. A linear critic's optimum is ||w|| = 1 + 1 / (2 weight) = 1.05 for weight 10."""
    D = mlp_critic()
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
    objective, gen = get_objective("wgan-gp"), torch.Generator().manual_seed(1)
    shift = torch.tensor([0.5, 0.0])

    def draw(n):
        return (0.3 * torch.randn(n, 2, generator=gen) + shift,
                0.3 * torch.randn(n, 2, generator=gen) - shift)

    for _ in range(steps):
        real, fake = draw(64)
        loss = objective.d_loss(D(real), D(fake))
        if weight:
            loss = loss + weight * gradient_penalty(D, real, fake, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    real, fake = draw(1024)
    eps = torch.rand(1024, 1, generator=gen)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return float(grad.norm(dim=1).mean())


def test_wgan_gp_drives_gradient_norms_to_one():
    assert abs(interpolate_norms_after_training(10.0) - 1.0) < 0.2
    assert interpolate_norms_after_training(0.0) > 5.0


def test_penalties_reject_bad_inputs():
    D = linear_critic([1.0, 0.0])
    real, fake = points()
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(D, real, fake[:4])
    with pytest.raises(ValueError, match="continuous"):
        r1_penalty(nn.Embedding(5, 1), torch.tensor([1, 2]))


def test_clip_weights_bounds_every_parameter():
    D = mlp_critic()
    before = [p.detach().clone() for p in D.parameters()]
    clip_weights(D, 0.05)
    for old, new in zip(before, D.parameters()):
        assert new.abs().max() <= 0.05
        assert_close(new.detach(), old.clamp(-0.05, 0.05))
    assert any((old.abs() > 0.05).any() for old in before)  # the clip did something
    with pytest.raises(ValueError, match="positive"):
        clip_weights(D, 0.0)
