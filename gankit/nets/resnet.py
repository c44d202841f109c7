"""SNGAN-style residual nets (Miyato et al. 2018) for 32 and 64 px images.

The generator stacks up-sampling blocks (norm, ReLU, nearest 2x, 3x3 conv, twice; a learnable
1x1 shortcut); the discriminator stacks down-sampling blocks (ReLU, 3x3 convs, 2x2 average
pooling) after an "optimized" first block that convolves the raw image before any ReLU, then
sums the ReLU features over space.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.nets.common import (
    DISCRIMINATORS,
    GENERATORS,
    Discriminator,
    Generator,
    check_norm,
    has_bias,
    norm2d,
    square_image,
)

SIZES = (32, 64)
START_SIDE = 4


def conv(c_in: int, c_out: int, kernel: int, bias: bool = True, gain: float = 1.0) -> nn.Conv2d:
    """A same-size conv with Glorot-uniform weights, as in the SNGAN code."""
    layer = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=bias)
    nn.init.xavier_uniform_(layer.weight, gain)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UpBlock(nn.Module):
    """Residual block that doubles the resolution."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        # Every block's output feeds a norm (the next block's or the last one), so with
        # batch/instance norm no conv here needs a bias.
        bias = has_bias(norm)
        self.n1, self.c1 = norm2d(norm, c_in), conv(c_in, c_out, 3, bias, math.sqrt(2))
        self.n2, self.c2 = norm2d(norm, c_out), conv(c_out, c_out, 3, bias, math.sqrt(2))
        self.skip = conv(c_in, c_out, 1, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(up2(F.relu(self.n1(x))))
        h = self.c2(F.relu(self.n2(h)))
        return h + self.skip(up2(x))


class DownBlock(nn.Module):
    """Residual block that halves the resolution when ``down`` is set."""

    def __init__(self, c_in: int, c_out: int, norm: str, down: bool):
        super().__init__()
        self.down = down
        self.n1, self.c1 = norm2d(norm, c_in), conv(c_in, c_out, 3, has_bias(norm), math.sqrt(2))
        self.n2, self.c2 = norm2d(norm, c_out), conv(c_out, c_out, 3, True, math.sqrt(2))
        self.skip = conv(c_in, c_out, 1) if down or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.n2(self.c1(F.relu(self.n1(x))))))
        s = x if self.skip is None else self.skip(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class FirstDownBlock(nn.Module):
    """SNGAN's "optimized" first block: no ReLU or norm before the first conv (the input is
    the image), and pooling before the 1x1 shortcut, which is cheaper."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.c1 = conv(c_in, c_out, 3, True, math.sqrt(2))
        self.c2 = conv(c_out, c_out, 3, True, math.sqrt(2))
        self.skip = conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.skip(F.avg_pool2d(x, 2))


def generator_channels(size: int, width: int) -> list[int]:
    """Channels of the 4x4 input and after each up block (32 px: SNGAN's constant width)."""
    return [width] * 4 if size == 32 else [8 * width, 8 * width, 4 * width, 2 * width, width]


def discriminator_plan(size: int, width: int) -> list[tuple[int, int, bool]]:
    """``(c_in, c_out, down)`` of the blocks after the first; they end at 8x8 (32 px) or 4x4."""
    if size == 32:
        return [(width, width, True), (width, width, False), (width, width, False)]
    w = width
    return [(w, 2 * w, True), (2 * w, 4 * w, True), (4 * w, 8 * w, True), (8 * w, 8 * w, False)]


class ResNetGenerator(Generator):
    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, int, int], width: int, norm: str):
        super().__init__(z_dim, c_dim, out_shape)
        channels = generator_channels(out_shape[1], width)
        self.project = nn.Linear(self.in_dim, channels[0] * START_SIDE ** 2)
        nn.init.xavier_uniform_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.blocks = nn.Sequential(*[UpBlock(a, b, norm) for a, b in zip(channels, channels[1:])])
        self.out = nn.Sequential(norm2d(norm, channels[-1]), nn.ReLU(),
                                 conv(channels[-1], out_shape[0], 3), nn.Tanh())

    net_name = "resnet"

    def latent_weight(self) -> tuple[str, torch.Tensor]:
        """The dense projection of ``(z, c)`` to the 4x4 maps, z's columns."""
        return "z", self.project.weight[:, : self.z_dim]

    def synthesize(self, zc: torch.Tensor) -> torch.Tensor:
        h = self.project(zc).reshape(zc.shape[0], -1, START_SIDE, START_SIDE)
        return self.out(self.blocks(h))


class ResNetDiscriminator(Discriminator):
    def __init__(self, in_shape: tuple[int, int, int], c_dim: int, cond_mode: str, width: int,
                 norm: str):
        super().__init__(c_dim, cond_mode)
        plan = discriminator_plan(in_shape[1], width)
        blocks = [FirstDownBlock(in_shape[0] + self.concat_dim, width)]
        blocks += [DownBlock(c_in, c_out, norm, down) for c_in, c_out, down in plan]
        self.blocks = nn.Sequential(*blocks)
        self.set_head(plan[-1][1])
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        # Global sum pooling (not mean), as in the SNGAN discriminators.
        return F.relu(self.blocks(x)).sum(dim=(2, 3))


@GENERATORS.register("resnet")
def resnet_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> ResNetGenerator:
    """An SNGAN residual generator for square 32 or 64 px images."""
    channels, size = square_image(info, "resnet", SIZES)
    check_norm(cfg.norm, "G", "resnet")
    return ResNetGenerator(z_dim, c_dim, (channels, size, size), cfg.width, cfg.norm)


@DISCRIMINATORS.register("resnet")
def resnet_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                         cond_mode: str = "projection") -> ResNetDiscriminator:
    """An SNGAN residual discriminator; ``feature_dim`` is w (32 px) or 8w (64 px)."""
    channels, size = square_image(info, "resnet", SIZES)
    check_norm(cfg.norm, "D", "resnet")
    return ResNetDiscriminator((channels, size, size), c_dim, cond_mode, cfg.width, cfg.norm)
