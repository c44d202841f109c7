"""RealNVP (Dinh et al. 2017): affine coupling layers, checkerboard and channel masks, squeeze
and the multi-scale architecture; MLP couplings for vectors.

Every flow maps data ``x`` (and an optional condition ``c``) to a latent of the same
dimension: ``forward(x, c) -> (z [B, D], log|det dz/dx| [B])`` and ``inverse(z, c) -> x``.
The last layer of every coupling network starts at zero, so an untrained flow is the
identity and training starts from the base density.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import ConfigError
from gankit.nets.common import append_condition, check_condition

Pair = tuple[torch.Tensor, torch.Tensor]


# ---- masks -------------------------------------------------------------------------------
def checkerboard_mask(channels: int, height: int, width: int, parity: int) -> torch.Tensor:
    """[1, C, H, W] with 1 where (row + column + parity) is even: the part a coupling keeps."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    board = ((rows + cols + parity) % 2 == 0).float()
    return board.expand(channels, height, width).unsqueeze(0).clone()


def channel_mask(channels: int, height: int, width: int, parity: int) -> torch.Tensor:
    """[1, C, H, W] keeping the first half of the channels (parity 0) or the second half."""
    if channels < 2 or channels % 2:
        raise ConfigError(f"a channel mask needs an even number of channels, got {channels}")
    keep = (torch.arange(channels) < channels // 2) != bool(parity)
    return keep.float().view(1, channels, 1, 1).expand(1, channels, height, width).clone()


def vector_mask(dim: int, parity: int) -> torch.Tensor:
    """[1, D] keeping alternate coordinates (even ones for parity 0, odd ones for parity 1)."""
    if dim < 2:
        raise ConfigError(f"a coupling flow needs at least 2 dimensions, got {dim}")
    return ((torch.arange(dim) + parity) % 2 == 0).float().unsqueeze(0)


# ---- coupling networks -------------------------------------------------------------------
class _ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(),
                                 nn.Conv2d(width, width, 3, 1, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.net(h)


class ConvCouplingNet(nn.Module):
    """(masked x, mask, c) -> (raw log-scale, shift), each [B, C, H, W]: a small ResNet.

    The mask is an input channel: where a kept value is zero, the net still knows the
    position is a kept one."""

    def __init__(self, channels: int, c_dim: int, width: int, blocks: int):
        super().__init__()
        self.c_dim = c_dim
        layers: list[nn.Module] = [nn.Conv2d(channels + 1 + c_dim, width, 3, 1, 1)]
        layers += [_ResBlock(width) for _ in range(blocks)]
        layers += [nn.ReLU(), nn.Conv2d(width, 2 * channels, 3, 1, 1)]
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x_kept: torch.Tensor, mask: torch.Tensor, c: torch.Tensor | None) -> Pair:
        h = torch.cat([x_kept, mask[:, :1].expand(x_kept.shape[0], -1, -1, -1)], dim=1)
        if c is not None:
            h = append_condition(h, c)
        return self.net(h).chunk(2, dim=1)


class MLPCouplingNet(nn.Module):
    """(masked x, mask, c) -> (raw log-scale, shift), each [B, D]."""

    def __init__(self, dim: int, c_dim: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = []
        d_in = dim + c_dim
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.ReLU()]
            d_in = width
        layers.append(nn.Linear(d_in, 2 * dim))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x_kept: torch.Tensor, mask: torch.Tensor, c: torch.Tensor | None) -> Pair:
        h = x_kept if c is None else append_condition(x_kept, c)
        return self.net(h).chunk(2, dim=1)


# ---- layers ------------------------------------------------------------------------------
class AffineCoupling(nn.Module):
    """``y = m*x + (1-m) * (x * exp(s) + t)`` with ``(s, t) = net(m*x)``; the log-determinant
    is the sum of ``s`` over the changed part. ``s = scale * tanh(raw)`` keeps early steps
    from exploding; ``scale`` is learned per channel (coordinate for vectors)."""

    def __init__(self, mask: torch.Tensor, net: nn.Module):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = net
        self.scale = nn.Parameter(torch.ones(mask.shape[1], *([1] * (mask.dim() - 2))))

    def _scale_shift(self, x: torch.Tensor, c: torch.Tensor | None) -> Pair:
        raw, shift = self.net(x * self.mask, self.mask, c)
        free = 1.0 - self.mask
        return self.scale * torch.tanh(raw) * free, shift * free

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Pair:
        s, t = self._scale_shift(x, c)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        # The kept part is unchanged by the coupling, so the net sees the same input again.
        s, t = self._scale_shift(y, c)
        return (y - t) * torch.exp(-s)


