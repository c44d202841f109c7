"""2-D Gaussian mixtures used to measure mode collapse (the PacGAN / VEEGAN benchmarks).

* ``ring8``: 8 modes on the unit circle, mode ``i`` at angle ``2*pi*i/8``, std 0.01;
* ``grid25``: 25 modes on the grid ``{-4, -2, 0, 2, 4}^2``, std 0.05, mode ``5*i + j`` at
  ``(xs[i], xs[j])`` with ``xs = (-4, -2, 0, 2, 4)`` (row-major, x varies slowest).

Every sample picks a mode uniformly at random, then adds isotropic Gaussian noise.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gankit.errors import ConfigError
from gankit.registry import closest


def _ring(k: int, radius: float) -> Tensor:
    # Angles in float64 so that e.g. mode 2 lands at (0, 1) to float32 precision.
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def _grid(values: tuple[float, ...]) -> Tensor:
    axis = torch.tensor(values, dtype=torch.float32)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


MIXTURES: dict[str, tuple[Tensor, float]] = {
    "ring8": (_ring(8, 1.0), 0.01),
    "grid25": (_grid((-4.0, -2.0, 0.0, 2.0, 4.0)), 0.05),
}


def mixture(name: str) -> tuple[Tensor, float]:
    """The ``(means [K, 2], std)`` of a named mixture; ConfigError for an unknown name."""
    if name not in MIXTURES:
        known = ", ".join(sorted(MIXTURES))
        raise ConfigError(f"unknown toy mixture '{name}'{closest(name, list(MIXTURES))}; "
                          f"known: {known}")
    means, std = MIXTURES[name]
    return means.clone(), std


def sample_mixture(name: str, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw ``n`` points of the mixture ``name``: ``(x float32 [n, 2], mode int64 [n])``.

    Modes are drawn uniformly; the same ``seed`` always gives the same points.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of toy samples must be a positive integer, got {n!r}")
    means, std = mixture(name)
    gen = torch.Generator().manual_seed(seed)
    modes = torch.randint(len(means), (n,), generator=gen, dtype=torch.int64)
    noise = torch.randn(n, 2, generator=gen, dtype=torch.float32)
    return means[modes] + std * noise, modes
