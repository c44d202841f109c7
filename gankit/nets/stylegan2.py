"""StyleGAN2-style nets (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), sized for small images: ``G.name=stylegan2`` / ``D.name=stylegan2``.

Generator: a mapping MLP turns ``z`` (and the encoded condition ``c``) into a style ``w``;
a learned 4x4 constant is refined by 3x3 convolutions whose weights are *modulated* by an
affine map of ``w`` and *demodulated* (each output channel rescaled to unit expected
variance, which replaces AdaIN), each followed by per-pixel noise with a learned strength.
The image is the sum of the to-RGB outputs of every resolution, up-sampled ("skip" G).
Discriminator: from-RGB, residual blocks that halve the resolution (the skip path scaled by
1/sqrt(2)), minibatch standard deviation, a 3x3 conv and a dense layer at 4x4.

Every weight uses the *equalised learning rate* of Karras et al. 2018: stored as N(0, 1) and
multiplied at run time by ``lr_mul / sqrt(fan_in)`` (the mapping net uses ``lr_mul = 0.01``),
so Adam's per-parameter step sizes treat all layers alike.

Channels at resolution r are ``min(width * size / r, 8 * width, 512)``; ``G.depth`` is the
number of mapping layers. ``w_avg`` (a running mean of ``w``) gives the truncation trick:
``w' = w_avg + psi (w - w_avg)``. In eval mode the noise inputs are fixed buffers, so a seed
always gives the same image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets.common import DISCRIMINATORS, GENERATORS, Discriminator, Generator, check_condition, square_image

SIZES = (8, 16, 32, 64, 128, 256)
LRELU_GAIN = math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU scaled by sqrt(2), which keeps the second moment of N(0, 1) inputs at 1."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def channels_at(res: int, size: int, width: int) -> int:
    return min(width * size // res, 8 * width, 512)


# ---- equalised layers ---------------------------------------------------------------------------
class EqualLinear(nn.Module):
    """A dense layer with equalised learning rate: ``y = x (W * lr_mul / sqrt(in))^T + b * lr_mul``."""

    def __init__(self, c_in: int, c_out: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((c_out,), float(bias_init) / lr_mul)) if bias else None
        self.scale, self.lr_mul = lr_mul / math.sqrt(c_in), lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """A same-size conv with equalised learning rate, optionally halving the resolution after."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale, self.down = 1.0 / math.sqrt(c_in * kernel * kernel), down

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        return F.avg_pool2d(x, 2) if self.down else x


class ModulatedConv2d(nn.Module):
    """A conv whose input channels are scaled per sample by a style ``s = A(w)`` and whose
    output channels are then demodulated: divided by ``sqrt(sum_{i,k} (s_i W_oik)^2)``, the
    standard deviation the output would have for unit-variance i.i.d. inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)  # styles start near 1
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.scale, self.demodulate = 1.0 / math.sqrt(c_in * kernel * kernel), demodulate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # [B, c_in]
        weight = self.weight * self.scale
        # Scaling the input and the output is the same as scaling the weight per sample
        # ("fused" grouped conv), and cheaper for small batches on the CPU.
        out = F.conv2d(x * styles[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            # sum over (i, k) of (s_i W_oik)^2 = styles^2 @ (sum_k W_oik^2)^T
            d = torch.rsqrt(styles.square() @ weight.square().sum((2, 3)).t() + 1e-8)  # [B, c_out]
            out = out * d[:, :, None, None]
        return out


# ---- generator ----------------------------------------------------------------------------------
class MappingNetwork(nn.Module):
    """``z`` (and ``c``), each normalised to unit second moment, -> ``w`` through ``depth``
    dense layers with lr_mul 0.01; keeps ``w_avg``, the running mean of ``w`` in training."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, depth: int, w_avg_beta: float = 0.995):
        super().__init__()
        self.embed = EqualLinear(c_dim, w_dim) if c_dim else None
        dims = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * depth
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=0.01) for a, b in zip(dims, dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: Tensor, c: Tensor | None = None, update_avg: bool = True) -> Tensor:
        """``w``; ``update_avg=False`` leaves ``w_avg`` alone (style mixing's second latent)."""
        h = _normalise(z)
        if self.embed is not None:
            h = torch.cat([h, _normalise(self.embed(c.to(z.dtype)))], dim=1)
        for layer in self.layers:
            h = lrelu(layer(h))
        if self.training and update_avg:
            with torch.no_grad():
                self.w_avg.lerp_(h.detach().float().mean(0), 1.0 - self.w_avg_beta)
        return h


