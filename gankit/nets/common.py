"""What every generator and discriminator shares: registries, the optional condition ``c``,
normalisation layers and spectral normalisation.

A generator maps ``(z, c)`` to data; a discriminator maps ``(x, c)`` to one raw score per item
and exposes :meth:`Discriminator.features` so a model can put extra heads (an auxiliary
classifier, a contrastive projection) on the same representation.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, Unsupported
from gankit.registry import Registry

# (cfg, info, z_dim, c_dim) -> generator and (cfg, info, c_dim, cond_mode) -> discriminator
GeneratorBuilder = Callable[[NetConfig, DataInfo, int, int], nn.Module]
DiscriminatorBuilder = Callable[[NetConfig, DataInfo, int, str], nn.Module]

GENERATORS: Registry[GeneratorBuilder] = Registry("generator")
DISCRIMINATORS: Registry[DiscriminatorBuilder] = Registry("discriminator")

NORMS = ("batch", "none", "layer", "instance")
COND_MODES = ("concat", "projection")
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                   nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


# ---- configuration checks ----------------------------------------------------------------
def check_norm(norm: str, role: str, net: str, allowed: tuple[str, ...] = NORMS) -> None:
    """Raise ConfigError unless ``norm`` is one of ``allowed`` (``role`` is G or D)."""
    if norm not in allowed:
        raise ConfigError(
            f"{role}.norm='{norm}' is not supported by the {net} nets; use one of {', '.join(allowed)}"
        )


def check_cond_mode(cond_mode: str) -> None:
    if cond_mode not in COND_MODES:
        raise ConfigError(
            f"conditioning mode '{cond_mode}' is unknown; use one of {', '.join(COND_MODES)}"
        )


def check_depth(depth: int, role: str, net: str) -> None:
    if depth < 1:
        raise ConfigError(f"{role}.depth must be at least 1 for {net}, got {depth}")


def flat_item_shape(info: DataInfo, net: str) -> tuple[int, ...]:
    """The item shape of vector or image data; other kinds need nets of their own."""
    if info.kind == "vector" and len(info.shape) == 1:
        return tuple(info.shape)
    if info.is_image and len(info.shape) == 3:
        return tuple(info.shape)
    raise ConfigError(
        f"{net} nets take vectors (D,) or images (C, H, W), but the data is {info.kind} "
        f"of shape {tuple(info.shape)}; pick a net made for {info.kind} data"
    )


def square_image(info: DataInfo, net: str, sizes: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, size)`` of square images whose size ``net`` supports, else ConfigError."""
    if not info.is_image or len(info.shape) != 3:
        raise ConfigError(
            f"{net} needs image data (C, H, W), got {info.kind} data of shape "
            f"{tuple(info.shape)}; use G.name=mlp and D.name=mlp"
        )
    channels, height, width = info.shape
    supported = ", ".join(str(s) for s in sizes)
    if height != width or height not in sizes:
        raise ConfigError(
            f"{net} supports square images of {supported} px, got {height}x{width}; "
            f"set data.image_size to one of them or use G.name=mlp and D.name=mlp"
        )
    return channels, height


# ---- layers ------------------------------------------------------------------------------
def has_bias(norm: str) -> bool:
    """Whether a layer feeding ``norm`` needs a bias: batch and instance norm subtract a
    per-channel mean, which cancels the bias (and leaves it with a zero gradient)."""
    return norm not in ("batch", "instance")


def norm1d(norm: str, features: int) -> nn.Module:
    """Normalisation of [B, features] activations."""
    if norm == "batch":
        return nn.BatchNorm1d(features)
    if norm == "layer":
        return nn.LayerNorm(features)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"norm '{norm}' does not apply to vectors; use batch, layer or none")


