"""Encoder and decoder of a variational autoencoder: convolutional for images, MLP for vectors.

The encoder maps ``x`` (and an optional condition ``c``) to the mean and log-variance of
q(z | x); the decoder maps ``z`` (and ``c``) to the *parameters* of p(x | z), ``params``
numbers per image channel or vector coordinate (1 Bernoulli logit, 3K numbers for a mixture
of K discretised logistics, ...). What those numbers mean is the likelihood's business.

``NetConfig`` G configures both: ``width`` base channels (hidden units for vectors), ``depth``
3x3 convolutions per resolution (hidden layers for vectors), ``norm``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets.common import (
    append_condition,
    check_condition,
    check_depth,
    check_norm,
    has_bias,
    norm1d,
    norm2d,
)
from gankit.nets.dcgan import START_SIDE, channel_plan

VAE_NORMS = ("none", "batch", "layer")


def _conv_stack(channels: int, depth: int, norm: str) -> list[nn.Module]:
    """``depth - 1`` shape-keeping 3x3 convolutions (the first layer of a resolution is the
    strided one)."""
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1, bias=has_bias(norm)),
                   norm2d(norm, channels), nn.SiLU()]
    return layers


class VAEEncoder(nn.Module):
    """``(x, c) -> (mean, logvar)`` of the diagonal Gaussian q(z | x, c)."""

    def __init__(self, body: nn.Module, feature_dim: int, z_dim: int, c_dim: int, flat: bool = False):
        super().__init__()
        self.body, self.z_dim, self.c_dim = body, z_dim, c_dim
        self.flat = flat  # an MLP body: c joins the flattened item, not tiled image planes
        self.head = nn.Linear(feature_dim, 2 * z_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_condition(c, self.c_dim, x.shape[0], "encoder")
        h = x.flatten(1) if self.flat else x
        h = h if c is None else append_condition(h, c)
        mean, logvar = self.head(self.body(h).flatten(1)).chunk(2, dim=1)
        return mean, logvar


class VAEDecoder(nn.Module):
    """``(z, c) -> params [B, out_channels, H, W]`` (images) or ``[B, out_dim]`` (vectors)."""

    def __init__(self, body: nn.Module, z_dim: int, c_dim: int):
        super().__init__()
        self.body, self.z_dim, self.c_dim = body, z_dim, c_dim

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"the decoder needs z of shape [B, {self.z_dim}], got {list(z.shape)}")
        check_condition(c, self.c_dim, z.shape[0], "decoder")
        return self.body(z if c is None else append_condition(z, c))


class _Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.view(-1, *self.shape)


def conv_encoder(shape: tuple[int, int, int], z_dim: int, c_dim: int, width: int, depth: int,
                 norm: str) -> VAEEncoder:
    """Stride-2 4x4 convolutions from the image down to the DCGAN start side, then linear."""
    start, channels = channel_plan(shape[1], width)
    channels = channels[::-1]
    layers: list[nn.Module] = [nn.Conv2d(shape[0] + c_dim, channels[0], 4, 2, 1), nn.SiLU()]
    layers += _conv_stack(channels[0], depth, norm)
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=has_bias(norm)), norm2d(norm, c_out), nn.SiLU()]
        layers += _conv_stack(c_out, depth, norm)
    return VAEEncoder(nn.Sequential(*layers), channels[-1] * start * start, z_dim, c_dim)


def conv_decoder(shape: tuple[int, int, int], z_dim: int, c_dim: int, params: int, width: int,
                 depth: int, norm: str) -> VAEDecoder:
    """Linear to the start side, stride-2 transposed convolutions up, ``params`` outputs per
    image channel (no output activation: the likelihood interprets them)."""
    start, channels = channel_plan(shape[1], width)
    layers: list[nn.Module] = [nn.Linear(z_dim + c_dim, channels[0] * start * start), nn.SiLU(),
                               _Unflatten((channels[0], start, start))]
    layers += _conv_stack(channels[0], depth, norm)
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=has_bias(norm)),
                   norm2d(norm, c_out), nn.SiLU()]
        layers += _conv_stack(c_out, depth, norm)
    layers.append(nn.ConvTranspose2d(channels[-1], shape[0] * params, 4, 2, 1))
    return VAEDecoder(nn.Sequential(*layers), z_dim, c_dim)


def _mlp(d_in: int, d_out: int, width: int, depth: int, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(d_in, width, bias=has_bias(norm)), norm1d(norm, width), nn.SiLU()]
        d_in = width
    layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


def mlp_encoder(dim: int, z_dim: int, c_dim: int, width: int, depth: int, norm: str) -> VAEEncoder:
    """An MLP from flattened items to q(z | x)'s parameters."""
    body = nn.Sequential(nn.Flatten(), _mlp(dim + c_dim, width, width, depth - 1, norm), nn.SiLU())
    return VAEEncoder(body, width, z_dim, c_dim, flat=True)


def mlp_decoder(shape: tuple[int, ...], z_dim: int, c_dim: int, params: int, width: int,
                depth: int, norm: str) -> VAEDecoder:
    """An MLP from z to ``params`` numbers per coordinate, shaped [B, params * D] for
    vectors and [B, C * params, H, W] for images."""
    dim = math.prod(shape)
    body: list[nn.Module] = [_mlp(z_dim + c_dim, dim * params, width, depth, norm)]
    if len(shape) == 3:
        body.append(_Unflatten((shape[0] * params, *shape[1:])))
    return VAEDecoder(nn.Sequential(*body), z_dim, c_dim)


def build_vae_nets(cfg: NetConfig, info: DataInfo, z_dim: int, params: int,
                   c_dim: int = 0) -> tuple[VAEEncoder, VAEDecoder]:
    """Encoder and decoder for ``info``'s data: ``cfg.name`` auto (conv for 28/32/64 px
    images, mlp otherwise) | conv | mlp."""
    name = cfg.name
    if name == "auto":
        name = "conv" if info.is_image and info.shape[1] in START_SIDE else "mlp"
    if name not in ("conv", "mlp"):
        raise ConfigError(f"G.name='{cfg.name}' is not a VAE net; use auto, conv or mlp")
    check_norm(cfg.norm, "G", f"{name} VAE", VAE_NORMS)
    check_depth(cfg.depth, "G", f"{name} VAE")
    if name == "mlp":
        enc = mlp_encoder(math.prod(info.shape), z_dim, c_dim, cfg.width, cfg.depth, cfg.norm)
        return enc, mlp_decoder(tuple(info.shape), z_dim, c_dim, params, cfg.width, cfg.depth, cfg.norm)
    shape = tuple(info.shape)
    if not info.is_image or len(shape) != 3 or shape[1] != shape[2] or shape[1] not in START_SIDE:
        raise ConfigError(f"the conv VAE needs square images of {', '.join(map(str, START_SIDE))} px, "
                          f"got {info.kind} data of shape {shape}; use G.name=mlp")
    enc = conv_encoder(shape, z_dim, c_dim, cfg.width, cfg.depth, cfg.norm)
    return enc, conv_decoder(shape, z_dim, c_dim, params, cfg.width, cfg.depth, cfg.norm)
