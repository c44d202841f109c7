"""RealNVP normalising flow, trained by maximum likelihood, adversarially, or by both
(Flow-GAN, Grover et al. 2018).

Images: pixels are dequantised with uniform noise, ``y = (p + u) / 256``, mapped through the
logit transform, then through the multi-scale flow to N(0, I); every Jacobian is counted,
so ``nll_bpd_8bit_dequantised`` is bits/dim the standard way. Vectors go straight into an
MLP-coupling flow and get a density in nats.

``model.objective``: ``mle`` (one phase), ``adversarial`` (the flow is a GAN generator:
``n_critic`` D phases, then G), ``hybrid`` (the G phase adds ``mle_weight`` x bits/dim of
the batch). Because the flow keeps an exact likelihood whichever way it is trained, it
shows that good samples and a good likelihood are different things.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor, nn

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.adversarial import adversarial_loss, adversarial_optimizers, adversarial_schedule
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.models.vae import check_unconditional, evaluating
from gankit.nets import build_discriminator
from gankit.nets.flow_nets import MultiScaleFlow, VectorFlow
from gankit.models import likelihood as lk
from gankit.distributed import world_size

OBJECTIVES = ("mle", "adversarial", "hybrid")


@dataclass
class FlowOptions(ModelOptions):
    kind: str = "flow"
    objective: str = "mle"  # mle | adversarial | hybrid (Flow-GAN)
    mle_weight: float = 1.0  # hybrid: weight of the batch's NLL (bits/dim or nats) in G's loss
    n_scales: int = 2  # images: RealNVP scales
    n_couplings: int = 8  # vectors: MLP affine couplings
    # images: the logit transform's margin. RealNVP used 0.05; on MNIST-5k 1e-6 reached
    # 1.8 bits/dim where 0.05 was at 2.4 after the same 150 CPU-seconds
    alpha: float = 1e-6
    temperature: float = 1.0  # sampling: z ~ N(0, temperature^2 I)

    def unused_sections(self) -> tuple[str, ...]:
        return ("loss", "D") if self.objective == "mle" else ()


def build_flow(cfg: RunConfig, info: DataInfo) -> nn.Module:
    """The multi-scale flow for images, the MLP-coupling flow for vectors; coupling nets
    have ``G.width`` channels (units) and ``G.depth`` residual blocks (hidden layers)."""
    o, g = cfg.model, cfg.G
    if g.name not in ("auto", "realnvp"):
        raise ConfigError(f"G.name='{g.name}' is not a flow; use G.name=auto or realnvp")
    if g.width < 1 or g.depth < 1:
        raise ConfigError(f"G.width and G.depth must be at least 1, got {g.width}, {g.depth}")
    if info.is_image and len(info.shape) == 3:
        return MultiScaleFlow(tuple(info.shape), o.n_scales, g.width, g.depth)
    if info.kind == "vector" and len(info.shape) == 1:
        return VectorFlow(info.shape[0], o.n_couplings, g.width, g.depth)
    raise ConfigError(f"the flow takes images (C, H, W) or vectors (D,), got {info.kind} data "
                      f"of shape {tuple(info.shape)}")


@register_model
class Flow(lk.HeldOutLikelihood, GenerativeModel):
    kind = "flow"
    Options = FlowOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o = cfg.model
        check_unconditional(cfg, self.kind)
        if o.objective not in OBJECTIVES:
            raise ConfigError(f"model.objective must be one of {', '.join(OBJECTIVES)}; "
                              f"got '{o.objective}'")
        if o.temperature <= 0 or o.mle_weight < 0:
            raise ConfigError("model.temperature must be > 0 and model.mle_weight >= 0")
        if info.is_image and cfg.data.binarize:
            raise ConfigError("the flow models 8-bit pixels; drop data.binarize")
        self.image = info.is_image
        self.dims = math.prod(info.shape)
        self.alpha = o.alpha
        lk.logit_transform(torch.zeros(1, 1), o.alpha)  # validates alpha now, not mid-run
        self.flow = build_flow(cfg, info)
        self.adversarial = o.objective != "mle"
        if self.adversarial:
            self.D = build_discriminator(cfg.D, info)
            self.loss = adversarial_loss(cfg.loss)

    @property
    def unit(self) -> str:
        """bpd (images) or nats (vectors): the unit of :meth:`nll` and the logged NLL."""
        return "bpd" if self.image else "nats"

    @property
    def variant(self) -> str:
        """The data variant the NLL is measured on (see ``likelihood.VARIANTS``)."""
        return "8bit_dequantised" if self.image else "continuous"

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self.adversarial:
            return adversarial_optimizers(self, self.flow, self.D, g_name="flow")
        return {"flow": self.make_optimizer(self.flow.parameters(), self.cfg.optim.lr_g)}

    def schedule(self) -> list[Phase]:
        if not self.adversarial:
            return [Phase("flow")]
        hybrid = self.cfg.model.objective == "hybrid"
        return adversarial_schedule(self.cfg.train, g_needs_batch=hybrid or self.loss.g_sees_real)

    def ema_targets(self) -> dict[str, nn.Module]:
        return {"flow": self.flow}

    # ---- data space <-> flow space -------------------------------------------------------
    def _uniform(self, like: Tensor) -> Tensor:
        # Phi of normal noise is uniform; drawing it through randn keeps ranks in step. The
        # clamp keeps y strictly inside (0, 1), where the logit is finite even for alpha = 0.
        u = torch.special.ndtr(self.randn(like.shape[0], *like.shape[1:]))
        return u.clamp(2.0 ** -20, 1.0 - 2.0 ** -20)

    def nll(self, x: Tensor, noise: Tensor | None, flow: nn.Module | None = None) -> Tensor:
        """NLL per item in this model's unit: bits/dim of the dequantised 8-bit images
        (``noise`` uniform in [0, 1), data-shaped) or nats for vectors."""
        flow = flow if flow is not None else self.flow
        if not self.image:
            z, log_det = flow(x.float())
            return -(lk.standard_normal_log_prob(z).sum(1) + log_det)
        y = lk.dequantize(lk.to_pixels(x), noise)
        h, logit_det = lk.logit_transform(y, self.alpha)
        z, log_det = flow(h)
        log_pz = lk.standard_normal_log_prob(z).sum(1)
        return lk.dequantized_bits_per_dim(log_pz, log_det + logit_det, self.dims)

    def to_data(self, h: Tensor) -> Tensor:
        """Flow-space samples -> data space ([-1, 1] images through the inverse logit)."""
        return 2.0 * lk.inverse_logit_transform(h, self.alpha) - 1.0 if self.image else h

    def dequantized(self, x: Tensor) -> Tensor:
        """What D sees of real images: dequantised like the flow's data, on the [-1, 1] scale
        (otherwise D could tell real from fake by the 256 levels alone)."""
        if not self.image:
            return x
        return 2.0 * lk.dequantize(lk.to_pixels(x), self._uniform(x)) - 1.0

    # ---- phases --------------------------------------------------------------------------
    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        if phase == "flow":
            return self._mle_step(batch["x"])
        return self._d_step(batch["x"]) if phase == "D" else self._g_step(batch)

    def _mle_step(self, x: Tensor) -> dict[str, Tensor]:
        with self.autocast():
            loss = self.nll(x, self._uniform(x) if self.image else None).float().mean()
        self.optimize("flow", loss, self.flow)
        return {"loss/flow": loss.detach(), lk.metric_name("", self.unit, self.variant): loss.detach()}

    def _fake(self, n: int) -> Tensor:
        z = self.randn(n, self.dims)
        return self.to_data(self.flow.inverse(z).view(n, *self.info.shape))

    def _d_step(self, x: Tensor) -> dict[str, Tensor]:
        self.train_only(self.D, self.flow)
        real = self.dequantized(x)
        with torch.no_grad(), self.autocast():
            fake = self._fake(x.shape[0])
        with self.autocast():
            real_out, fake_out = self.D(real), self.D(fake)
            loss = self.loss.d_loss(real_out.float(), fake_out.float())
        logs = {"loss/D": loss.detach()}
        loss = self.loss.penalise(loss, logs, self.D, real, fake, eps=lambda: self.rand(real.shape[0]))
        self.optimize("D", loss, self.D)
        self.loss.clip_(self.D)
        return logs

    def _g_step(self, batch: Batch | None) -> dict[str, Tensor]:
        self.train_only(self.flow, self.D)
        with self.autocast():
            fake = self._fake(self.cfg.data.batch_size // world_size())
            real_out = self.loss.real_scores(lambda: self.D(self.dequantized(batch["x"])))
            loss = adv = self.loss.g_loss(self.D(fake).float(), real_out)
        logs = {"loss/G": adv.detach()}
        if self.cfg.model.objective == "hybrid":
            x = batch["x"]
            with self.autocast():
                nll = self.nll(x, self._uniform(x) if self.image else None).float().mean()
            loss = adv + self.cfg.model.mle_weight * nll
            logs[lk.metric_name("", self.unit, self.variant)] = nll.detach()
        self.optimize("flow", loss, self.flow)
        return logs

    # ---- likelihood of held-out data -----------------------------------------------------
    @torch.no_grad()
    def measure_likelihood(self, batches: Iterable[Tensor], seed: int = 0,
                           use_ema: bool = True) -> list[lk.Measured]:
        """NLL of held-out ``batches`` (data in [-1, 1]): ``nll_bpd_8bit_dequantised`` for
        images (one uniform dequantisation per item, drawn from ``seed``), ``nll_nats_continuous``
        for vectors; one ``(values, protocol)`` group."""
        flow = self.net("flow", use_ema)
        g = torch.Generator().manual_seed(seed)
        values = []
        for x in batches:
            x = x.to(self.device)
            noise = torch.rand(x.shape, generator=g).to(x.device) if self.image else None
            with evaluating(flow):
                values.append(self.nll(x, noise, flow))
        key = lk.metric_name("", self.unit, self.variant)
        # the key names the metric, so each likelihood keeps its own protocol in metrics.jsonl
        protocol = {"metric": key, "unit": lk.UNITS[self.unit], "data": lk.VARIANTS[self.variant],
                    "n": sum(len(v) for v in values), "estimator": "exact", "alpha": self.alpha}
        return [({key: float(torch.cat(values).mean())}, protocol)]

    # ---- sampling ------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: Tensor | None = None) -> dict[str, Tensor]:
        z = torch.randn(n, self.dims, generator=generator) * self.cfg.model.temperature
        return {"z": z.to(self.device)}

    @torch.no_grad()
    def decode(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        flow = self.net("flow", use_ema)
        with evaluating(flow):
            h = flow.inverse(inputs["z"].float())
        return self.to_data(h.view(-1, *self.info.shape))
