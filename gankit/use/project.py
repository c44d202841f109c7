"""Projection: the latent that makes a trained generator reproduce a given image.

Adam optimises a batch of latents against a pixel loss (mean squared error) plus a
perceptual loss (the cosine distance between feature vectors, by default the penultimate
features of the run's own discriminator: features the project has offline, learnt on this
very data). The latent lives in

* ``z`` for nets without a mapping net, started at the best of a few seeded draws;
* ``w`` or per-layer ``w+`` for nets with one, started at ``w_avg`` (the mean of mapped
  draws, as StyleGAN2-ADA's projector does), with decaying noise added to ``w`` early on
  and the net's noise maps optimised too, kept white by the noise regulariser of Karras
  et al. 2020 (the autocorrelation at one pixel, over a pyramid of scales).

The learning rate ramps up over the first 5% of steps and down (cosine) over the last 25%.
Every image is independent of the others in its batch except through features that look
across the batch (a StyleGAN2 discriminator's minibatch deviation).
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import ConfigError, DataError
from gankit.use.generator import GeneratorHandle, require_images

Features = Callable[[Tensor, Tensor | None], Tensor]  # (images, raw conditions) -> [B, F]


@dataclass
class ProjectionSettings:
    steps: int = 1000
    lr: float = 0.1
    space: str = "auto"  # auto (w+ with a mapping net, else z) | z | w | w+
    perceptual: float = 0.1  # weight of the feature distance (0 = pixels only)
    noise_reg: float = 1e5  # weight of the noise-map regulariser (nets with noise inputs)
    optimise_noise: bool = True
    init_draws: int = 16  # z: the start is the best of this many draws
    snapshots: int = 8  # frames of the optimisation strip

    def check(self) -> None:
        if self.steps < 1 or self.lr <= 0 or self.perceptual < 0 or self.noise_reg < 0:
            raise ConfigError(f"projection needs steps >= 1, lr > 0 and weights >= 0; got steps="
                              f"{self.steps}, lr={self.lr}, perceptual={self.perceptual}")


@dataclass
class Projection:
    latents: Tensor  # [B, ...] in ``space``
    space: str
    images: Tensor  # [B, C, H, W] reconstructions
    psnr: Tensor  # [B] dB against the targets, pixels in [0, 1]
    strip: Tensor  # [B, snapshots, C, H, W]: the reconstruction as it went
    noise: list[Tensor]  # the optimised noise maps ([B, 1, r, r] each; empty if none)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio per image of [-1, 1] images, in dB (peak = the range)."""
    mse = (a.float() - b.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp(min=1e-12))


