"""The GAN of the lecture: z ~ N(0, I) -> G -> x, D scores x, trained in alternation.

Every adversarial objective (minimax, non-saturating, LSGAN, hinge, WGAN, f-GAN...) plugs
in by name; the schedule is ``n_critic`` D phases then one G phase.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.nets import build_discriminator, build_generator
from gankit.objectives import clip_weights, get_objective, gradient_penalty, r1_penalty
from gankit.training.distributed import world_size


@dataclass
class GANOptions(ModelOptions):
    kind: str = "gan"
    z_dim: int = 64


@register_model
class GAN(GenerativeModel):
    kind = "gan"
    Options = GANOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if cfg.model.z_dim < 1:
            raise ConfigError(f"model.z_dim must be at least 1, got {cfg.model.z_dim}")
        self.z_dim = cfg.model.z_dim
        self.G = build_generator(cfg.G, info, self.z_dim)
        self.D = build_discriminator(cfg.D, info)
        self.objective = get_objective(cfg.loss.name, cfg.loss.fgan_g)
        self.penalty = self.objective.default_penalty if cfg.loss.penalty == "auto" else cfg.loss.penalty
        clip = cfg.loss.clip
        self.clip = self.objective.default_clip if clip < 0 else clip

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        o = self.cfg.optim
        return {"G": self.make_optimizer(self.G.parameters(), o.lr_g),
                "D": self.make_optimizer(self.D.parameters(), o.lr_d)}

    def schedule(self) -> list[Phase]:
        return [Phase("D")] * self.cfg.train.n_critic + [Phase("G", needs_batch=False)]

    def ema_targets(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G}

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, torch.Tensor]:
        return self._d_step(batch) if phase == "D" else self._g_step()

    def _d_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        real = batch["x"]
        self.train_only(self.D, self.G)
        with torch.no_grad(), self.autocast():
            fake = self.G(self.randn(real.shape[0], self.z_dim))
        with self.autocast():
            real_out, fake_out = self.D(real), self.D(fake)
            loss = self.objective.d_loss(real_out.float(), fake_out.float())
        logs = {"loss/D": loss.detach()}
        w = self.cfg.loss.penalty_weight
        if self.penalty in ("gp", "gp-one-sided"):
            gp = gradient_penalty(self.D, real, fake.float(), one_sided=self.penalty == "gp-one-sided")
            loss = loss + w * gp
            logs["loss/D/gp"] = gp.detach()
        elif self.penalty == "r1":
            r1 = r1_penalty(self.D, real)
            loss = loss + 0.5 * w * r1
            logs["loss/D/r1"] = r1.detach()
        self.optimize("D", loss, self.D)
        if self.clip > 0:
            clip_weights(self.D, self.clip)
        logs["D/real"] = real_out.detach().float().mean()
        logs["D/fake"] = fake_out.detach().float().mean()
        return logs

    def _g_step(self) -> dict[str, torch.Tensor]:
        self.train_only(self.G, self.D)
        with self.autocast():
            z = self.randn(self.cfg.data.batch_size // world_size(), self.z_dim)
            loss = self.objective.g_loss(self.D(self.G(z)).float())
        self.optimize("G", loss, self.G)
        return {"loss/G": loss.detach()}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = torch.randn(n, self.z_dim, generator=generator)
        return {"z": z.to(self.device)}

    @torch.no_grad()
    def decode(self, inputs: dict[str, torch.Tensor], use_ema: bool = True) -> torch.Tensor:
        G = self.net("G", use_ema)
        was_training = G.training
        G.eval()
        try:
            return G(inputs["z"])
        finally:
            G.train(was_training)
