"""A Gumbel-softmax text GAN in the style of RelGAN (Nie et al. 2019).

G samples the hard token ``argmax(logits + g)`` (g Gumbel noise, so the token is an exact
sample of ``softmax(logits)``) and feeds it back; the discriminator sees the relaxed rows
``softmax(beta * (logits + g))``, through which gradients reach G. ``beta`` grows
exponentially from 1 at the first adversarial step to ``beta_max`` at the last one actually
run (``train.steps``), so the relaxation approaches one-hot rows as training ends. G's
gradients come through D's outputs, not rewards, so any objective of ``loss.name`` fits,
relativistic ones included: the presets take RelGAN's relativistic standard GAN
(``rsgan``: D pushes ``D(real) - D(fake)`` up, G pushes it down); ``ragan`` compares each
side with the other's mean. D's inputs are soft token rows, so no penalty or clipping.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.config import RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.adversarial import AdversarialLoss, adversarial_loss
from gankit.models.base import Batch
from gankit.models.sequence import TextGAN, TextGANOptions
from gankit.nets.sequence import gumbel_noise


def annealed_beta(index: int, total: int, beta_max: float) -> float:
    """``beta_max ** (index / (total - 1))``: 1 at the first of ``total`` steps, ``beta_max``
    at the last (clamped outside)."""
    if total <= 1:
        return float(beta_max)
    frac = min(max(index / (total - 1), 0.0), 1.0)
    return float(beta_max) ** frac


@dataclass
class GumbelOptions(TextGANOptions):
    kind: str = "gumbel"
    beta_max: float = 100.0  # inverse temperature of the relaxation at the last step


@register_model
class GumbelGAN(TextGAN):
    kind = "gumbel"
    Options = GumbelOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if cfg.model.beta_max < 1.0:
            raise ConfigError(f"model.beta_max must be >= 1, got {cfg.model.beta_max}")

    def text_gan_loss(self, cfg: RunConfig) -> AdversarialLoss:
        # G learns through D's outputs, so every objective fits, those that compare with reals too
        return adversarial_loss(cfg.loss).require(self.kind, feeds_real=True)

    def beta(self, step: int) -> float:
        index, total = self.adversarial_index(step)
        return annealed_beta(index, total, self.cfg.model.beta_max)

    def relaxed_fake(self, batch: Batch, step: int) -> tuple[Tensor, Tensor | None]:
        """Soft generated sequences ``[B, L, V]`` (with gradients to G) and their conditions."""
        n, c = batch["x"].shape[0], self.condition(batch)
        noise = gumbel_noise(self.uniform(n, self.max_len, len(self.vocab)))
        _, soft = self.G.gumbel_sample(n, self.beta(step), noise=noise, c=c)
        return soft, c

    def d_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        self.train_only(self.D, self.G)
        with torch.no_grad():
            soft, c = self.relaxed_fake(batch, step)
        with self.autocast():
            real_out, fake_out = self.D(batch["x"], c).float(), self.D(soft, c).float()
            loss = self.loss.d_loss(real_out, fake_out)
        self.optimize("D", loss, self.D)
        return {"loss/D": loss.detach(), "D/real": real_out.detach().mean(),
                "D/fake": fake_out.detach().mean()}

    def adversarial_g_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        self.train_only(self.G, self.D)
        soft, c = self.relaxed_fake(batch, step)
        with self.autocast():
            # reals first: D's dropout draws in the order the run has always had
            real_out = self.loss.real_scores(lambda: self.D(batch["x"], c))
            loss = self.loss.g_loss(self.D(soft, c).float(), real_out)
        self.optimize("G", loss, self.G)
        return {"loss/G": loss.detach(), "beta": torch.tensor(self.beta(step))}
