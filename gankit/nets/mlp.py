"""Fully connected nets for vector data (toy mixtures, point sets) and small flattened images."""
from __future__ import annotations

import math

import torch
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.nets.common import (
    DISCRIMINATORS,
    GENERATORS,
    Discriminator,
    Generator,
    check_depth,
    check_norm,
    flat_item_shape,
    has_bias,
    norm1d,
)

MLP_NORMS = ("batch", "none", "layer")


class StandardizedSpace(nn.Module):
    """The fixed affine map between data space and the nets' standardised space.

    ``shift`` (one value per feature, tiled over the members of a PacGAN pack) and ``scale``
    come from :func:`gankit.data.standardization`; empty ``shift`` means the identity. The
    buffers are not saved in checkpoints: they are rebuilt from the run's saved DataInfo.
    """

    def __init__(self, shift: list[float], scale: float, dim: int):
        super().__init__()
        self.identity = not len(shift)
        tiled = torch.tensor(list(shift), dtype=torch.float32).repeat(dim // max(1, len(shift)))
        self.register_buffer("shift", tiled, persistent=False)
        self.scale = float(scale)

    def to_data(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.identity else u * self.scale + self.shift

    def from_data(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.identity else (x - self.shift) / self.scale


class MLPGenerator(Generator):
    """``depth`` hidden layers of ``width`` ReLU units; images come out through tanh."""

    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, ...], width: int,
                 depth: int, norm: str, image: bool, shift: list[float] = (), scale: float = 1.0):
        super().__init__(z_dim, c_dim, out_shape)
        self.image = image
        layers: list[nn.Module] = []
        dim = self.in_dim
        for _ in range(depth):
            layers += [nn.Linear(dim, width, bias=has_bias(norm)), norm1d(norm, width), nn.ReLU()]
            dim = width
        layers.append(nn.Linear(dim, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)
        self.standardized = StandardizedSpace(shift, scale, math.prod(out_shape))

    net_name = "mlp"

    def latent_weight(self) -> tuple[str, torch.Tensor]:
        """The first dense layer, z's columns."""
        return "z", self.net[0].weight[:, : self.z_dim]

    def synthesize(self, zc: torch.Tensor) -> torch.Tensor:
        out = self.net(zc)
        if not self.image:
            return self.standardized.to_data(out)
        return torch.tanh(out).reshape(-1, *self.out_shape)


class MLPDiscriminator(Discriminator):
    """Flattened input (and ``c`` for 'concat') -> ``depth`` LeakyReLU(0.2) layers."""

    def __init__(self, in_shape: tuple[int, ...], c_dim: int, cond_mode: str, width: int,
                 depth: int, norm: str, shift: list[float] = (), scale: float = 1.0):
        super().__init__(c_dim, cond_mode)
        self.standardized = StandardizedSpace(shift, scale, math.prod(in_shape))
        self.input_scale = float(scale)  # penalties measure gradients in the standardised space
        self.body = nn.Sequential(*self.hidden_layers(math.prod(in_shape) + self.concat_dim,
                                                      width, depth, norm))
        self.set_head(width)

    @staticmethod
    def hidden_layers(dim: int, width: int, depth: int, norm: str) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for i in range(depth):
            # As in DCGAN, the first layer sees the raw input: normalising it hurts D.
            layer_norm = norm if i > 0 else "none"
            layers += [nn.Linear(dim, width, bias=has_bias(layer_norm)), norm1d(layer_norm, width),
                       nn.LeakyReLU(0.2)]
            dim = width
        return layers

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardized.from_data(x.flatten(1))

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Maxout(nn.Module):
    """A linear map to ``width * pieces`` units and the max over each group of ``pieces``
    (Goodfellow et al. 2013), the discriminator unit of the original GAN and of PacGAN."""

    def __init__(self, dim: int, width: int, pieces: int):
        super().__init__()
        self.width, self.pieces = width, pieces
        self.linear = nn.Linear(dim, width * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.width, self.pieces).amax(dim=2)


MAXOUT_PIECES = 5  # PacGAN's 2-D discriminators: maxout layers of 5 pieces


class MaxoutDiscriminator(MLPDiscriminator):
    """An MLP discriminator whose hidden layers are maxout layers of 5 pieces (no norm)."""

    @staticmethod
    def hidden_layers(dim: int, width: int, depth: int, norm: str) -> list[nn.Module]:
        return [Maxout(dim if i == 0 else width, width, MAXOUT_PIECES) for i in range(depth)]


@GENERATORS.register("mlp")
def mlp_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> MLPGenerator:
    """An MLP generator for vectors, or for images reshaped to (C, H, W) with tanh."""
    shape = flat_item_shape(info, "mlp")
    check_norm(cfg.norm, "G", "mlp", MLP_NORMS)
    check_depth(cfg.depth, "G", "mlp")
    return MLPGenerator(z_dim, c_dim, shape, cfg.width, cfg.depth, cfg.norm, info.is_image,
                        info.shift, info.scale)


@DISCRIMINATORS.register("mlp")
def mlp_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                      cond_mode: str = "projection") -> MLPDiscriminator:
    """An MLP discriminator on flattened items; ``feature_dim`` is ``cfg.width``."""
    shape = flat_item_shape(info, "mlp")
    check_norm(cfg.norm, "D", "mlp", MLP_NORMS)
    check_depth(cfg.depth, "D", "mlp")
    return MLPDiscriminator(shape, c_dim, cond_mode, cfg.width, cfg.depth, cfg.norm, info.shift,
                            info.scale)


@DISCRIMINATORS.register("maxout")
def maxout_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                         cond_mode: str = "projection") -> MaxoutDiscriminator:
    """PacGAN's 2-D discriminator: ``depth`` maxout layers of ``width`` units, 5 pieces each."""
    shape = flat_item_shape(info, "maxout")
    check_norm(cfg.norm, "D", "maxout", ("none",))
    check_depth(cfg.depth, "D", "maxout")
    return MaxoutDiscriminator(shape, c_dim, cond_mode, cfg.width, cfg.depth, "none", info.shift,
                               info.scale)
