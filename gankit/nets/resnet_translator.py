"""The ResNet image-to-image generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016).

A 7x7 conv to ``w`` channels, two 3x3 stride-2 convs (``2w``, ``4w``), ``n_blocks`` residual
blocks at a quarter of the resolution (6 for 128 px images, 9 for 256 px in the paper),
two stride-2 transposed convs back up and a 7x7 conv to the output with tanh. Reflection
padding avoids the dark borders zero padding leaves. Image sizes must be divisible by 4.
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.config import NetConfig
from gankit.errors import ConfigError
from gankit.nets.common import check_norm, has_bias, norm2d

DOWNSAMPLINGS = 2


class ResidualBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` with reflection padding."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        bias = has_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm2d(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetTranslator(nn.Module):
    """``G(a) -> b`` for images ``[B, in_channels, s, s]`` with ``s`` divisible by 4."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9,
                 norm: str = "instance"):
        super().__init__()
        if n_blocks < 1:
            raise ConfigError(f"G.depth (residual blocks) must be at least 1, got {n_blocks}")
        bias = has_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                                   norm2d(norm, width), nn.ReLU()]
        c = width
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm2d(norm, 2 * c), nn.ReLU()]
            c *= 2
        layers += [ResidualBlock(c, norm) for _ in range(n_blocks)]
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm2d(norm, c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        for m in self.modules():  # CycleGAN's init: N(0, 0.02) weights, zero biases
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.net(a)


def build_resnet_translator(cfg: NetConfig, in_channels: int, out_channels: int,
                            size: int) -> ResNetTranslator:
    """A ResNet translator from ``G.width``, ``G.depth`` (residual blocks: 6 or 9) and ``G.norm``."""
    if size % (2 ** DOWNSAMPLINGS):
        raise ConfigError(f"the ResNet translator needs image sizes divisible by 4, got {size}; "
                          "set data.image_size")
    check_norm(cfg.norm, "G", "resnet translator")
    return ResNetTranslator(in_channels, out_channels, cfg.width, cfg.depth, cfg.norm)
