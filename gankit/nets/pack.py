"""PacGAN packing (Lin et al. 2018): the discriminator judges ``pack`` samples at once.

``pack`` consecutive items of a batch are joined into one input, along the channels for
images ([B, C, H, W] -> [B/pack, pack*C, H, W]) and along the features for vectors
([B, D] -> [B/pack, pack*D]). A generator that puts all its mass on few modes gives packs
whose members look alike, which a packed D sees at once and an ordinary D cannot; this is
the paper's fix for mode collapse, at the price of a first layer ``pack`` times wider.

Every member of a pack must be real or every member fake: the model packs the real batch
and the fake batch separately. Input penalties (:mod:`gankit.objectives.penalties`) read
``D.pack`` and take gradient norms over whole packs, the packed D's real inputs.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError


def packed_info(info: DataInfo, pack: int) -> DataInfo:
    """The data description a packed discriminator's inner net is built for."""
    if pack == 1:
        return info
    if info.kind == "vector" and len(info.shape) == 1:
        shape = (info.shape[0] * pack,)
    elif info.is_image and len(info.shape) == 3:
        shape = (info.shape[0] * pack, *info.shape[1:])
    else:
        raise ConfigError(f"model.pack works on vectors and images, not {info.kind} data; "
                          f"set model.pack=1")
    return dataclasses.replace(info, shape=shape)


class PackedDiscriminator(nn.Module):
    """``D(x [B, ...]) -> [B/pack]``: the wrapped net scores groups of ``pack`` items."""

    def __init__(self, inner: nn.Module, pack: int):
        super().__init__()
        if pack < 1:
            raise ConfigError(f"model.pack must be at least 1, got {pack}")
        self.inner = inner
        self.pack = pack

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if c is not None:
            raise ConfigError("a packed discriminator takes no condition; set model.pack=1 "
                              "for a conditional GAN")
        n = x.shape[0]
        if n % self.pack:
            raise DataError(f"a batch of {n} cannot be cut into packs of {self.pack}; "
                            f"make data.batch_size (per process) a multiple of model.pack")
        # [B, C, ...] -> [B/pack, pack, C, ...] -> [B/pack, pack*C, ...]: member j of a pack
        # fills channels j*C .. (j+1)*C - 1.
        return self.inner(x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:]))
