"""Generative latent optimisation (Bojanowski et al. 2018), and gradient origin networks.

GLO gives every training item its own learnable code, kept on the unit ball (or sphere),
and learns the generator by regression: codes and G both minimise a Laplacian-pyramid L1
loss between G(code_i) and item i. No discriminator, no encoder. To sample, a
full-covariance Gaussian is fitted to the learned codes.

``model.latent=gon`` (Bond-Taylor & Willcocks 2021) drops the stored codes: an item's latent
is the negative gradient of the inner reconstruction loss at the origin,
``z = -d/dz0 ||G(z0) - x||^2`` at ``z0 = 0``, and G is trained through that gradient. The
Gaussian to sample from is then a running estimate kept in buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.models import register_model
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.models.vae import check_unconditional, evaluating
from gankit.nets import build_generator
from gankit.distributed import world_size

LATENTS = ("codes", "gon")
CODE_SPACES = ("ball", "sphere")
COV_JITTER = 1e-5  # keeps the fitted covariance positive definite
GON_MOMENTUM = 0.01  # running mean/covariance of GON latents


@dataclass
class GLOOptions(ModelOptions):
    kind: str = "glo"
    z_dim: int = 32
    latent: str = "codes"  # codes (GLO) | gon (gradient origin network)
    code_space: str = "ball"  # ball | sphere: where codes are projected after each step
    code_lr: float = 0.1  # Adam learning rate of the codes (sparse: only the batch's codes move)
    lap_levels: int = 3  # Laplacian pyramid levels of the loss (1 = plain L1); images only
    lap_weights: list[float] = field(default_factory=list)  # one per level; empty = all 1

    def unused_sections(self) -> tuple[str, ...]:
        return ("loss", "D")


# ---- the Laplacian pyramid ---------------------------------------------------------------
def _down(x: Tensor) -> Tensor:
    return F.interpolate(x, size=((x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2), mode="area")


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels`` band-pass images, finest first; the last is the coarsest blurred image.

    Band j is ``g_j - up(g_{j+1})`` with ``g_0 = x`` and ``g_{j+1}`` its half-size version,
    so the pyramid holds exactly the information of ``x`` (see :func:`reconstruct`)."""
    if levels < 1:
        raise ConfigError(f"a Laplacian pyramid needs at least 1 level, got {levels}")
    bands = []
    for _ in range(levels - 1):
        smaller = _down(x)
        bands.append(x - _up(smaller, x))
        x = smaller
    return bands + [x]


def reconstruct(pyramid: list[Tensor]) -> Tensor:
    """The image a :func:`laplacian_pyramid` came from."""
    x = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        x = band + _up(x, band)
    return x


def laplacian_l1(a: Tensor, b: Tensor, levels: int, weights: list[float] | None = None) -> Tensor:
    """Per-item sum over levels of ``weight_j * mean|L_j(a) - L_j(b)|`` [B].

    A mean per level is the GLO paper's sum weighted by 2^(2j): every level counts alike
    although a coarser one has four times fewer pixels."""
    weights = weights or [1.0] * levels
    if len(weights) != levels:
        raise ConfigError(f"model.lap_weights needs one weight per level ({levels}), got {len(weights)}")
    pa, pb = laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)
    return sum(w * (la - lb).abs().flatten(1).mean(1) for w, la, lb in zip(weights, pa, pb))


def project_codes(z: Tensor, space: str) -> Tensor:
    """Onto the unit sphere, or into the unit ball (codes inside it are left alone)."""
    norm = z.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return z / norm if space == "sphere" else z / norm.clamp(min=1.0)


