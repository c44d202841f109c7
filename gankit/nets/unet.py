"""The U-Net generator of pix2pix (Isola et al. 2017): an encoder-decoder whose decoder also
reads the encoder's feature map of the same size through a skip connection.

Encoder level i: (LeakyReLU 0.2) -> 4x4 stride-2 conv -> norm, halving the size; channels
go ``w, 2w, 4w, 8w, 8w, ...``. Decoder level i: ReLU -> 4x4 stride-2 transposed conv -> norm
(-> dropout 0.5 on the three innermost levels), concatenated with the encoder's map. The
outermost encoder level has no norm (it sees the image), the innermost neither (its maps can
be 1x1), and the last decoder level ends in tanh. ``depth`` levels need image sizes divisible
by ``2**depth``: pix2pix's U-Net-256 is depth 8; 28 px digits allow depth 2.
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.config import NetConfig
from gankit.errors import ConfigError
from gankit.nets.common import check_norm, has_bias, norm2d
from gankit.nets.dcgan import dcgan_init

DROPOUT_LEVELS = 3  # the innermost decoder levels with dropout, as in pix2pix


def unet_channels(width: int, depth: int) -> list[int]:
    """Encoder output channels per level: ``w * 2**i`` capped at ``8w``."""
    return [width * min(2 ** i, 8) for i in range(depth)]


def check_unet_size(size: int, depth: int) -> None:
    if depth < 1:
        raise ConfigError(f"G.depth (U-Net levels) must be at least 1, got {depth}")
    if size % (2 ** depth):
        raise ConfigError(f"a U-Net of G.depth={depth} levels needs image sizes divisible by "
                          f"{2 ** depth}, got {size}; lower G.depth or change data.image_size")


class UNetGenerator(nn.Module):
    """``G(a) -> b``: images ``[B, in_channels, s, s]`` -> ``[B, out_channels, s, s]`` in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, depth: int = 8,
                 norm: str = "batch", dropout: float = 0.5):
        super().__init__()
        self.depth = depth
        chans = unet_channels(width, depth)
        bias = has_bias(norm)
        self.down = nn.ModuleList()
        for i, c_out in enumerate(chans):
            c_in = in_channels if i == 0 else chans[i - 1]
            outer_or_inner = i == 0 or i == depth - 1
            self.down.append(nn.Sequential(
                nn.Identity() if i == 0 else nn.LeakyReLU(0.2),
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias or outer_or_inner),
                nn.Identity() if outer_or_inner else norm2d(norm, c_out),
            ))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            # The innermost level reads only the bottleneck; the others also read a skip.
            c_in = chans[i] if i == depth - 1 else 2 * chans[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1),
                                             nn.Tanh()))
                continue
            drop = dropout > 0 and depth - 1 - i < DROPOUT_LEVELS
            self.up.append(nn.Sequential(
                nn.ReLU(), nn.ConvTranspose2d(c_in, chans[i - 1], 4, 2, 1, bias=bias),
                norm2d(norm, chans[i - 1]), nn.Dropout(dropout) if drop else nn.Identity(),
            ))
        dcgan_init(self)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        skips = []
        h = a
        for level in self.down:
            h = level(h)
            skips.append(h)
        skips.pop()  # the bottleneck is h itself
        for level in self.up[:-1]:
            h = torch.cat([level(h), skips.pop()], dim=1)
        return self.up[-1](h)


def build_unet(cfg: NetConfig, in_channels: int, out_channels: int, size: int,
               dropout: float = 0.5) -> UNetGenerator:
    """A U-Net from ``G.width``, ``G.depth`` (levels) and ``G.norm``."""
    check_unet_size(size, cfg.depth)
    check_norm(cfg.norm, "G", "unet")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"U-Net dropout must be in [0, 1), got {dropout}")
    return UNetGenerator(in_channels, out_channels, cfg.width, cfg.depth, cfg.norm, dropout)