def norm2d(norm: str, channels: int) -> nn.Module:
    """Normalisation of [B, C, H, W] activations; 'layer' normalises over (C, H, W)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm '{norm}'; use one of {', '.join(NORMS)}")


def apply_spectral_norm(module: nn.Module, warmup: int = 100) -> nn.Module:
    """Wrap the weight of every Linear, Conv and ConvTranspose layer of ``module`` with
    spectral normalisation (Miyato et al. 2018), in place; already wrapped weights are kept.

    Each forward in train mode then runs one power iteration. ``warmup`` extra iterations
    here make the estimate of sigma accurate from the first step: torch's 15 initial ones can
    leave the normalised weight's norm several percent above 1.
    Returns ``module`` so it chains: ``net = apply_spectral_norm(build(...))``.
    """
    for layer in list(module.modules()):  # a list: wrapping adds submodules while we walk
        if isinstance(layer, WEIGHTED_LAYERS) and not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)
            _power_iterations(layer, warmup)
    return module


@torch.no_grad()
def _power_iterations(layer: nn.Module, n: int) -> None:
    """Advance the singular-vector estimates ``_u``, ``_v`` of a wrapped weight by ``n`` steps,
    exactly as torch's parametrization does (without re-normalising the weight each time)."""
    sn = layer.parametrizations.weight[0]
    matrix = layer.parametrizations.weight.original.movedim(sn.dim, 0).flatten(1)
    u, v = sn._u.clone(), sn._v.clone()
    for _ in range(n):
        u = F.normalize(matrix @ v, dim=0, eps=sn.eps)
        v = F.normalize(matrix.mH @ u, dim=0, eps=sn.eps)
    sn._u.copy_(u)
    sn._v.copy_(v)


# ---- conditioning ------------------------------------------------------------------------
def check_condition(c: torch.Tensor | None, c_dim: int, batch: int, who: str) -> None:
    """A condition is required iff the net was built with ``c_dim > 0``."""
    if c_dim == 0 and c is not None:
        raise ConfigError(
            f"the {who} is unconditional (c_dim=0) but got a condition c; "
            f"drop c or build the net with c_dim > 0 (data.condition)"
        )
    if c_dim > 0 and c is None:
        raise ConfigError(f"the {who} was built with c_dim={c_dim} and needs c of shape [B, {c_dim}]")
    if c is None:
        return
    if tuple(c.shape) != (batch, c_dim):
        raise ValueError(f"the {who} needs c of shape [{batch}, {c_dim}], got {list(c.shape)}")
    if not c.is_floating_point():
        raise ValueError(f"the {who} needs a float c (one-hot labels or embeddings), got {c.dtype}")


