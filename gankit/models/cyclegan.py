"""CycleGAN (Zhu et al. 2017): translation between two image domains from unpaired data.

Two generators, G_AB: A -> B and G_BA: B -> A, and two PatchGAN discriminators, D_A and D_B.
Besides fooling D_B (and D_A), G_AB(a) must come back to a through G_BA (cycle consistency,
weight ``lambda_cycle`` = 10), and a generator fed an image of its own output domain should
leave it alone (identity, weight ``lambda_identity * lambda_cycle``, 0.5 * 10 by default). The
discriminators are shown a history of 50 generated images rather than only the newest
(Shrivastava et al. 2017), which damps oscillation. The paper's objective is LSGAN (the
cyclegan presets set ``loss.name=lsgan``); the learning rate is constant for the first
half of the steps, then decays linearly towards 0 (the presets' ``optim.decay_start=0.5``,
applied by the trainer). Batches are ``{a, b}``
drawn independently from the two domains (:class:`gankit.data.paired.UnpairedSource`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
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
from gankit.nets.classifier import load_digit_net
from gankit.nets.patchgan import build_patchgan
from gankit.objectives import l1


@dataclass
class CycleGANOptions(ModelOptions):
    kind: str = "cyclegan"
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1 terms
    lambda_identity: float = 0.5  # identity weight as a share of lambda_cycle (0 = off)
    pool_size: int = 50  # generated images each discriminator's history holds (0 = no history)
    # CyCADA's semantic consistency: a frozen classifier's cross-entropy between its reading of
    # the input and of its translation, in both directions (0 = off; digits only).
    lambda_semantic: float = 0.0


class ImagePool(nn.Module):
    """A history of generated images. While it is filling, each image is stored and returned
    as is; afterwards each image is, with probability 1/2, swapped for a random stored one
    (which is returned) or else returned itself. Items of a batch follow this rule in order,
    so an image stored by one item can be returned to a later one.

    The history lives in buffers, so a resumed run continues with the same one. The rule is
    applied to the whole batch at once, without host-device syncs: the buffer has one spare
    slot at the end that receives the writes to discard."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        if size < 0:
            raise ConfigError(f"model.pool_size must be >= 0, got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(size + 1, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, x: torch.Tensor) -> torch.Tensor:
        """The images to show D for the generated batch ``x`` (updating the history)."""
        x = x.detach()
        if self.size == 0:
            return x
        n, dev = len(x), x.device
        # All random numbers are drawn up front, so the RNG use never depends on the state.
        coins, picks = torch.rand(n, device=dev), torch.randint(self.size, (n,), device=dev)
        k = torch.arange(n, device=dev)
        filling = self.count + k < self.size
        swap = ~filling & (coins < 0.5)
        written = torch.where(filling, self.count + k, torch.where(swap, picks, -1))
        # What a swapping item finds in its slot: the latest earlier write of this batch, if any.
        earlier = (written[None, :] == picks[:, None]) & (k[None, :] < k[:, None])
        writer = torch.where(earlier, k[None, :], -1).amax(dim=1)
        found = torch.where(_items(writer >= 0, x), x[writer.clamp(min=0)], self.images[picks])
        out = torch.where(_items(swap, x), found, x)
        # Each slot keeps the batch's last write to it; every other write goes to the spare slot.
        overwritten = ((written[None, :] == written[:, None]) & (k[None, :] > k[:, None])).any(dim=1)
        slots = torch.where((written >= 0) & ~overwritten, written, self.size)
        self.images.index_copy_(0, slots, x.to(self.images.dtype))
        self.count.copy_(torch.clamp(self.count + n, max=self.size))
        return out


def _items(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-item mask [B] shaped to broadcast over items of ``like`` [B, ...]."""
    return mask.view(-1, *[1] * (like.dim() - 1))


@register_model
class CycleGAN(ImageTranslation):
    kind = "cyclegan"
    panels = ("A", "G_AB(A)", "G_BA(G_AB(A))")  # the panels of decode()
    Options = CycleGANOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if info.kind != "unpaired":
            raise ConfigError("cyclegan needs unpaired data: data.source=mnist5k_thick, or a "
                              "folder with trainA/ and trainB/ and data.layout=unpaired")
        m = cfg.model
        if m.lambda_cycle < 0 or m.lambda_identity < 0 or m.lambda_semantic < 0:
            raise ConfigError("model.lambda_cycle, model.lambda_identity and model.lambda_semantic "
                              "must be >= 0")
        if m.lambda_semantic > 0 and tuple(info.shape) != (1, 28, 28):
            raise ConfigError("model.lambda_semantic reads digits with gankit's digit classifier, "
                              f"which takes 1x28x28 images, not {tuple(info.shape)}; set "
                              "model.lambda_semantic=0")
        check_no_training_metrics(cfg, "cyclegan")
        channels, size = info.shape[0], info.shape[-1]
        name = check_net_names(cfg, ("resnet", "unet"), "cyclegan")
        self.G = nn.ModuleDict({d: build_translator(cfg, name, channels, size) for d in ("AB", "BA")})
        self.D = nn.ModuleDict({d: build_patchgan(cfg.D, channels) for d in ("A", "B")})
        self.pool = nn.ModuleDict({d: ImagePool(m.pool_size, tuple(info.shape)) for d in ("A", "B")})
        self.loss = plain_objective(cfg, "cyclegan")
        self.bank = ExampleBank(cfg.train.n_grid, tuple(info.shape))

    def compile_targets(self) -> dict[str, nn.Module]:
        # The four nets themselves: their ModuleDicts have no forward of their own to compile.
        return {f"{kind}_{side}": net for kind in ("G", "D") for side, net in getattr(self, kind).items()}

    def _d_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        self.train_only(self.D, self.G)
        with torch.no_grad(), self.autocast():
            fake_b, fake_a = self.G["AB"](a), self.G["BA"](b)
        shown_a, shown_b = self.pool["A"].query(fake_a.float()), self.pool["B"].query(fake_b.float())
        d = self.loss.d_loss
        with self.autocast():
            # Halved as in the paper, so that D learns more slowly than G.
            loss_a = 0.5 * d(self.D["A"](a).float(), self.D["A"](shown_a).float())
            loss_b = 0.5 * d(self.D["B"](b).float(), self.D["B"](shown_b).float())
        self.optimize("D", loss_a + loss_b, self.D)
        return {"loss/D": (loss_a + loss_b).detach(), "loss/D/A": loss_a.detach(),
                "loss/D/B": loss_b.detach()}

    def _g_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        self.train_only(self.G, self.D)
        m = self.cfg.model
        G_ab, G_ba = self.G["AB"], self.G["BA"]
        with self.autocast():
            fake_b, fake_a = G_ab(a), G_ba(b)
            real_b, real_a = (self.loss.real_scores(lambda: self.D[s](x)) for s, x in (("B", b), ("A", a)))
            gan = (self.loss.g_loss(self.D["B"](fake_b).float(), real_b)
                   + self.loss.g_loss(self.D["A"](fake_a).float(), real_a))
            cycle = l1(G_ba(fake_b).float(), a.float()) + l1(G_ab(fake_a).float(), b.float())
            loss = gan + m.lambda_cycle * cycle
            logs = {"loss/G/gan": gan.detach(), "loss/G/cycle": cycle.detach()}
            if m.lambda_identity > 0:
                identity = l1(G_ab(b).float(), b.float()) + l1(G_ba(a).float(), a.float())
                loss = loss + m.lambda_identity * m.lambda_cycle * identity
                logs["loss/G/identity"] = identity.detach()
            if m.lambda_semantic > 0:
                semantic = self.semantic_loss(a, fake_b) + self.semantic_loss(b, fake_a)
                loss = loss + m.lambda_semantic * semantic
                logs["loss/G/semantic"] = semantic.detach()
        self.optimize("G", loss, self.G)
        logs["loss/G"] = loss.detach()
        return logs

    def semantic_loss(self, source: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """CyCADA (Hoffman et al. 2018): cross-entropy of the frozen classifier on the
        translation against its own label for the source image. Only G receives gradients:
        the classifier is frozen, outside the model's parameters and checkpoints."""
        f = self._classifier(source.device)
        with torch.no_grad():
            labels = f(source.float()).argmax(1)
        return F.cross_entropy(f(translated.float()), labels)

    def _classifier(self, device: torch.device) -> nn.Module:
        net = self.__dict__.get("_frozen_classifier")  # a plain attribute: not a submodule
        if net is None or next(net.parameters()).device != device:  # loaded once per device
            net = load_digit_net(device=device).requires_grad_(False)
            self.__dict__["_frozen_classifier"] = net
        return net

    # ---- sampling and translation ------------------------------------------------------------
    def translate(self, x: torch.Tensor, forward: bool = True, use_ema: bool = True) -> torch.Tensor:
        """G_AB(x) (``forward``) or G_BA(x), in eval mode."""
        return run_eval(self.net("G", use_ema)["AB" if forward else "BA"], x.to(self.device))

    @torch.no_grad()
    def decode(self, inputs: dict[str, torch.Tensor], use_ema: bool = True) -> torch.Tensor:
        """Side-by-side panels ``[a | G_AB(a) | G_BA(G_AB(a))]``: the translation and its cycle."""
        a = inputs["a"] if "a" in inputs else self.bank.a[inputs["i"]]
        fake_b = self.translate(a, True, use_ema)
        return torch.cat([a, fake_b, self.translate(fake_b, False, use_ema)], dim=-1)

    def translate_path(self, source: Path, out: Path, direction: str = "AtoB") -> str:
        """``--direction`` names the data set's sides (trainA -> trainB is AtoB)."""
        forward = direction == self.cfg.data.direction
        return translate_folder(lambda x: self.translate(x, forward), source, out, self.info)
