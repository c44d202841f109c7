"""Interpolation between latents: a grid (rows = pairs of end points, columns = steps) or an
animated GIF, for every latent generator through :class:`GeneratorHandle`.

Paths are spherical in z (a straight line between two N(0, I) draws passes through latents
of atypically small norm, which the generator rarely saw) and straight in w (the mapping net's
space, where StyleGAN's perceptual path length is measured on straight lines).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gankit.data.folders import to_uint8
from gankit.errors import ConfigError
from gankit.use.generator import GeneratorHandle, require_images


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of rows ``a``, ``b`` [N, D] at fractions ``t`` [T]:
    ``[N, T, D]``; a straight line where the two are (anti)parallel."""
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.arccos((an * bn).sum(1).clamp(-1, 1))[:, None, None]  # [N, 1, 1]
    so = torch.sin(omega)
    t = t[None, :, None]
    curved = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / so.clamp(min=1e-12)
    straight = lerp(a, b, t[0, :, 0])
    return torch.where(so > 1e-6, curved, straight)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Straight interpolation ``[N, T, D]`` of rows ``a``, ``b`` [N, D] at fractions ``t`` [T]."""
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


def interpolation_paths(handle: GeneratorHandle, rows: int, steps: int, seed: int = 0,
                        truncation: float | None = None) -> tuple[Tensor, Tensor | None, str]:
    """``(latents [rows, steps, D], raw conditions [rows] or None, space)``: each row walks
    from one seeded, truncated latent to another (slerp in z, lerp in w), under one condition."""
    if rows < 1 or steps < 2:
        raise ConfigError(f"interpolation needs --rows >= 1 and --steps/--frames >= 2, got {rows} and {steps}")
    c = handle.conditions(rows)
    ends = [handle.draw(rows, seed + k * 1_000_003, truncation, c) for k in range(2)]
    t = torch.linspace(0, 1, steps, device=ends[0].device)
    path = (slerp if handle.working_space == "z" else lerp)(ends[0], ends[1], t)
    return path, c, handle.working_space


@torch.no_grad()
def render_paths(handle: GeneratorHandle, path: Tensor, c: Tensor | None, space: str) -> Tensor:
    """Images ``[rows, steps, C, H, W]`` along the paths."""
    rows, steps = path.shape[:2]
    cc = None if c is None else c.repeat_interleave(steps, 0)
    x = handle.synthesize(path.reshape(rows * steps, -1), cc, space).float().cpu()
    return x.reshape(rows, steps, *x.shape[1:])


def write_gif(frames: Tensor, out: Path, duration_ms: int = 80) -> Path:
    """``frames [T, rows, C, H, W]`` in [-1, 1] -> an endlessly looping GIF whose frame t
    shows every row side by side; forth then back, so the loop has no jump."""
    t, rows = frames.shape[:2]
    tiles = to_uint8(frames.reshape(t * rows, *frames.shape[2:]))  # [N, H, W, C] uint8
    tiles = tiles.reshape(t, rows, *tiles.shape[1:])
    strips = [np.concatenate(list(tiles[i]), axis=1) for i in range(t)]
    images = [Image.fromarray(s[..., 0] if s.shape[-1] == 1 else s) for s in strips]
    images = images + images[-2:0:-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    tmp.replace(out)
    return out


def interpolate(handle: GeneratorHandle, out: Path, rows: int, steps: int, seed: int = 0,
                truncation: float | None = None, gif: bool = False) -> Path:
    """``gankit interpolate``: the grid PNG, or with ``gif`` the animation, at ``out``."""
    from gankit.viz import save_grid

    require_images(handle, "interpolate")
    path, c, space = interpolation_paths(handle, rows, steps, seed, truncation)
    x = render_paths(handle, path, c, space)
    if gif:
        return write_gif(x.transpose(0, 1), out)
    save_grid(x.reshape(rows * steps, *x.shape[2:]), out, nrow=steps)
    return out
