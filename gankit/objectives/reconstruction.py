"""Pixel-wise reconstruction losses (pix2pix's L1 term, CycleGAN's cycle and identity terms)."""
from __future__ import annotations

from torch import Tensor


def _check_shapes(a: Tensor, b: Tensor) -> None:
    # Broadcasting [B, C, H, W] against [B, 1, H, W] would silently compare the wrong pixels.
    if a.shape != b.shape:
        raise ValueError(f"reconstruction needs tensors of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference over every element."""
    _check_shapes(a, b)
    return (a - b).abs().mean()


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared difference over every element."""
    _check_shapes(a, b)
    return (a - b).square().mean()


l1_loss = l1
mse_loss = mse