def fit_gaussian(codes: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and Cholesky factor of the full-covariance Gaussian fitted to ``codes`` [N, d]."""
    mean = codes.mean(0)
    cov = torch.cov(codes.T.double()).reshape(codes.shape[1], codes.shape[1])
    cov += COV_JITTER * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    return mean, torch.linalg.cholesky(cov).to(codes.dtype)


@register_model
class GLO(GenerativeModel):
    kind = "glo"
    Options = GLOOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o = cfg.model
        check_unconditional(cfg, self.kind)
        self._check_options(cfg, info)
        self.z_dim, self.image = o.z_dim, info.is_image
        self.G = build_generator(cfg.G, info, self.z_dim)
        if o.latent == "codes":
            # Sparse gradients: an Adam step moves the codes of the batch and no others.
            self.codes = nn.Embedding(info.size, self.z_dim, sparse=True)
            with torch.no_grad():
                start = torch.randn(info.size, self.z_dim)
                self.codes.weight.copy_(project_codes(start, o.code_space))
        else:
            self.register_buffer("latent_mean", torch.zeros(self.z_dim))
            self.register_buffer("latent_cov", torch.eye(self.z_dim))

    @staticmethod
    def _check_options(cfg: RunConfig, info: DataInfo) -> None:
        o = cfg.model
        if o.latent not in LATENTS:
            raise ConfigError(f"model.latent must be one of {', '.join(LATENTS)}; got '{o.latent}'")
        if o.code_space not in CODE_SPACES:
            raise ConfigError(f"model.code_space must be ball or sphere; got '{o.code_space}'")
        if o.z_dim < 1 or o.lap_levels < 1:
            raise ConfigError(f"model.z_dim and model.lap_levels must be at least 1, "
                              f"got {o.z_dim} and {o.lap_levels}")
        if o.latent == "codes" and info.size < 2:
            raise DataError("GLO keeps one code per training item and needs the item count; "
                            "use data that fit in memory (data.resident=yes)")
        if o.latent == "gon" and cfg.G.norm == "batch":
            raise ConfigError("a gradient origin network feeds the same origin z0 = 0 for the whole "
                              "batch, which batch norm cannot normalise; set G.norm=none or layer")
        if o.latent == "codes" and world_size() > 1:
            raise ConfigError("GLO's per-item codes train in one process; run without torchrun "
                              "or use model.latent=gon")
        if cfg.train.amp == "fp16":
            raise ConfigError("GLO's sparse code updates do not support train.amp=fp16; "
                              "use train.amp=bf16 or none")

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"G": self.make_optimizer(self.G.parameters(), self.cfg.optim.lr_g)}
        if self.cfg.model.latent == "codes":
            codes = list(self.codes.parameters())
            opts["codes"] = torch.optim.SparseAdam(codes, lr=self.cfg.model.code_lr)
        return opts

    def schedule(self) -> list[Phase]:
        return [Phase("G")]

    def compile_targets(self) -> dict[str, nn.Module]:
        """``train.compile`` compiles G alone: not the sparse codes, and not at all for a GON,
        whose step differentiates through a gradient (double backward)."""
        return {} if self.cfg.model.latent == "gon" else {"G": self.G}

    def ema_targets(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def reconstruction_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """Laplacian-pyramid L1 per item for images, L1 per item for vectors."""
        if self.image:
            o = self.cfg.model
            return laplacian_l1(fake.float(), real.float(), o.lap_levels, o.lap_weights or None)
        return (fake.float() - real.float()).abs().flatten(1).mean(1)

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        if self.cfg.model.latent == "gon":
            return self._gon_step(batch["x"])
        if "index" not in batch:
            raise DataError("GLO needs each item's index in the batch; use data held in memory "
                            "(data.resident=yes)")
        return self._code_step(batch["x"], batch["index"])

    def _code_step(self, x: Tensor, index: Tensor) -> dict[str, Tensor]:
        self.optimizers["codes"].zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.reconstruction_loss(self.G(self.codes(index)), x).mean()
        # One backward fills the gradients of G and of the batch's codes; G steps inside
        # optimize(), the codes right after, then go back onto the ball or sphere.
        self.optimize("G", loss, self.G)
        self.optimizers["codes"].step()
        with torch.no_grad():
            space = self.cfg.model.code_space
            self.codes.weight[index] = project_codes(self.codes.weight[index], space)
        norms = self.codes.weight[index].detach().norm(dim=1)
        return {"loss/G": loss.detach(), "glo/code_norm": norms.mean()}

    def _gon_step(self, x: Tensor) -> dict[str, Tensor]:
        z0 = torch.zeros(x.shape[0], self.z_dim, device=x.device, requires_grad=True)
        with self.autocast():
            inner = (self.G(z0).float() - x.float()).square().flatten(1).sum(1).sum()
        z = -torch.autograd.grad(inner, z0, create_graph=True)[0]
        z = project_codes(z, self.cfg.model.code_space)
        with self.autocast():
            loss = self.reconstruction_loss(self.G(z), x).mean()
        self.optimize("G", loss, self.G)
        self._track_latents(z.detach())
        return {"loss/G": loss.detach(), "glo/code_norm": z.detach().norm(dim=1).mean()}

    @torch.no_grad()
    def _track_latents(self, z: Tensor) -> None:
        centred = z - z.mean(0)
        cov = centred.T @ centred / max(1, len(z) - 1)
        self.latent_mean.lerp_(z.mean(0), GON_MOMENTUM)
        self.latent_cov.lerp_(cov, GON_MOMENTUM)

    # ---- sampling ------------------------------------------------------------------------
    def latent_gaussian(self) -> tuple[Tensor, Tensor]:
        """Mean and Cholesky factor of the Gaussian that samples are drawn from."""
        if self.cfg.model.latent == "codes":
            return fit_gaussian(self.codes.weight.detach().float())
        eye = torch.eye(self.z_dim, dtype=torch.float64, device=self.latent_cov.device)
        cov = self.latent_cov.double() + COV_JITTER * eye
        return self.latent_mean, torch.linalg.cholesky(cov).float()

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: Tensor | None = None) -> dict[str, Tensor]:
        eps = torch.randn(n, self.z_dim, generator=generator).to(self.device)
        mean, chol = self.latent_gaussian()
        z = mean + eps @ chol.T
        # G only ever saw codes on the ball (sphere): samples go there too.
        return {"z": project_codes(z, self.cfg.model.code_space)}

    @torch.no_grad()
    def decode(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        G = self.net("G", use_ema)
        with evaluating(G):
            return G(inputs["z"])
