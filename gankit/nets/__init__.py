"""Generator and discriminator architectures, looked up by ``NetConfig.name``.

Every net takes the optional condition ``c`` (a float vector; labels and text are embedded by
the model): ``G(z, c) -> x`` and ``D(x, c) -> [B]`` raw scores, with ``D.features(x)`` and
``D.feature_dim`` for extra heads. Other nets register builders in :data:`GENERATORS` /
:data:`DISCRIMINATORS` with the same signatures as :func:`build_generator` and
:func:`build_discriminator` (less the name resolution and spectral norm done here).
"""
from __future__ import annotations

from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets.common import (
    COND_MODES,
    DISCRIMINATORS,
    GENERATORS,
    Discriminator,
    Generator,
    apply_spectral_norm,
    check_cond_mode,
)
from gankit.nets import dcgan, mlp, resnet, stylegan2  # noqa: E402,F401  (registration side effects)


def resolve_name(name: str, info: DataInfo) -> str:
    """``auto`` -> mlp for vector data, dcgan for images; other names pass through."""
    if name != "auto":
        return name
    if info.kind == "vector":
        return "mlp"
    if info.is_image:
        return "dcgan"
    raise ConfigError(f"no default net for {info.kind} data; set G.name and D.name explicitly")


def build_generator(cfg: NetConfig, info: DataInfo, z_dim: int, c_dim: int = 0) -> nn.Module:
    """The generator ``cfg`` names for data described by ``info``: ``G(z [B, z_dim],
    c [B, c_dim] | None) -> samples`` (tanh images in [-1, 1], linear vectors)."""
    if z_dim < 1:
        raise ConfigError(f"z_dim must be at least 1, got {z_dim}")
    _check_c_dim(c_dim)
    net = GENERATORS.get(resolve_name(cfg.name, info))(cfg, info, z_dim, c_dim)
    return apply_spectral_norm(net) if cfg.spectral_norm else net


def build_discriminator(cfg: NetConfig, info: DataInfo, c_dim: int = 0,
                        cond_mode: str = "projection") -> nn.Module:
    """The discriminator ``cfg`` names: ``D(x, c | None) -> [B]`` raw scores. ``cond_mode``
    is how ``c`` enters when ``c_dim > 0``: 'concat' (to the input) or 'projection'."""
    _check_c_dim(c_dim)
    check_cond_mode(cond_mode)
    net = DISCRIMINATORS.get(resolve_name(cfg.name, info))(cfg, info, c_dim, cond_mode)
    return apply_spectral_norm(net) if cfg.spectral_norm else net


def _check_c_dim(c_dim: int) -> None:
    if c_dim < 0:
        raise ConfigError(f"c_dim must be >= 0, got {c_dim}")


__all__ = [
    "COND_MODES", "DISCRIMINATORS", "Discriminator", "GENERATORS", "Generator",
    "apply_spectral_norm", "build_discriminator", "build_generator", "resolve_name",
]
