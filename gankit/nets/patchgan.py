"""The PatchGAN discriminator of pix2pix and CycleGAN: a fully convolutional net whose output
is a map of scores, each judging one overlapping patch of the input.

``n_layers`` 4x4 stride-2 convs (channels ``w, 2w, 4w, 8w, 8w...``) are followed by a 4x4
stride-1 conv and a 4x4 stride-1 conv to one channel; the receptive field of one score is
``receptive_field(n_layers)``: 16, 34, 70 (the default, n_layers=3), 142, 286 pixels.

The optional condition ``c`` is an image concatenated to ``x`` along channels (pix2pix's
conditional D sees the input and the output together).
"""
from __future__ import annotations

import torch
from torch import nn

from gankit.config import NetConfig
from gankit.errors import ConfigError
from gankit.nets.common import apply_spectral_norm, check_norm, has_bias, norm2d
from gankit.nets.dcgan import dcgan_init


def receptive_field(n_layers: int) -> int:
    """Pixels seen by one output score of a PatchGAN with ``n_layers`` stride-2 convs."""
    field = 1
    for stride in [1, 1] + [2] * n_layers:  # walk back from the output through 4x4 kernels
        field = field * stride + (4 - stride)
    return field


class PatchDiscriminator(nn.Module):
    """``D(x, c=None) -> [B, 1, h, w]`` raw scores, one per patch."""

    def __init__(self, in_channels: int, cond_channels: int = 0, width: int = 64,
                 n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"D.depth (PatchGAN stride-2 layers) must be at least 1, got {n_layers}")
        self.cond_channels = cond_channels
        bias = has_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels + cond_channels, width, 4, 2, 1),
                                   nn.LeakyReLU(0.2)]
        c_prev = width
        for i in range(1, n_layers + 1):
            c_out = width * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c_prev, c_out, 4, stride, 1, bias=bias), norm2d(norm, c_out),
                       nn.LeakyReLU(0.2)]
            c_prev = c_out
        layers.append(nn.Conv2d(c_prev, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.receptive_field = receptive_field(n_layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if (c is None) != (self.cond_channels == 0):
            raise ConfigError(f"this PatchGAN takes {'a' if self.cond_channels else 'no'} condition "
                              f"image (cond_channels={self.cond_channels})")
        if c is not None:
            if c.shape[0] != x.shape[0] or c.shape[2:] != x.shape[2:] or c.shape[1] != self.cond_channels:
                raise ValueError(f"the condition image must be [{x.shape[0]}, {self.cond_channels}, "
                                 f"{x.shape[2]}, {x.shape[3]}], got {list(c.shape)}")
            x = torch.cat([x, c.to(x.dtype)], dim=1)
        return self.net(x)


def build_patchgan(cfg: NetConfig, in_channels: int, cond_channels: int = 0) -> PatchDiscriminator:
    """A PatchGAN from ``D.width``, ``D.depth`` (stride-2 layers: 3 = 70x70 patches), ``D.norm``
    and ``D.spectral_norm``."""
    check_norm(cfg.norm, "D", "patchgan")
    net = PatchDiscriminator(in_channels, cond_channels, cfg.width, cfg.depth, cfg.norm)
    return apply_spectral_norm(net) if cfg.spectral_norm else net
