"""Variational autoencoder (Kingma & Welling 2014) with honest likelihoods.

q(z | x) is a diagonal Gaussian, p(z) = N(0, I), and p(x | z) is a real probability of the
data: a mixture of discretised logistics over the 256 pixel values of 8-bit images, a
Bernoulli for binarised images (``data.binarize=true``), a Gaussian density for vectors.
Training maximises the ELBO (with optional KL warm-up and free bits); held-out data get
the ELBO and the importance-weighted bound IWAE-k (Burda et al. 2016), the KL and the
number of active latent units, each likelihood in its unit and data variant.

With ``data.condition=label`` or ``text`` it is a conditional VAE (Sohn et al. 2015):
q(z | x, c) and p(x | z, c), each net with its own encoder of c, and held-out likelihoods
are log p(x | c) (the protocol records it, so they are never compared with log p(x)).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
from torch import Tensor, nn

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError
from gankit.models import register_model
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.nets.condition import ConditionSpace, WithCondition, build_condition_encoder
from gankit.nets.vae_nets import build_vae_nets
from gankit.models import likelihood as lk

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: Cov_x(E_q[z_u]) above this makes unit u active
LOG_SCALE_MIN = -7.0  # PixelCNN++: keeps a logistic from collapsing onto one bin's centre


@dataclass
class VAEOptions(ModelOptions):
    kind: str = "vae"
    z_dim: int = 32
    likelihood: str = "auto"  # auto | logistic | bernoulli | gaussian (auto: by data)
    mixtures: int = 1  # components of the discretised logistic mixture
    kl_warmup: int = 0  # steps over which the KL weight rises linearly from 0 to 1 (0 = off)
    free_bits: float = 0.0  # nats per latent dimension (batch mean) the KL is not charged for
    iwae_k: int = 200  # importance samples for the held-out IWAE bound
    sample_mode: str = "mean"  # mean | sample: what a sample shows of p(x | z)
    # Conditioning: used only when data.condition is label or text.
    embed_dim: int = 0  # size of the encoded c: 0 = one-hot labels, 32 for text
    text_encoder: str = "mean"  # text conditions: mean (bag of words) | gru

    def unused_sections(self) -> tuple[str, ...]:
        return ("loss", "D")


# ---- likelihoods p(x | z): decoder outputs -> log-probabilities --------------------------
class Likelihood(nn.Module):
    """Interprets ``params`` decoder outputs per data coordinate. ``unit`` and ``variant``
    name what :meth:`log_prob` measures (see :data:`gankit.models.likelihood.VARIANTS`)."""

    params: int = 1
    unit: str = "nats"
    variant: str = "continuous"

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        """log p(x | z) per item [B] for data ``x`` and decoder output ``out``."""
        raise NotImplementedError

    def mean(self, out: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, out: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """A draw from p(x | z) by inverse CDF from uniforms ``u`` and ``v`` (data-shaped)."""
        raise NotImplementedError


class LogisticMixture(Likelihood):
    """A mixture of ``k`` discretised logistics per pixel: a distribution over 0..255."""

    unit, variant = "bpd", "8bit"

    def __init__(self, k: int):
        super().__init__()
        self.k, self.params = k, 3 * k

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # decoder layout [B, 3K * C, H, W] (parameter-major) -> three [K, B, C, H, W]
        parts = out.float().unflatten(1, (3, self.k, -1)).movedim(2, 0)
        return parts[:, :, 0], parts[:, :, 1], parts[:, :, 2].clamp(min=LOG_SCALE_MIN)

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        w, m, s = self._split(out)
        return lk.discretized_logistic_mixture_log_prob(lk.to_pixels(x), w, m, s).flatten(1).sum(1)

    def mean(self, out: Tensor) -> Tensor:
        w, m, _ = self._split(out)
        return lk.discretized_logistic_mixture_mean(w, m)

    def sample(self, out: Tensor, u: Tensor, v: Tensor) -> Tensor:
        w, m, s = self._split(out)
        cdf = torch.softmax(w, dim=0).cumsum(0)
        pick = (v.unsqueeze(0) > cdf).sum(0, keepdim=True).clamp(max=self.k - 1)
        mean, log_s = m.gather(0, pick)[0], s.gather(0, pick)[0]
        u = u.clamp(1e-5, 1 - 1e-5)
        x = mean + log_s.exp() * (torch.log(u) - torch.log1p(-u))
        return lk.to_pixels(x.clamp(-1, 1)) * (2.0 / 255) - 1.0


class Bernoulli(Likelihood):
    """One Bernoulli per pixel of binarised images (stored as -1 / 1)."""

    unit, variant = "nats", "binarised"

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return lk.bernoulli_log_prob(out.float(), lk.binarised_targets(x)).flatten(1).sum(1)

    def mean(self, out: Tensor) -> Tensor:
        return 2.0 * torch.sigmoid(out) - 1.0

    def sample(self, out: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return torch.where(u < torch.sigmoid(out), 1.0, -1.0)


class Gaussian(Likelihood):
    """N(mean(z), diag(sigma^2)) for vectors, one learned sigma per coordinate."""

    unit, variant = "nats", "continuous"

    def __init__(self, dim: int):
        super().__init__()
        self.log_std = nn.Parameter(torch.zeros(dim))

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return lk.gaussian_log_prob(x.float(), out.float(), self.log_std).sum(1)

    def mean(self, out: Tensor) -> Tensor:
        return out

    def sample(self, out: Tensor, u: Tensor, v: Tensor) -> Tensor:
        return out + self.log_std.exp() * torch.special.ndtri(u.clamp(1e-6, 1 - 1e-6))


def build_likelihood(opts: VAEOptions, cfg: RunConfig, info: DataInfo) -> Likelihood:
    """The likelihood ``model.likelihood`` names, checked against the data."""
    name = opts.likelihood
    if name == "auto":
        name = "gaussian" if not info.is_image else "bernoulli" if cfg.data.binarize else "logistic"
    if name in ("logistic", "bernoulli") and not info.is_image:
        raise ConfigError(f"model.likelihood={name} is for images; use gaussian for vector data")
    if name == "logistic":
        if opts.mixtures < 1:
            raise ConfigError(f"model.mixtures must be at least 1, got {opts.mixtures}")
        return LogisticMixture(opts.mixtures)
    if name == "bernoulli":
        if not cfg.data.binarize:
            raise ConfigError("model.likelihood=bernoulli needs binarised data: set data.binarize=true")
        return Bernoulli()
    if name == "gaussian":
        if info.is_image:
            raise ConfigError("a Gaussian density on pixels is not a probability of the images; "
                              "use model.likelihood=logistic (8-bit) or bernoulli (binarised)")
        return Gaussian(math.prod(info.shape))
    raise ConfigError(f"model.likelihood must be auto, logistic, bernoulli or gaussian; got '{name}'")


# ---- the model ---------------------------------------------------------------------------
def check_unconditional(cfg: RunConfig, kind: str) -> None:
    """These families are unconditional for now; say so instead of ignoring ``c``."""
    if cfg.data.condition != "none":
        raise ConfigError(f"model.kind={kind} is unconditional; set data.condition=none")


@register_model
class VAE(lk.HeldOutLikelihood, GenerativeModel):
    kind = "vae"
    Options = VAEOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        o = cfg.model
        checks = (("z_dim", o.z_dim, 1), ("iwae_k", o.iwae_k, 1), ("kl_warmup", o.kl_warmup, 0))
        for key, value, low in checks:
            if value < low:
                raise ConfigError(f"model.{key} must be at least {low}, got {value}")
        if o.free_bits < 0:
            raise ConfigError(f"model.free_bits must be >= 0, got {o.free_bits}")
        if o.sample_mode not in ("mean", "sample"):
            raise ConfigError(f"model.sample_mode must be mean or sample, got '{o.sample_mode}'")
        self.z_dim = o.z_dim
        self.likelihood = build_likelihood(o, cfg, info)
        self.conditional = cfg.data.condition != "none"
        if self.conditional:
            self.space = ConditionSpace(cfg.data.condition, info, cfg.data.max_len)
            enc_c, dec_c = (build_condition_encoder(cfg.data.condition, info, o.embed_dim, o.text_encoder)
                            for _ in range(2))
            enc, dec = build_vae_nets(cfg.G, info, self.z_dim, self.likelihood.params, enc_c.out_dim)
            self.encoder, self.decoder = WithCondition(enc, enc_c), WithCondition(dec, dec_c)
        else:
            self.encoder, self.decoder = build_vae_nets(cfg.G, info, self.z_dim, self.likelihood.params)
        self.dims = math.prod(info.shape)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.make_optimizer(self._live_parameters(), self.cfg.optim.lr_g)}

    def _live_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.encoder, self.decoder, self.likelihood) for p in m.parameters()]

    def schedule(self) -> list[Phase]:
        return [Phase("vae")]

    def ema_targets(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder, "likelihood": self.likelihood}

    def kl_weight(self, step: int) -> float:
        """The warm-up's KL weight at ``step``: (step + 1) / kl_warmup, at most 1."""
        warmup = self.cfg.model.kl_warmup
        return 1.0 if warmup == 0 else min(1.0, (step + 1) / warmup)

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        x, c = batch["x"], self.batch_conditions(batch)
        with self.autocast():
            mean, logvar = self.encoder(x, c)
            z = mean + torch.exp(0.5 * logvar) * self.randn(x.shape[0], self.z_dim)
            rec = self.likelihood.log_prob(x, self.decoder(z, c))
        kl_dims = lk.gaussian_kl(mean.float(), logvar.float())
        kl_charged = kl_dims.mean(0).clamp(min=self.cfg.model.free_bits).sum()
        beta = self.kl_weight(step)
        loss = -rec.mean() + beta * kl_charged
        self.optimize("vae", loss, self)
        nll = (kl_dims.sum(1) - rec).detach().mean()
        return {"loss/vae": loss.detach(), "vae/recon_nats": -rec.detach().mean(),
                "vae/kl_nats": kl_dims.detach().sum(1).mean(),
                "vae/kl_weight": torch.tensor(beta, device=x.device),
                "vae/active_units": active_units(mean.detach()).float(),
                self._key("elbo"): self._in_unit(nll)}

    def _key(self, estimator: str) -> str:
        return lk.metric_name(estimator, self.likelihood.unit, self.likelihood.variant)

    def _in_unit(self, nll_nats: Tensor) -> Tensor:
        return lk.bits_per_dim(nll_nats, self.dims) if self.likelihood.unit == "bpd" else nll_nats

    # ---- likelihood of held-out data -----------------------------------------------------
    @torch.no_grad()
    def log_weights(self, x: Tensor, k: int, generator: torch.Generator | None = None,
                    use_ema: bool = True, chunk: int = 4096, c: Tensor | None = None) -> Tensor:
        """log p(x, z_i | c) - log q(z_i | x, c) for ``k`` draws z_i ~ q(z | x, c): [k, B].
        ``c`` (raw conditions, one per item) is required by a conditional VAE and refused
        by an unconditional one."""
        self._check_given(c)
        enc, dec, lik = (self.net(n, use_ema) for n in ("encoder", "decoder", "likelihood"))
        with evaluating(enc, dec):
            return self._log_weights(x, k, generator, enc, dec, lik, chunk, c)

    def _check_given(self, c: Tensor | None) -> None:
        if self.conditional and c is None:
            raise ConfigError("this VAE is conditional: its likelihood is log p(x | c); give the "
                              "conditions of the items")
        if not self.conditional and c is not None:
            raise ConfigError("this VAE is unconditional; drop the conditions")

    def _log_weights(self, x: Tensor, k: int, generator: torch.Generator | None, enc: nn.Module,
                     dec: nn.Module, lik: Likelihood, chunk: int, c: Tensor | None) -> Tensor:
        mean, logvar = enc(x, c)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(k, *mean.shape, generator=generator).to(mean.device)
        z = mean + std * eps
        log_q = lk.gaussian_log_prob(z, mean, 0.5 * logvar).sum(-1)
        log_pz = lk.standard_normal_log_prob(z).sum(-1)
        rows = max(1, chunk // x.shape[0])  # importance samples decoded per forward pass
        log_px = torch.cat([lik.log_prob(_tile(x, len(zs)), dec(zs.flatten(0, 1), _tile(c, len(zs))))
                            .view(len(zs), -1) for zs in z.split(rows)])
        return log_px + log_pz - log_q

    @torch.no_grad()
    def measure_likelihood(self, batches: Iterable[Tensor], k: int | None = None, seed: int = 0,
                           use_ema: bool = True,
                           conditions: Iterable[Tensor] | None = None) -> list[lk.Measured]:
        """ELBO and IWAE-k NLL of held-out ``batches`` (data in [-1, 1]), KL and active units.

        A conditional VAE needs ``conditions``, the raw condition batches that go with
        ``batches`` (labels or token ids), and measures -log p(x | c).

        Returns ``(values, protocol)`` groups; each protocol records the unit, data variant,
        estimator, k and item count. Keys: ``nll_elbo_<unit>_<variant>``,
        ``nll_iwae_<unit>_<variant>``, ``vae_kl_nats``, ``vae_active_units``."""
        self._check_given(conditions)
        k = k or self.cfg.model.iwae_k
        g = torch.Generator().manual_seed(seed)
        elbo, iwae, kl, means = [], [], [], []
        paired = zip(batches, conditions) if conditions is not None else ((x, None) for x in batches)
        for x, c in paired:
            x, c = x.to(self.device), None if c is None else c.to(self.device)
            log_w = self.log_weights(x, k, g, use_ema, c=c)
            elbo.append(log_w.mean(0))
            iwae.append(lk.iwae_bound(log_w))
            with evaluating(self.net("encoder", use_ema)):
                mean, logvar = self.net("encoder", use_ema)(x, c)
            kl.append(lk.gaussian_kl(mean, logvar).sum(1))
            means.append(mean)
        groups = []
        protocol = {"unit": lk.UNITS[self.likelihood.unit], "data": lk.VARIANTS[self.likelihood.variant],
                    "n": sum(len(e) for e in elbo), "k": k,
                    "given": f"c ({self.cfg.data.condition})" if self.conditional else "nothing"}
        for name, values in (("elbo", elbo), ("iwae", iwae)):
            nll = self._in_unit(-torch.cat(values).mean())
            # the key names the metric, so each bound keeps its own protocol in metrics.jsonl
            key = self._key(name)
            groups.append(({key: float(nll)}, {"metric": key, **protocol, "estimator": name}))
        groups.append(({"vae_kl_nats": float(torch.cat(kl).mean()),
                        "vae_active_units": int(active_units(torch.cat(means)))}, {"metric": "latents"}))
        return groups

    # ---- sampling ------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: Tensor | None = None) -> dict[str, Tensor]:
        inputs = {"z": torch.randn(n, self.z_dim, generator=generator)}
        if self.conditional:
            inputs["c"] = self.sample_conditions(n, c)
        elif c is not None:
            raise GankitError(f"model kind '{self.kind}' is unconditional here (data.condition=none); "
                              f"drop the condition")
        if self.cfg.model.sample_mode == "sample":  # p(x | z)'s own noise, drawn up front
            inputs["u"] = torch.rand(n, *self.info.shape, generator=generator)
            inputs["v"] = torch.rand(n, *self.info.shape, generator=generator)
        return {k: v.to(self.device) for k, v in inputs.items()}

    @torch.no_grad()
    def decode(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        dec, lik = self.net("decoder", use_ema), self.net("likelihood", use_ema)
        with evaluating(dec):
            out = dec(inputs["z"], inputs.get("c"))
        if "u" in inputs:
            return lik.sample(out, inputs["u"], inputs["v"])
        return lik.mean(out)


def _tile(t: Tensor | None, times: int) -> Tensor | None:
    """``times`` copies of ``t`` stacked along the batch axis (None stays None)."""
    return None if t is None else t.repeat(times, *([1] * (t.dim() - 1)))


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (batch-norm running statistics) inside the block, the old modes after it."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def active_units(means: Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> Tensor:
    """How many latent units have Cov_x(E_q[z_u | x]) > ``threshold`` over these items."""
    if means.shape[0] < 2:
        return torch.zeros((), dtype=torch.long, device=means.device)
    return (means.float().var(0) > threshold).sum()