def _normalise(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class NoisyLayer(nn.Module):
    """Modulated conv, per-pixel noise with a learned strength (starting at 0), bias, lrelu."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, res: int, up: bool, seed: int):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim)
        self.up = up
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(c_out))
        # the fixed noise of eval mode (so a seed always gives the same image); ``seed`` is the
        # layer's index, so the two convs of one resolution get maps of their own
        self.register_buffer("noise_const", torch.randn(1, 1, res, res, generator=torch.Generator().manual_seed(seed)))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if self.training:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype)
        return lrelu(x + noise * self.noise_strength + self.bias[:, None, None])


class ToRGB(nn.Module):
    """A modulated 1x1 conv without demodulation (the output is an image, not a feature)."""

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[:, None, None]


class SynthesisNetwork(nn.Module):
    """``ws [B, num_ws, w_dim]`` -> image: const 4x4, one conv at 4x4, two per doubling;
    every resolution adds its to-RGB output to the up-sampled image so far."""

    def __init__(self, channels: int, size: int, width: int, w_dim: int):
        super().__init__()
        res = [4 * 2 ** i for i in range(int(math.log2(size)) - 1)]
        ch = [channels_at(r, size, width) for r in res]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4))
        self.layers = nn.ModuleList([NoisyLayer(ch[0], ch[0], w_dim, 4, up=False, seed=0)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[0], channels, w_dim)])
        for r, c_prev, c in zip(res[1:], ch, ch[1:]):
            self.layers.append(NoisyLayer(c_prev, c, w_dim, r, up=True, seed=len(self.layers)))
            self.layers.append(NoisyLayer(c, c, w_dim, r, up=False, seed=len(self.layers)))
            self.to_rgb.append(ToRGB(c, channels, w_dim))
        self.num_ws = len(self.layers) + 1  # the last to-RGB takes a style of its own

    def forward(self, ws: Tensor) -> Tensor:
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        img = self.to_rgb[0](x, ws[:, 1])
        for k, rgb in enumerate(self.to_rgb[1:]):
            i = 1 + 2 * k  # this resolution's two convs take ws[i], ws[i+1]; to-RGB ws[i+2]
            x = self.layers[i + 1](self.layers[i](x, ws[:, i]), ws[:, i + 1])
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            img = img + rgb(x, ws[:, i + 2])
        return img


class StyleGAN2Generator(Generator):
    """``G(z, c) -> image``; ``mixing_prob`` (style mixing) acts in training only, ``psi``
    (truncation) whenever it is below 1. Eval-mode output is clamped to [-1, 1]."""

    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, int, int], width: int,
                 depth: int, w_dim: int):
        super().__init__(z_dim, c_dim, out_shape)
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, depth)
        self.synthesis = SynthesisNetwork(out_shape[0], out_shape[1], width, w_dim)
        self.num_ws, self.w_dim = self.synthesis.num_ws, w_dim
        self.mixing_prob = 0.0
        self.psi = 1.0

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.synthesize_ws(self.styles(z, c))

    def styles(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """``ws [B, num_ws, w_dim]``: one ``w`` per layer, mixed and truncated as set."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"the generator needs z of shape [B, {self.z_dim}], got {list(z.shape)}")
        check_condition(c, self.c_dim, z.shape[0], "generator")
        w = self.mapping(self.code_latent(z), c)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0:
            ws = self._mix(ws, c)
        if self.psi != 1.0:
            avg = self.mapping.w_avg.to(ws.dtype)
            ws = avg + self.psi * (ws - avg)
        return ws

    def _mix(self, ws: Tensor, c: Tensor | None) -> Tensor:
        """Style mixing as StyleGAN2 does it: with probability ``mixing_prob`` for the whole
        batch, the layers from one random cutoff on take the style of a second latent, whose
        ``w`` does not move ``w_avg`` (the truncation centre is the mean of ordinary styles)."""
        dev = ws.device
        cutoff = torch.randint(1, self.num_ws, (), device=dev)
        cutoff = torch.where(torch.rand((), device=dev) < self.mixing_prob, cutoff,
                             torch.full_like(cutoff, self.num_ws))
        z2 = torch.randn(ws.shape[0], self.z_dim, device=dev, dtype=ws.dtype)
        w2 = self.mapping(self.code_latent(z2), c, update_avg=False)
        later = (torch.arange(self.num_ws, device=dev) >= cutoff)[None, :, None]
        return torch.where(later, w2[:, None, :], ws)

    def synthesize_ws(self, ws: Tensor) -> Tensor:
        img = self.synthesis(ws)
        return img if self.training else img.clamp(-1, 1)

    # ---- declared to the commands that use the generator (see Generator in nets/common.py) ----
    net_name = "stylegan2"

    def map_latent(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """``w [B, w_dim]`` of ``z`` (and the encoded ``c``), neither mixed nor truncated."""
        check_condition(c, self.c_dim, z.shape[0], "generator")
        return self.mapping(self.code_latent(z), c)

    def w_average(self) -> Tensor:
        return self.mapping.w_avg

    def noise_inputs(self) -> list[Tensor]:
        """Each layer's eval-mode noise map ``[1, 1, r, r]`` (or ``[B, 1, r, r]`` once set)."""
        return [layer.noise_const for layer in self.synthesis.layers]

    def set_noise_inputs(self, maps: list[Tensor]) -> None:
        for layer, m in zip(self.synthesis.layers, maps, strict=True):
            layer.noise_const = m

    def latent_weight(self) -> tuple[str, Tensor]:
        """SeFa in w: every style affine (each modulated conv's and to-RGB's) stacked,
        ``[sum of their input channels, w_dim]``, with the equalised-rate scale applied."""
        affines = [m.affine for m in self.synthesis.modules() if isinstance(m, ModulatedConv2d)]
        return "w", torch.cat([a.weight * a.scale for a in affines])


# ---- discriminator ------------------------------------------------------------------------------
class ResidualDown(nn.Module):
    """Two 3x3 convs (the second halving the resolution) plus a 1x1 down-sampled skip,
    summed and scaled by 1/sqrt(2) to keep the variance."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3)
        self.conv1 = EqualConv2d(c_in, c_out, 3, down=True)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + lrelu(self.conv1(lrelu(self.conv0(x))))) / math.sqrt(2.0)


def minibatch_stddev(x: Tensor, group: int = 4) -> Tensor:
    """Append one channel: the standard deviation of each feature over a group of samples,
    averaged over features and pixels (Karras et al. 2018), so D can see a lack of variety."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, n // g, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # [n/g, c, h, w]
    y = y.mean(dim=(1, 2, 3)).reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class StyleGAN2Discriminator(Discriminator):
    def __init__(self, in_shape: tuple[int, int, int], c_dim: int, cond_mode: str, width: int):
        super().__init__(c_dim, cond_mode)
        channels, size = in_shape[0], in_shape[1]
        res = [size // 2 ** i for i in range(int(math.log2(size)) - 1)]  # size ... 4
        ch = [channels_at(r, size, width) for r in res]
        self.from_rgb = EqualConv2d(channels + self.concat_dim, ch[0], 1)
        self.blocks = nn.Sequential(*[ResidualDown(a, b) for a, b in zip(ch, ch[1:])])
        self.conv = EqualConv2d(ch[-1] + 1, ch[-1], 3)
        self.fc = EqualLinear(ch[-1] * 16, ch[-1])
        self.set_head(ch[-1])
        self.head = EqualLinear(ch[-1], 1)
        if self.embed is not None:
            self.embed = EqualLinear(c_dim, ch[-1], bias=False)

    def extract(self, x: Tensor) -> Tensor:
        h = self.blocks(lrelu(self.from_rgb(x)))
        h = lrelu(self.conv(minibatch_stddev(h)))
        return lrelu(self.fc(h.flatten(1)))


def _check(cfg: NetConfig, role: str) -> None:
    """Demodulation and equalised rates take the place of norms and spectral norm."""
    if cfg.spectral_norm:
        raise ConfigError(f"{role}.spectral_norm does not apply to stylegan2 nets (they use "
                          f"equalised learning rates); set {role}.spectral_norm=false")
    if role == "G" and cfg.depth < 1:
        raise ConfigError(f"G.depth (mapping layers) must be at least 1 for stylegan2, got {cfg.depth}")


@GENERATORS.register("stylegan2")
def stylegan2_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> StyleGAN2Generator:
    """A StyleGAN2-style skip generator for square images of 8-256 px; ``G.depth`` mapping
    layers, ``w`` of ``min(8 * width, 512)`` dimensions."""
    channels, size = square_image(info, "stylegan2", SIZES)
    _check(cfg, "G")
    return StyleGAN2Generator(z_dim, c_dim, (channels, size, size), cfg.width, cfg.depth,
                              min(8 * cfg.width, 512))


@DISCRIMINATORS.register("stylegan2")
def stylegan2_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                            cond_mode: str = "projection") -> StyleGAN2Discriminator:
    """A StyleGAN2-style residual discriminator with minibatch standard deviation."""
    channels, size = square_image(info, "stylegan2", SIZES)
    _check(cfg, "D")
    return StyleGAN2Discriminator((channels, size, size), c_dim, cond_mode, cfg.width)


# ---- helpers for models and the CLI -------------------------------------------------------------
def find_generator(module: nn.Module) -> StyleGAN2Generator | None:
    """The StyleGAN2 generator inside ``module`` (a bare net or a conditioned wrapper)."""
    for m in module.modules():
        if isinstance(m, StyleGAN2Generator):
            return m
    return None


def set_truncation(module: nn.Module, psi: float) -> int:
    """Set the truncation ``psi`` of every StyleGAN2 generator in ``module`` (live and EMA);
    ConfigError when there is none. Returns how many were set."""
    if not 0.0 <= psi <= 1.0:
        raise ConfigError(f"--truncation must be between 0 and 1, got {psi}")
    gens = [m for m in module.modules() if isinstance(m, StyleGAN2Generator)]
    if not gens:
        raise ConfigError("--truncation needs a stylegan2 generator (G.name=stylegan2); "
                          "this run has none")
    for g in gens:
        g.psi = psi
    return len(gens)


def path_length_penalty(G: nn.Module, z: Tensor, c: Tensor | None, pl_mean: Tensor,
                        decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """StyleGAN2's path-length regulariser: ``(||J_w^T y|| - a)^2`` with ``y`` image-shaped
    noise scaled by 1/sqrt(pixels) and ``a`` the running mean of the lengths (updated in place
    in ``pl_mean``). ``G`` may be a conditioned wrapper; ``c`` is then its raw condition."""
    net = find_generator(G)
    if net is None:
        raise ConfigError("model.pl_weight needs G.name=stylegan2")
    encoder = getattr(G, "encoder", None)
    c_enc = encoder(c) if encoder is not None and c is not None else c
    ws = net.styles(z, c_enc)
    img = net.synthesize_ws(ws)
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    with torch.no_grad():
        pl_mean.lerp_(lengths.mean().float(), decay)
    return (lengths - pl_mean).square().mean(), lengths.detach().mean()
