"""SeqGAN (Yu et al. 2017): the generator is a policy, the discriminator's verdict its reward.

The score of a sampled sentence cannot be differentiated through the sampled tokens, so G
learns by REINFORCE. Token ``t`` is rewarded with the mean discriminator probability of
``rollouts`` Monte Carlo completions of the prefix ``x_0..x_t`` (sampled by G itself); the
last token is rewarded with ``D(x)`` of the full sequence. An optional baseline (the batch
mean, or a moving average kept in the state for exact resumes) is subtracted per position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from gankit.config import RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.base import Batch
from gankit.models.sequence import TextGAN, TextGANOptions
from gankit.nets.sequence import valid_mask

BASELINES = ("none", "batch", "ema")


@torch.no_grad()
def rollout_rewards(G, D: nn.Module, x: Tensor, rollouts: int, c: Tensor | None = None,
                    rand: Callable[..., Tensor] = torch.rand) -> Tensor:
    """Rewards ``[B, L]``: ``[:, t]`` is the mean of ``sigmoid(D)`` over ``rollouts`` completions
    of ``x[:, :t + 1]`` by ``G``; ``[:, L - 1]`` is ``sigmoid(D(x))``. D is scored in eval mode
    (no dropout noise in the reward) and its mode is restored afterwards. ``rand(n, L)`` draws
    the completions' uniforms."""
    if rollouts < 1:
        raise ConfigError(f"model.rollouts must be at least 1, got {rollouts}")
    B, L = x.shape
    was_training = D.training
    D.eval()
    try:
        # copy k of sequence b is row k * B + b, so a view as [rollouts, B] keeps rows apart
        xr = x.repeat(rollouts, 1)
        cr = c.repeat(rollouts, 1) if c is not None else None
        rewards = torch.empty(B, L, device=x.device)
        for t in range(L - 1):
            done = G.sample(B * rollouts, u=rand(B * rollouts, L), c=cr, prefix=xr[:, :t + 1])
            rewards[:, t] = torch.sigmoid(D(done, cr).float()).view(rollouts, B).mean(0)
        rewards[:, L - 1] = torch.sigmoid(D(x, c).float())
    finally:
        D.train(was_training)
    return rewards


def policy_gradient_loss(log_probs: Tensor, advantages: Tensor, mask: Tensor | None = None) -> Tensor:
    """REINFORCE: ``-mean(advantage * log p(token))`` over valid tokens. Minimising it raises
    the probability of tokens with a positive advantage; advantages carry no gradient."""
    weighted = log_probs * advantages.detach()
    if mask is None:
        return -weighted.mean()
    mask = mask.to(weighted.dtype)
    return -(weighted * mask).sum() / mask.sum().clamp(min=1.0)


class MovingBaseline(nn.Module):
    """A per-position moving average of returns; its value lives in buffers (exact resume)."""

    def __init__(self, length: int, decay: float):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"model.baseline_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("value", torch.zeros(length))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, returns: Tensor, mask: Tensor) -> Tensor:
        """The baseline for this batch (the average so far; the batch mean on the first call),
        then the average takes the batch in."""
        m = mask.float()
        seen = m.sum(0)
        batch_mean = (returns * m).sum(0) / seen.clamp(min=1.0)
        first = self.count == 0
        base = torch.where(first, batch_mean, self.value)
        updated = torch.where(first, batch_mean, self.decay * self.value + (1 - self.decay) * batch_mean)
        self.value.copy_(torch.where(seen > 0, updated, self.value))
        self.count += 1
        return base


@dataclass
class SeqGANOptions(TextGANOptions):
    kind: str = "seqgan"
    rollouts: int = 16  # Monte Carlo completions per prefix
    baseline: str = "ema"  # none | batch | ema
    baseline_decay: float = 0.9


@register_model
class SeqGAN(TextGAN):
    kind = "seqgan"
    Options = SeqGANOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        m = cfg.model
        if m.baseline not in BASELINES:
            raise ConfigError(f"model.baseline must be one of {', '.join(BASELINES)}; got '{m.baseline}'")
        if m.rollouts < 1:
            raise ConfigError(f"model.rollouts must be at least 1, got {m.rollouts}")
        self.baseline = MovingBaseline(self.max_len, m.baseline_decay)

    def advantages(self, rewards: Tensor, mask: Tensor) -> Tensor:
        kind = self.cfg.model.baseline
        if kind == "none":
            return rewards
        if kind == "batch":
            m = mask.float()
            return rewards - (rewards * m).sum(0) / m.sum(0).clamp(min=1.0)
        return rewards - self.baseline(rewards, mask)

    def adversarial_g_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        self.train_only(self.G, self.D)
        x, c = self.fake_like(batch)
        rewards = rollout_rewards(self.G, self.D, x, self.cfg.model.rollouts, c, rand=self.uniform)
        mask = valid_mask(x, self.vocab.eos)
        with self.autocast():
            loss = policy_gradient_loss(self.G.log_probs(x, c=c), self.advantages(rewards, mask), mask)
        self.optimize("G", loss, self.G)
        return {"loss/G/pg": loss.detach(), "reward": rewards[:, -1].mean()}