def noise_regulariser(maps: list[Tensor]) -> Tensor:
    """Sum over maps and scales (halved down to 8 px) of the squared autocorrelation of
    each map with itself shifted by one pixel, across and down: zero for white noise."""
    total = maps[0].new_zeros(())
    for n in maps:
        while True:
            total = total + (n * n.roll(1, 3)).mean().square() + (n * n.roll(1, 2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


def _lr_at(step: int, steps: int, lr: float) -> float:
    t = step / steps
    return lr * min(1.0, t / 0.05) * 0.5 * (1 - math.cos(math.pi * min(1.0, (1 - t) / 0.25)))


def _space(handle: GeneratorHandle, space: str) -> str:
    space = ("w+" if handle.has_mapping else "z") if space == "auto" else space
    handle.require_space(space)
    return space


@torch.no_grad()
def _start(handle: GeneratorHandle, targets: Tensor, c: Tensor | None, space: str,
           settings: ProjectionSettings, seeds: list[int]) -> tuple[Tensor, float]:
    """The starting latents and the scale of w's exploration noise (0 in z)."""
    n = len(targets)
    if space == "z":  # the best of a few draws per image, each image's own seed
        starts = []
        for i, seed in enumerate(seeds):
            z = handle.sample_z(settings.init_draws, seed)
            ci = None if c is None else c[i:i + 1].expand(settings.init_draws, *c.shape[1:])
            err = (handle.synthesize(z, ci) - targets[i:i + 1]).square().flatten(1).mean(1)
            starts.append(z[int(err.argmin())])
        return torch.stack(starts), 0.0
    z = handle.sample_z(1000, seeds[0] if seeds else 0)
    cc = None if c is None else c[:1].expand(1000, *c.shape[1:])
    w = handle.mapping(z, cc)
    avg, std = w.mean(0), float((w - w.mean(0)).square().sum(1).mean().sqrt())
    start = avg.expand(n, -1) if space == "w" else avg.expand(n, handle.num_ws, -1)
    return start.clone(), std


def project(handle: GeneratorHandle, targets: Tensor, c: Tensor | None = None,
            settings: ProjectionSettings | None = None, features: Features | None = None,
            seeds: list[int] | None = None) -> Projection:
    """Project ``targets [B, C, H, W]`` in [-1, 1] (under raw conditions ``c``) into the
    latent space ``settings.space``; ``seeds`` (one per image) seed the start and noise."""
    s = settings or ProjectionSettings()
    s.check()
    require_images(handle, "project")
    space = _space(handle, s.space)
    targets = targets.to(handle.device).float()
    if tuple(targets.shape[1:]) != tuple(handle.spec.out_shape):
        raise ConfigError(f"images of shape {tuple(targets.shape[1:])} cannot be projected into a "
                          f"generator of {tuple(handle.spec.out_shape)}")
    seeds = list(range(len(targets))) if seeds is None else list(seeds)
    h = GeneratorHandle(copy.deepcopy(handle.G), handle.spec, handle.space)  # noise maps change
    h.G.requires_grad_(False)
    start, w_std = _start(h, targets, c, space, s, seeds)
    latent = start.requires_grad_(True)
    noise = _noise_maps(h, len(targets), seeds[0] if seeds else 0) if s.optimise_noise else []
    opt = torch.optim.Adam([latent, *noise], lr=s.lr, betas=(0.9, 0.999))
    target_f = _unit(features(targets, c)).detach() if features is not None and s.perceptual else None
    g = torch.Generator(device="cpu").manual_seed(seeds[0] if seeds else 0)
    marks = {round(k * (s.steps - 1) / max(1, s.snapshots - 1)) for k in range(s.snapshots)}
    frames = []
    for step in range(s.steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, s.steps, s.lr)
        # w's exploration noise decays to nothing over the first 75% of steps
        shake = w_std * 0.05 * max(0.0, 1 - step / (0.75 * s.steps)) ** 2
        lat = latent + shake * torch.randn(latent.shape, generator=g).to(latent) if shake else latent
        x = h.synthesize(lat, c, space)
        loss = (x - targets).square().flatten(1).mean(1).sum()
        if target_f is not None:
            loss = loss + s.perceptual * (_unit(features(x, c)) - target_f).square().sum(1).sum()
        if noise:
            loss = loss + s.noise_reg * noise_regulariser(noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if noise:
            _renormalise(noise)
        if step in marks:
            frames.append(x.detach().float().cpu())
    with torch.no_grad():
        final = h.synthesize(latent, c, space).float().cpu()
    return Projection(latent.detach().cpu(), space, final, psnr(final, targets.cpu()),
                      torch.stack(frames, 1), [n.detach().cpu() for n in noise])


def _unit(f: Tensor) -> Tensor:
    return F.normalize(f.float().flatten(1), dim=1)


def _noise_maps(h: GeneratorHandle, n: int, seed: int) -> list[Tensor]:
    """Fresh white noise maps, one per image and layer, installed in ``h``'s (copied) net."""
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(n, *m.shape[1:], generator=g).to(m).requires_grad_(True)
            for m in h.noise_inputs()]
    if maps:
        h.net.set_noise_inputs(maps)
    return maps


@torch.no_grad()
def _renormalise(maps: list[Tensor]) -> None:
    for m in maps:
        m.sub_(m.mean(dim=(1, 2, 3), keepdim=True)).div_(m.std(dim=(1, 2, 3), keepdim=True) + 1e-8)


def discriminator_features(D: torch.nn.Module) -> Features | None:
    """The penultimate features of a trained discriminator as a perceptual feature map
    (None when ``D`` exposes none, e.g. a packed PacGAN D that judges several images)."""
    if not callable(getattr(D, "features", None)) or getattr(D, "pack", 1) > 1:
        return None
    D = copy.deepcopy(D).eval().requires_grad_(False)

    def features(x: Tensor, c: Tensor | None) -> Tensor:
        return D.features(x, c) if c is not None else D.features(x)

    return features


# ---- files: gankit project -----------------------------------------------------------------------
def image_inputs(source: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of one image or of every image below a folder (names from the path
    relative to it, so sub-folders cannot collide); DataError when there are none."""
    from gankit.data.folders import scan_folder

    source = Path(source)
    if source.is_dir():
        files = scan_folder(source).files
        return [("_".join(f.relative_to(source).with_suffix("").parts), f) for f in files]
    if not source.is_file():
        raise DataError(f"'{source}' is neither an image nor a folder of images")
    return [(source.stem, source)]


def project_files(handle: GeneratorHandle, source: Path, out: Path, c_text: str | None = None,
                  settings: ProjectionSettings | None = None, features: Features | None = None,
                  seed: int = 0, batch: int = 8, log: Callable[[str], None] = print) -> dict:
    """``gankit project``: project every image of ``source`` in batches; per image NAME,
    write ``NAME.png`` (the reconstruction), ``NAME_steps.png`` (target, then the
    optimisation), ``NAME_noise.npz`` (noise maps, nets with noise inputs) and last
    ``NAME.npy`` (the latent), whose presence marks the image done, so a second call skips
    it. ``projection.json`` sums up every image done. Image k's seed is ``seed + k``."""
    from gankit.data.folders import load_image

    s = settings or ProjectionSettings()
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    items = image_inputs(source)
    out.mkdir(parents=True, exist_ok=True)
    todo = [(k, name, path) for k, (name, path) in enumerate(items) if not (out / f"{name}.npy").exists()]
    if len(todo) < len(items):
        log(f"{len(items) - len(todo)} of {len(items)} images already projected in '{out}'; skipping them")
    channels, size = handle.spec.out_shape[0], handle.spec.out_shape[-1]
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        x = torch.stack([load_image(path, size, channels) for _, _, path in part])
        c = handle.conditions(len(part), c_text) if handle.space is not None or c_text else None
        p = project(handle, x, c, s, features, seeds=[seed + k for k, _, _ in part])
        for i, (k, name, _) in enumerate(part):
            _write_projection(out, name, x[i], p, i)
        log(f"projected {start + len(part)}/{len(todo)}: PSNR " + ", ".join(f"{float(v):.1f}" for v in p.psnr))
        _update_summary(out, {name: {"psnr": round(float(p.psnr[i]), 3), "space": p.space, "seed": seed + k,
                                     "condition": c_text} for i, (k, name, _) in enumerate(part)})
    return json.loads((out / "projection.json").read_text()) if (out / "projection.json").exists() else {}


def _write_projection(out: Path, name: str, target: Tensor, p: Projection, i: int) -> None:
    from gankit.viz import save_grid

    save_image(p.images[i], out / f"{name}.png")
    strip = torch.cat([target[None].float(), p.strip[i]])
    save_grid(strip, _tmp(out / f"{name}_steps.png"), nrow=len(strip))
    _tmp(out / f"{name}_steps.png").replace(out / f"{name}_steps.png")
    if p.noise:
        with open(_tmp(out / f"{name}_noise.npz"), "wb") as f:
            np.savez(f, **{f"noise{j}": m[i].numpy() for j, m in enumerate(p.noise)})
        _tmp(out / f"{name}_noise.npz").replace(out / f"{name}_noise.npz")
    with open(_tmp(out / f"{name}.npy"), "wb") as f:
        np.save(f, p.latents[i].numpy().astype(np.float32))
    _tmp(out / f"{name}.npy").replace(out / f"{name}.npy")


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path`` with its suffix (Pillow picks the format by it)."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def save_image(x: Tensor, path: Path) -> Path:
    """One [-1, 1] image ``[C, H, W]`` as an 8-bit PNG of exactly its pixels, atomically."""
    from PIL import Image

    from gankit.data.folders import to_uint8

    pixels = to_uint8(x[None])[0]
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(_tmp(path))
    _tmp(path).replace(path)
    return path


def _update_summary(out: Path, entries: dict) -> None:
    path = out / "projection.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary.update(entries)
    _tmp(path).write_text(json.dumps(summary, indent=1, sort_keys=True))
    _tmp(path).replace(path)
