"""DCGAN (Radford et al. 2016): strided (transposed) 4x4 convolutions, doubling or halving the
resolution at every layer, for 28, 32 and 64 px images.

``width`` is the base channel count: the 64 px generator goes 8w -> 4w -> 2w -> w feature maps
(512 -> 256 -> 128 -> 64 for w=64) and the discriminator mirrors it.
"""
from __future__ import annotations

import torch
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

# image size -> side of the smallest feature map; each layer in between doubles it
START_SIDE = {28: 7, 32: 4, 64: 4}
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)
CONV_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.'s init: weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, CONV_LAYERS):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, NORM_LAYERS) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def channel_plan(size: int, width: int) -> tuple[int, list[int]]:
    """``(start side, channels from the smallest map up)``, e.g. 64 px: (4, [8w, 4w, 2w, w])."""
    start = START_SIDE[size]
    n_layers = (size // start).bit_length() - 1  # each layer doubles the side
    return start, [width * 2 ** i for i in reversed(range(n_layers))]


class DCGANGenerator(Generator):
    """(z, c) -> start x start maps -> stride-2 transposed convs -> tanh image."""

    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, int, int], width: int, norm: str):
        super().__init__(z_dim, c_dim, out_shape)
        start, channels = channel_plan(out_shape[1], width)
        bias = has_bias(norm)
        # A transposed conv with a start x start kernel on a 1x1 input is the projection of z.
        layers: list[nn.Module] = [nn.ConvTranspose2d(self.in_dim, channels[0], start, 1, 0, bias=bias),
                                   norm2d(norm, channels[0]), nn.ReLU()]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), norm2d(norm, c_out),
                       nn.ReLU()]
        layers += [nn.ConvTranspose2d(channels[-1], out_shape[0], 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    net_name = "dcgan"

    def synthesize(self, zc: torch.Tensor) -> torch.Tensor:
        return self.net(zc[:, :, None, None])

    def latent_weight(self) -> tuple[str, torch.Tensor]:
        """The first transposed conv on the 1x1 input is a dense map of ``(z, c)``:
        its weight ``[in, out, k, k]``, z's rows, as ``[out * k * k, z_dim]``."""
        w = self.net[0].weight[: self.z_dim]
        return "z", w.reshape(self.z_dim, -1).t()


class DCGANDiscriminator(Discriminator):
    """Stride-2 convs with LeakyReLU(0.2) down to start x start maps, flattened as features."""

    def __init__(self, in_shape: tuple[int, int, int], c_dim: int, cond_mode: str, width: int,
                 norm: str):
        super().__init__(c_dim, cond_mode)
        start, channels = channel_plan(in_shape[1], width)
        channels = channels[::-1]
        # No normalisation on the first layer (Radford et al.): it sees the raw images.
        layers: list[nn.Module] = [nn.Conv2d(in_shape[0] + self.concat_dim, channels[0], 4, 2, 1),
                                   nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=has_bias(norm)), norm2d(norm, c_out),
                       nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        # The linear head on the flattened maps is DCGAN's final start x start convolution.
        self.set_head(channels[-1] * start * start)
        dcgan_init(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


@GENERATORS.register("dcgan")
def dcgan_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> DCGANGenerator:
    """A DCGAN generator for square 28, 32 or 64 px images with info.shape[0] channels."""
    channels, size = square_image(info, "dcgan", tuple(START_SIDE))
    check_norm(cfg.norm, "G", "dcgan")
    return DCGANGenerator(z_dim, c_dim, (channels, size, size), cfg.width, cfg.norm)


@DISCRIMINATORS.register("dcgan")
def dcgan_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                        cond_mode: str = "projection") -> DCGANDiscriminator:
    """A DCGAN discriminator; use norm layer/instance/none with gradient penalties."""
    channels, size = square_image(info, "dcgan", tuple(START_SIDE))
    check_norm(cfg.norm, "D", "dcgan")
    return DCGANDiscriminator((channels, size, size), c_dim, cond_mode, cfg.width, cfg.norm)
