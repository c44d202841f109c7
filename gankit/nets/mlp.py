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


class MLPGenerator(Generator):
    """``depth`` hidden layers of ``width`` ReLU units; images come out through tanh."""

    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, ...], width: int,
                 depth: int, norm: str, image: bool):
        super().__init__(z_dim, c_dim, out_shape)
        self.image = image
        layers: list[nn.Module] = []
        dim = self.in_dim
        for _ in range(depth):
            layers += [nn.Linear(dim, width, bias=has_bias(norm)), norm1d(norm, width), nn.ReLU()]
            dim = width
        layers.append(nn.Linear(dim, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)

    def synthesize(self, zc: torch.Tensor) -> torch.Tensor:
        out = self.net(zc)
        if not self.image:
            return out
        return torch.tanh(out).reshape(-1, *self.out_shape)


class MLPDiscriminator(Discriminator):
    """Flattened input (and ``c`` for 'concat') -> ``depth`` LeakyReLU(0.2) layers."""

    def __init__(self, in_shape: tuple[int, ...], c_dim: int, cond_mode: str, width: int,
                 depth: int, norm: str):
        super().__init__(c_dim, cond_mode)
        layers: list[nn.Module] = []
        dim = math.prod(in_shape) + self.concat_dim
        for i in range(depth):
            # As in DCGAN, the first layer sees the raw input: normalising it hurts D.
            layer_norm = norm if i > 0 else "none"
            layers += [nn.Linear(dim, width, bias=has_bias(layer_norm)), norm1d(layer_norm, width),
                       nn.LeakyReLU(0.2)]
            dim = width
        self.body = nn.Sequential(*layers)
        self.set_head(width)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@GENERATORS.register("mlp")
def mlp_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> MLPGenerator:
    """An MLP generator for vectors, or for images reshaped to (C, H, W) with tanh."""
    shape = flat_item_shape(info, "mlp")
    check_norm(cfg.norm, "G", "mlp", MLP_NORMS)
    check_depth(cfg.depth, "G", "mlp")
    return MLPGenerator(z_dim, c_dim, shape, cfg.width, cfg.depth, cfg.norm, info.is_image)


@DISCRIMINATORS.register("mlp")
def mlp_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                      cond_mode: str = "projection") -> MLPDiscriminator:
    """An MLP discriminator on flattened items; ``feature_dim`` is ``cfg.width``."""
    shape = flat_item_shape(info, "mlp")
    check_norm(cfg.norm, "D", "mlp", MLP_NORMS)
    check_depth(cfg.depth, "D", "mlp")
    return MLPDiscriminator(shape, c_dim, cond_mode, cfg.width, cfg.depth, cfg.norm)
