"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN.

G maps an input image a to an output; a PatchGAN D judges (output, input) pairs patch by
patch: real pairs (b, a) against generated ones (G(a), a). G also minimises the L1
distance to the target, weighted by ``lambda_l1`` (100 in the paper), which carries the
low frequencies while the adversarial term keeps the output sharp. As in the paper, D's loss
is halved. Batches are ``{a, b}`` from paired data (:mod:`gankit.data.paired`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError
from gankit.models import register_model
from gankit.models.translation import (
    ExampleBank,
    ImageTranslation,
    build_translator,
    check_net_names,
    check_no_training_metrics,
    plain_objective,
    run_eval,
    translate_folder,
)
from gankit.nets.patchgan import build_patchgan
from gankit.objectives import l1


@dataclass
class Pix2PixOptions(ModelOptions):
    kind: str = "pix2pix"
    lambda_l1: float = 100.0  # weight of G's L1 distance to the target
    dropout: float = 0.5  # U-Net decoder dropout, pix2pix's only noise (off when translating)


def pix2pix_g_loss(objective, fake_out: torch.Tensor, fake: torch.Tensor, target: torch.Tensor,
                   lambda_l1: float, real_out: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, adversarial, l1)`` with ``total = adversarial + lambda_l1 * l1``; ``real_out``
    (D on the real pairs) for an objective whose G loss reads it."""
    adv = objective.g_loss(fake_out.float(), real_out)
    dist = l1(fake.float(), target.float())
    return adv + lambda_l1 * dist, adv, dist


@register_model
class Pix2Pix(ImageTranslation):
    kind = "pix2pix"
    panels = ("input", "output", "target")  # the panels of decode() on grid inputs
    Options = Pix2PixOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if info.kind != "paired":
            raise ConfigError("pix2pix needs paired data: data.source=mnist5k_edges, or a folder "
                              "with data.layout=ab (side-by-side images) or aligned (A/ and B/)")
        m = cfg.model
        if m.lambda_l1 < 0:
            raise ConfigError(f"model.lambda_l1 must be >= 0, got {m.lambda_l1}")
        check_no_training_metrics(cfg, "pix2pix")
        channels, size = info.shape[0], info.shape[-1]
        name = check_net_names(cfg, ("unet", "resnet"), "pix2pix")
        self.G = build_translator(cfg, name, channels, size, m.dropout)
        self.D = build_patchgan(cfg.D, channels, cond_channels=channels)
        self.loss = plain_objective(cfg, "pix2pix")
        self.bank = ExampleBank(cfg.train.n_grid, tuple(info.shape))

    def _d_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        self.train_only(self.D, self.G)
        with torch.no_grad(), self.autocast():
            fake = self.G(a)
        with self.autocast():
            real_out, fake_out = self.D(b, a), self.D(fake, a)
            # Halved, as in the paper, so that D learns more slowly than G.
            loss = 0.5 * self.loss.d_loss(real_out.float(), fake_out.float())
        self.optimize("D", loss, self.D)
        return {"loss/D": loss.detach(), "D/real": real_out.detach().float().mean(),
                "D/fake": fake_out.detach().float().mean()}

    def _g_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        self.train_only(self.G, self.D)
        with self.autocast():
            fake = self.G(a)
            real_out = self.loss.real_scores(lambda: self.D(b, a))
            loss, adv, dist = pix2pix_g_loss(self.loss, self.D(fake, a), fake, b,
                                             self.cfg.model.lambda_l1, real_out)
        self.optimize("G", loss, self.G)
        return {"loss/G": loss.detach(), "loss/G/gan": adv.detach(), "loss/G/l1": dist.detach()}

    # ---- sampling and translation ------------------------------------------------------------
    def translate(self, a: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
        """Outputs for input images ``a`` (eval mode: no dropout, running batch statistics)."""
        return run_eval(self.net("G", use_ema), a.to(self.device))

    @torch.no_grad()
    def decode(self, inputs: dict[str, torch.Tensor], use_ema: bool = True) -> torch.Tensor:
        """Side-by-side panels ``[input | output | target]`` (the target when it is known)."""
        if "a" in inputs:
            a = inputs["a"]
            return torch.cat([a, self.translate(a, use_ema)], dim=-1)
        i = inputs["i"]
        a, b = self.bank.a[i], self.bank.b[i]
        return torch.cat([a, self.translate(a, use_ema), b], dim=-1)

    def translate_path(self, source: Path, out: Path, direction: str = "AtoB") -> str:
        trained = self.cfg.data.direction
        if direction != trained:
            raise GankitError(f"this pix2pix run translates {trained} only (data.direction); "
                              f"pass --direction {trained}, or train another run for {direction}")
        return translate_folder(self.translate, source, out, self.info)