def append_condition(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Concatenate ``c`` to vectors [B, D] or, tiled over space, to images [B, C, H, W]."""
    c = c.to(x.dtype)
    if x.dim() == 2:
        return torch.cat([x, c], dim=1)
    tiled = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, tiled], dim=1)


class Generator(nn.Module):
    """Base of the generators: checks ``z`` and ``c``, joins them, runs :meth:`synthesize`."""

    def __init__(self, z_dim: int, c_dim: int, out_shape: tuple[int, ...]):
        super().__init__()
        self.z_dim, self.c_dim, self.out_shape = z_dim, c_dim, tuple(out_shape)

    @property
    def in_dim(self) -> int:
        return self.z_dim + self.c_dim

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` [B, z_dim] and, for a conditional net, ``c`` [B, c_dim] -> samples."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"the generator needs z of shape [B, {self.z_dim}], got {list(z.shape)}")
        check_condition(c, self.c_dim, z.shape[0], "generator")
        z = self.code_latent(z)
        return self.synthesize(z if c is None else append_condition(z, c))

    # InfoGAN (model.info_codes): the last code_dim coordinates of z carry a categorical code
    code_dim: int = 0

    def code_latent(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` with its last ``code_dim`` coordinates replaced by the one-hot of their argmax
        (InfoGAN's categorical code, Chen et al. 2016). The argmax of iid normals is uniform,
        so z ~ N(0, I) draws the code uniformly and every sampler, projector and exporter
        that draws z keeps working unchanged. Identity when ``code_dim`` is 0."""
        if not self.code_dim:
            return z
        tail = z[:, -self.code_dim:]
        onehot = (tail == tail.amax(dim=1, keepdim=True)).to(z.dtype)  # traceable for export
        return torch.cat([z[:, :-self.code_dim], onehot], dim=1)

    def synthesize(self, zc: torch.Tensor) -> torch.Tensor:
        """Map the joined input [B, z_dim + c_dim] to samples."""
        raise NotImplementedError

    # ---- what the net declares to the commands that use it (gankit.use) -------------------
    # A net without a mapping net keeps these defaults: no w space, no style layers, no noise
    # inputs. The commands ask (through gankit.use.generator) and refuse with these messages.
    net_name: str = "generator"
    w_dim: int = 0  # width of w where a mapping net turns z into w
    num_ws: int = 0  # style layers: the entries of per-layer w+ (0: no styles)

    def map_latent(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``w [B, w_dim]`` of ``z`` (and the encoded ``c``), for nets with a mapping net."""
        raise Unsupported(f"the {self.net_name} generator has no mapping net (no w space); "
                          f"it takes z only")

    def synthesize_ws(self, ws: torch.Tensor) -> torch.Tensor:
        """Samples from per-layer styles ``ws [B, num_ws, w_dim]``, for nets with styles."""
        raise Unsupported(f"the {self.net_name} generator has no style layers (no w+ space)")

    def w_average(self) -> torch.Tensor:
        """The running mean of ``w`` that truncation pulls towards."""
        raise Unsupported(f"the {self.net_name} generator has no mapping net, so no w_avg")

    def noise_inputs(self) -> list[torch.Tensor]:
        """The fixed per-layer noise maps of eval mode (none here)."""
        return []

    def set_noise_inputs(self, maps: list[torch.Tensor]) -> None:
        """Replace the eval-mode noise maps (a projection optimises them)."""
        if maps:
            raise Unsupported(f"the {self.net_name} generator has no noise inputs")

    def latent_weight(self) -> tuple[str, torch.Tensor]:
        """``(space, A)``: the first weight the latent meets as a matrix ``[out, latent_dim]``
        (``out`` features are ``A @ latent`` plus terms without the latent); SeFa reads it."""
        raise Unsupported(f"the {self.net_name} generator declares no latent-facing weight")


class Discriminator(nn.Module):
    """Base of the discriminators: ``score = head(phi(x)) [+ <embed(c), phi(x)>]``.

    Subclasses build their body in ``__init__`` (with ``self.concat_dim`` extra input
    features or channels), call :meth:`set_head` with their feature size, and implement
    :meth:`extract` (and :meth:`prepare` when the input needs reshaping first).
    """

    def __init__(self, c_dim: int, cond_mode: str):
        super().__init__()
        check_cond_mode(cond_mode)
        self.c_dim, self.cond_mode = c_dim, cond_mode
        self.concat_dim = c_dim if cond_mode == "concat" else 0
        self.feature_dim = 0

    def set_head(self, feature_dim: int) -> None:
        """Create the score head (and the projection embedding) on ``feature_dim`` features."""
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, 1)
        # Miyato & Koyama 2018: the condition enters as an inner product with phi(x).
        projection = self.c_dim > 0 and self.cond_mode == "projection"
        self.embed = nn.Linear(self.c_dim, feature_dim, bias=False) if projection else None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Raw scores [B] (no sigmoid) of items ``x`` under conditions ``c``."""
        check_condition(c, self.c_dim, x.shape[0], "discriminator")
        h = self.features(x, c)
        score = self.head(h).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(c.to(h.dtype)) * h).sum(dim=1)
        return score

    def features(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The penultimate representation [B, feature_dim]; ``c`` is needed only by
        'concat' conditioning, where it is part of the input."""
        x = self.prepare(x)
        if self.concat_dim:
            check_condition(c, self.c_dim, x.shape[0], "discriminator")
            x = append_condition(x, c)
        return self.extract(x)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