class Squeeze(nn.Module):
    """[C, H, W] -> [4C, H/2, W/2] (each 2x2 block into channels); volume-preserving."""

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Pair:
        return nn.functional.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.pixel_shuffle(y, 2)


class _Sequence(nn.Module):
    """Layers applied in order; log-determinants add up."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Pair:
        total = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, log_det = layer(x, c)
            total = total + log_det
        return x, total

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y, c)
        return y


# ---- whole flows -------------------------------------------------------------------------
class VectorFlow(nn.Module):
    """``n_couplings`` MLP affine couplings on alternating coordinates, for [B, D] vectors."""

    def __init__(self, dim: int, n_couplings: int, width: int, depth: int, c_dim: int = 0):
        super().__init__()
        if n_couplings < 2:
            raise ConfigError(f"model.n_couplings must be at least 2 so that every coordinate "
                              f"changes, got {n_couplings}")
        self.dim, self.c_dim = dim, c_dim
        couplings = [AffineCoupling(vector_mask(dim, i % 2), MLPCouplingNet(dim, c_dim, width, depth))
                     for i in range(n_couplings)]
        self.body = _Sequence(couplings)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Pair:
        check_condition(c, self.c_dim, x.shape[0], "flow")
        return self.body(x, c)

    def inverse(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        check_condition(c, self.c_dim, z.shape[0], "flow")
        return self.body.inverse(z, c)


class MultiScaleFlow(nn.Module):
    """RealNVP's multi-scale flow for [C, H, W] images.

    Each scale but the last: 3 checkerboard couplings, squeeze, 3 channel couplings, then
    half of the channels are factored out (they go straight to the latent). The last
    scale (or the first whose side is odd) has 4 checkerboard couplings. The latent is the
    factored-out parts and the final tensor, flattened and concatenated."""

    def __init__(self, shape: tuple[int, int, int], n_scales: int, width: int, blocks: int,
                 c_dim: int = 0):
        super().__init__()
        if n_scales < 1:
            raise ConfigError(f"model.n_scales must be at least 1, got {n_scales}")
        self.shape, self.c_dim = tuple(shape), c_dim
        self.scales = nn.ModuleList()
        self.kept_channels: list[int] = []  # channels that go on to the next scale
        C, H, W = shape
        for scale in range(n_scales):
            last = scale == n_scales - 1 or H % 2 or W % 2
            layers: list[nn.Module] = [self._coupling(checkerboard_mask(C, H, W, i % 2), width, blocks)
                                       for i in range(4 if last else 3)]
            if not last:
                layers.append(Squeeze())
                C, H, W = 4 * C, H // 2, W // 2
                layers += [self._coupling(channel_mask(C, H, W, i % 2), width, blocks)
                           for i in range(3)]
            self.scales.append(_Sequence(layers))
            if last:
                break
            C //= 2
            self.kept_channels.append(C)

    def _coupling(self, mask: torch.Tensor, width: int, blocks: int) -> AffineCoupling:
        return AffineCoupling(mask, ConvCouplingNet(mask.shape[1], self.c_dim, width, blocks))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> Pair:
        check_condition(c, self.c_dim, x.shape[0], "flow")
        parts, total = [], x.new_zeros(x.shape[0])
        for i, scale in enumerate(self.scales):
            x, log_det = scale(x, c)
            total = total + log_det
            if i < len(self.kept_channels):
                keep = self.kept_channels[i]
                parts.append(x[:, keep:].flatten(1))
                x = x[:, :keep]
        parts.append(x.flatten(1))
        return torch.cat(parts, dim=1), total

    def inverse(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        check_condition(c, self.c_dim, z.shape[0], "flow")
        shapes = self._latent_shapes()
        sizes = [math.prod(s) for s in shapes]
        parts = list(torch.split(z, sizes, dim=1))
        x = parts[-1].view(-1, *shapes[-1])
        for i in reversed(range(len(self.scales))):
            if i < len(self.kept_channels):
                x = torch.cat([x, parts[i].view(-1, *shapes[i])], dim=1)
            x = self.scales[i].inverse(x, c)
        return x

    def _latent_shapes(self) -> list[tuple[int, int, int]]:
        """The shape of each factored-out part, then of the final tensor."""
        C, H, W = self.shape
        shapes = []
        for keep in self.kept_channels:
            C, H, W = 4 * C, H // 2, W // 2
            shapes.append((C - keep, H, W))
            C = keep
        shapes.append((C, H, W))
        return shapes
