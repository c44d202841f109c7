"""A dense-reward text GAN (after ScratchGAN, de Masson d'Autume et al. 2019).

A recurrent discriminator scores every prefix of a sequence, so every token gets its own
reward ``r_t = sigmoid(D(x_0..x_t))`` without Monte Carlo rollouts. G is trained by REINFORCE
on the discounted returns ``R_t = sum_{s >= t} gamma^(s - t) r_s`` minus a moving-average
baseline per position. One sampling pass per update makes it the cheapest GAN here on a CPU,
which pays for the large batches the method wants.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gankit.config import RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.base import Batch
from gankit.models.sequence import TextGAN, TextGANOptions
from gankit.models.seqgan import MovingBaseline, policy_gradient_loss
from gankit.nets.sequence import RecurrentDiscriminator, valid_mask
from gankit.objectives import masked_d_loss


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """``R[:, t] = sum_{s >= t} gamma^(s - t) rewards[:, s]`` for rewards ``[B, L]``."""
    L = rewards.shape[1]
    s = torch.arange(L, device=rewards.device)
    power = (s.view(L, 1) - s.view(1, L)).clamp(min=0).to(rewards.dtype)  # [s, t] -> s - t
    weights = torch.where(s.view(L, 1) >= s.view(1, L), gamma ** power, torch.zeros_like(power))
    return rewards @ weights


@dataclass
class DenseOptions(TextGANOptions):
    kind: str = "dense"
    gamma: float = 0.9  # discount of future rewards
    baseline_decay: float = 0.9
    d_hidden: int = 64  # units of the recurrent discriminator


@register_model
class DenseGAN(TextGAN):
    kind = "dense"
    Options = DenseOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if not 0.0 <= cfg.model.gamma <= 1.0:
            raise ConfigError(f"model.gamma must be in [0, 1], got {cfg.model.gamma}")
        self.baseline = MovingBaseline(self.max_len, cfg.model.baseline_decay)

    def build_discriminator(self) -> nn.Module:
        m, D = self.cfg.model, self.cfg.D
        if D.name not in ("auto", "rnn"):
            raise ConfigError(f"D.name='{D.name}' is not supported by model.kind=dense; use D.name=rnn")
        return RecurrentDiscriminator(len(self.vocab), self.max_len, m.d_emb_dim, m.d_hidden,
                                      c_dim=self.c_dim, eos=self.vocab.eos, dropout=m.d_dropout)

    def d_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        """D's objective on every valid prefix (binary cross-entropy by default: every prefix
        of real data -> 1, of generated data -> 0)."""
        self.train_only(self.D, self.G)
        real = batch["x"]
        fake, c = self.fake_like(batch)
        with self.autocast():
            real_out = self.D.prefix_scores(real, c).float()
            fake_out = self.D.prefix_scores(fake, c).float()
        m_real = valid_mask(real, self.vocab.eos).float()
        m_fake = valid_mask(fake, self.vocab.eos).float()
        loss = masked_d_loss(self.loss.objective, real_out, fake_out, m_real, m_fake)
        self.optimize("D", loss, self.D)
        return {"loss/D": loss.detach(), "D/real": (real_out * m_real).sum().detach() / m_real.sum(),
                "D/fake": (fake_out * m_fake).sum().detach() / m_fake.sum()}

    @torch.no_grad()
    def rewards(self, x: Tensor, c: Tensor | None) -> Tensor:
        """``sigmoid`` of every prefix score, D in eval mode (no dropout noise in rewards)."""
        was_training = self.D.training
        self.D.eval()
        try:
            return torch.sigmoid(self.D.prefix_scores(x, c).float())
        finally:
            self.D.train(was_training)

    def adversarial_g_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        self.train_only(self.G, self.D)
        x, c = self.fake_like(batch)
        mask = valid_mask(x, self.vocab.eos)
        rewards = self.rewards(x, c) * mask
        returns = discounted_returns(rewards, self.cfg.model.gamma)
        advantages = returns - self.baseline(returns, mask)
        with self.autocast():
            loss = policy_gradient_loss(self.G.log_probs(x, c=c), advantages, mask)
        self.optimize("G", loss, self.G)
        return {"loss/G/pg": loss.detach(), "reward": (rewards.sum() / mask.sum()).detach()}
