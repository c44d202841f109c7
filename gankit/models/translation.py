"""What the image-to-image models (pix2pix, CycleGAN) share: their base class (a G/D pair
trained on ``{a, b}`` batches), the example inputs behind their sample grids, and
``gankit translate`` on a folder. (Their constant-then-linear learning-rate
schedule is ``optim.decay_start``, applied by the trainer to every model.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import nn

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError
from gankit.models.adversarial import AdversarialLoss, adversarial_loss, adversarial_optimizers, adversarial_schedule
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.data.folders import to_uint8

TRANSLATE_BATCH = 32
PRESETS = {"pix2pix": "pix2pix_folder", "cyclegan": "cyclegan_folder"}


class ExampleBank(nn.Module):
    """The first ``size`` training pairs seen, kept (in the checkpoint) for the sample grids.

    The buffers have one spare slot at the end that absorbs the writes of items arriving
    when the bank is full, so filling never needs a host-device sync."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        self.size = size
        self.register_buffer("a", torch.zeros(size + 1, *shape))
        self.register_buffer("b", torch.zeros(size + 1, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def fill(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Store the items of a batch while free slots remain."""
        n = min(len(a), self.size)
        wanted = self.count + torch.arange(n, device=self.a.device)
        slots = torch.where(wanted < self.size, wanted, self.size)
        self.a.index_copy_(0, slots, a[:n].to(self.a.dtype))
        self.b.index_copy_(0, slots, b[:n].to(self.b.dtype))
        self.count.copy_(torch.clamp(self.count + n, max=self.size))

    def indices(self, n: int) -> torch.Tensor:
        """``n`` bank positions, cycling when ``n`` exceeds the bank."""
        return torch.arange(n, device=self.a.device) % self.size


class ImageTranslation(GenerativeModel):
    """A G/D pair (``self.G``, ``self.D``, one optimizer each) trained on ``{a, b}`` batches:
    D phases first fill ``self.bank`` (an :class:`ExampleBank`), then call ``_d_step(a, b)``;
    G phases, which read a batch too, call ``_g_step(a, b)``. Sample inputs are given input
    images, or the kept examples."""

    bank: ExampleBank
    no_latent_generator = "is an image translator (its input is an image, not a latent); use gankit translate"

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adversarial_optimizers(self, self.G, self.D)

    def schedule(self) -> list[Phase]:
        return adversarial_schedule(self.cfg.train, g_needs_batch=True)

    def ema_targets(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, torch.Tensor]:
        if phase == "D":
            self.bank.fill(batch["a"], batch["b"])
            return self._d_step(batch["a"], batch["b"])
        return self._g_step(batch["a"], batch["b"])

    def _d_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _g_step(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Input images (domain A) ``c`` when given, else the examples kept for the grids."""
        if c is not None:
            return {"a": c.to(self.device)}
        return {"i": self.bank.indices(n)}


def image_files(source: Path) -> list[Path]:
    from gankit.data.folders import scan_folder

    if not source.exists():
        raise GankitError(f"input folder '{source}' does not exist")
    return scan_folder(source).files


@torch.no_grad()
def translate_folder(translate: Callable[[torch.Tensor], torch.Tensor], source: Path, out: Path,
                     info: DataInfo) -> str:
    """Translate every image below ``source`` (resized and centre-cropped to the model's
    size) and write the results as PNGs under ``out`` with the same relative names."""
    from gankit.data.folders import load_image

    source, out = Path(source), Path(out)
    files = image_files(source)
    channels, size = info.shape[0], info.shape[-1]
    for start in range(0, len(files), TRANSLATE_BATCH):
        chunk = files[start:start + TRANSLATE_BATCH]
        x = torch.stack([load_image(p, size, channels) for p in chunk])
        for path, img in zip(chunk, to_uint8(translate(x).float().cpu())):
            target = (out / path.relative_to(source)).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(target)
    return f"{len(files)} images to {out}"


def run_eval(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` in eval mode (batch norm with running statistics, no dropout), restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(x)
    finally:
        net.train(was_training)


def plain_objective(cfg, kind: str) -> AdversarialLoss:
    """The adversarial objective of an image-to-image model, which adds no D penalty or
    weight clipping (their penalties would need one D per condition image)."""
    return adversarial_loss(cfg.loss).require(kind, feeds_real=True)


def check_no_training_metrics(cfg, kind: str) -> None:
    """The trainer's metrics compare samples with ``x`` batches; translation models have
    neither, and are measured after training (``gankit eval``: :mod:`gankit.metrics.runs`)."""
    if cfg.eval.metrics:
        raise ConfigError(f"{kind} runs are measured after training (python benchmarks/conditional.py "
                          "or gankit eval RUN); leave eval.metrics empty")


def check_net_names(cfg, generators: tuple[str, ...], kind: str) -> str:
    """The generator name (``auto`` -> the first of ``generators``); D must be a PatchGAN."""
    if cfg.G.name not in ("auto",) + generators:
        raise ConfigError(f"{kind} generators are {', '.join(generators)}; got G.name={cfg.G.name} "
                          f"(start from a {kind} preset, e.g. {PRESETS[kind]})")
    if cfg.D.name not in ("auto", "patchgan"):
        raise ConfigError(f"{kind} uses a PatchGAN discriminator; got D.name={cfg.D.name} "
                          f"(set D.name=patchgan or start from the {PRESETS[kind]} preset)")
    return generators[0] if cfg.G.name == "auto" else cfg.G.name


def build_translator(cfg, name: str, channels: int, size: int, dropout: float = 0.0) -> nn.Module:
    """An image -> image generator: ``unet`` (pix2pix) or ``resnet`` (CycleGAN)."""
    from gankit.nets.resnet_translator import build_resnet_translator
    from gankit.nets.unet import build_unet

    from gankit.nets import apply_spectral_norm

    if name == "unet":
        net = build_unet(cfg.G, channels, channels, size, dropout)
    else:
        net = build_resnet_translator(cfg.G, channels, channels, size)
    return apply_spectral_norm(net) if cfg.G.spectral_norm else net
