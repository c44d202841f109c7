"""The GAN of the lecture: z ~ N(0, I) -> G -> x, D scores x, trained in alternation.

Every adversarial objective (minimax, non-saturating, LSGAN, hinge, WGAN, f-GAN...) plugs
in by name; the schedule is ``n_critic`` D phases then one G phase.

With ``data.condition=label`` or ``text`` the same model is a conditional GAN: G(z, c) and
D(x, c), where c is the class or the tag text of each image, encoded by a small learned
encoder per net (:mod:`gankit.nets.condition`). D sees c by projection (Miyato and Koyama
2018), by concatenation, or not at all with an auxiliary classifier on its features (ACGAN,
Odena et al. 2017). Matching-aware training (Reed et al. 2016) also shows D real images with
mismatched conditions as fakes. The G phase then draws a data batch too: its conditions
follow the data's. With ``data.condition=none`` (the default) nothing of this is built.

``model.pack=k`` (PacGAN, Lin et al. 2018) lets an unconditional D judge k samples at once,
which penalises a generator whose samples look alike (:mod:`gankit.nets.pack`).

Small-data and StyleGAN2 extras (each off by default): ``train.augment`` augments every image
D sees (:mod:`gankit.nets.augment`), and R1 is then taken at the un-augmented reals through
the augmentation (as StyleGAN2-ADA does); ``model.reg_every=k`` computes D's penalty every k-th
step with k times the weight (lazy regularisation, Karras et al. 2020), and D's Adam then runs
at ``lr * c`` with betas ``beta ** c``, ``c = k / (k + 1)`` (likewise G's with a lazy path
length), as StyleGAN2 does; with
``G.name=stylegan2``, ``model.style_mixing`` and ``model.pl_weight`` (path-length
regularisation every ``model.pl_every`` steps) act on the generator.

``model.mode_seeking=w`` adds the mode-seeking term of MSGAN (Mao et al. 2019) to G's loss:
the G phase draws its batch as two halves with the same conditions and different latents,
and G is charged ``w / (mean|G(z1, c) - G(z2, c)| / mean|z1 - z2| + 1e-5)``, so two latents
that land on one image (collapse inside a class) cost it. Unconditional GANs pair latents the
same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import register_model
from gankit.models.adversarial import adversarial_loss, adversarial_optimizers, adversarial_schedule
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.nets import apply_spectral_norm, build_discriminator, build_generator
from gankit.nets import stylegan2
from gankit.nets.augment import build_augment
from gankit.nets.condition import (
    ConditionedDiscriminator,
    ConditionedGenerator,
    ConditionSpace,
    build_condition_encoder,
    matching_aware_d_loss,
    mismatched_partners,
)
from gankit.nets.pack import PackedDiscriminator, packed_info
from gankit.distributed import all_reduce_mean, world_size

COND_MODES = ("projection", "concat", "acgan")


@dataclass
class GANOptions(ModelOptions):
    kind: str = "gan"
    z_dim: int = 64
    # Conditioning: used only when data.condition is label or text.
    cond_mode: str = "projection"  # how D sees c: projection | concat | acgan (auxiliary classifier)
    embed_dim: int = 0  # size of the encoded c: 0 = one-hot labels, 32 for text
    text_encoder: str = "mean"  # text conditions: mean (bag of words) | gru (word order counts)
    matching_aware: bool = True  # D also learns (real x, mismatched c) as fake; not with acgan
    mismatch_weight: float = 0.5  # share of D's fake term given to mismatched pairs
    aux_weight: float = 1.0  # acgan: weight of the class losses of D and G
    pack: int = 1  # PacGAN: D judges this many samples at once (unconditional GANs only)
    reg_every: int = 1  # lazy regularisation: D's penalty every k-th step, weighted by k
    style_mixing: float = 0.0  # stylegan2 G: share of samples mixing two latents' styles
    pl_weight: float = 0.0  # stylegan2 G: path-length regularisation weight (2 in StyleGAN2)
    pl_every: int = 4  # path-length regularisation every k-th G step, weighted by k
    mode_seeking: float = 0.0  # MSGAN: weight of G's mode-seeking term (1.0 in the paper)
    # G's first update of a step takes the batch D just judged (its graph kept) instead of
    # generating a new one: one G forward less per step, as PyTorch's DCGAN example does
    reuse_fake: bool = False
    # InfoGAN (Chen et al. 2016), unconditional GANs: the last info_codes coordinates of z
    # become a categorical code, and a head Q on D's features must read it back from G's
    # images; Q (with D) and G are charged info_weight x its cross-entropy. 0 = off.
    info_codes: int = 0
    info_weight: float = 1.0


def mode_seeking_term(fake: torch.Tensor, z: torch.Tensor, logs: dict[str, torch.Tensor]) -> torch.Tensor:
    """MSGAN's term for a batch whose second half repeats the first half's conditions:
    ``1 / (mean|x1 - x2| / mean|z1 - z2| + 1e-5)``, small when different latents give
    different images. Logs the ratio as ``G/mode_seeking``."""
    half = len(fake) // 2
    ratio = ((fake[:half] - fake[half: 2 * half]).abs().mean()
             / (z[:half] - z[half: 2 * half]).abs().mean())
    logs["G/mode_seeking"] = ratio.detach()
    return 1.0 / (ratio + 1e-5)


def lazy_optimizer(opt: torch.optim.Optimizer, every: int) -> None:
    """StyleGAN2's correction for lazy regularisation every ``every`` steps: the net gets
    ``every + 1`` updates' worth of gradient per ``every`` steps, so its learning rate is
    scaled by ``c = every / (every + 1)`` and Adam's betas raised to the power ``c``."""
    ratio = every / (every + 1)
    for group in opt.param_groups:
        group["lr"] *= ratio
        if "betas" in group:
            group["betas"] = tuple(b ** ratio for b in group["betas"])


class _ThroughAugment(torch.nn.Module):
    """``D(augment(x))`` as one net, so that R1 is taken with respect to the un-augmented
    reals through the augmentation (StyleGAN2-ADA), not at the augmented images."""

    def __init__(self, D: torch.nn.Module, augment: torch.nn.Module):
        super().__init__()
        self.D, self.augment = D, augment

    @property
    def pack(self) -> int:
        return int(getattr(self.D, "pack", 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.augment(x)
        return self.D(x) if c is None else self.D(x, c)


def check_condition_options(cfg: RunConfig) -> None:
    """Cross-key checks of the conditioning options."""
    m = cfg.model
    if isinstance(m.pack, bool) or m.pack < 1:
        raise ConfigError(f"model.pack must be a whole number >= 1, got {m.pack!r}")
    if m.pack > 1:
        if cfg.data.condition != "none":
            raise ConfigError("model.pack > 1 (PacGAN) is for unconditional GANs; "
                              "set model.pack=1 or data.condition=none")
        per_rank = cfg.data.batch_size // world_size()
        if per_rank % m.pack:
            raise ConfigError(f"data.batch_size per process ({per_rank}) must be a multiple of "
                              f"model.pack ({m.pack})")
    if m.cond_mode not in COND_MODES:
        raise ConfigError(f"model.cond_mode must be one of {', '.join(COND_MODES)}; got '{m.cond_mode}'")
    if cfg.data.condition == "none":
        if m.cond_mode == "acgan":
            raise ConfigError("model.cond_mode=acgan needs labels; set data.condition=label")
        return
    if not 0.0 <= m.mismatch_weight <= 1.0:
        raise ConfigError(f"model.mismatch_weight must be in [0, 1], got {m.mismatch_weight}")
    if m.aux_weight < 0:
        raise ConfigError(f"model.aux_weight must be >= 0, got {m.aux_weight}")
    if m.cond_mode == "acgan" and m.matching_aware:
        raise ConfigError("an ACGAN discriminator does not see c, so it cannot be matching-aware; "
                          "set model.matching_aware=false with model.cond_mode=acgan")


@register_model
class GAN(GenerativeModel):
    kind = "gan"
    Options = GANOptions

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        if cfg.model.z_dim < 1:
            raise ConfigError(f"model.z_dim must be at least 1, got {cfg.model.z_dim}")
        check_condition_options(cfg)
        self.z_dim = cfg.model.z_dim
        self.conditional = cfg.data.condition != "none"
        self.acgan = self.conditional and cfg.model.cond_mode == "acgan"
        self.matching = self.conditional and cfg.model.matching_aware
        if self.conditional:
            self.G, self.D = self._conditional_nets(cfg, info)
        else:
            self.G = build_generator(cfg.G, info, self.z_dim)
            self.D = build_discriminator(cfg.D, packed_info(info, cfg.model.pack))
            if cfg.model.pack > 1:
                self.D = PackedDiscriminator(self.D, cfg.model.pack)
        self.loss = adversarial_loss(cfg.loss)
        self._setup_extras(cfg)
        self._setup_info_codes(cfg)

    def _conditional_nets(self, cfg: RunConfig, info: DataInfo):
        m = cfg.model
        self.space = ConditionSpace(cfg.data.condition, info, cfg.data.max_len)

        def encoder():
            return build_condition_encoder(cfg.data.condition, info, m.embed_dim, m.text_encoder)

        g_enc = encoder()
        G = ConditionedGenerator(build_generator(cfg.G, info, self.z_dim, g_enc.out_dim), g_enc)
        if self.acgan:
            D = ConditionedDiscriminator(build_discriminator(cfg.D, info), None, self.space.num_classes)
        else:
            d_enc = encoder()
            D = ConditionedDiscriminator(build_discriminator(cfg.D, info, d_enc.out_dim, m.cond_mode), d_enc)
        if cfg.D.spectral_norm:
            apply_spectral_norm(D)  # the auxiliary head too; wrapped layers are kept
        return G, D

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = adversarial_optimizers(self, self.G, self.D)
        m = self.cfg.model
        if m.reg_every > 1 and self.loss.penalty != "none":
            lazy_optimizer(opts["D"], m.reg_every)
        if m.pl_weight > 0 and m.pl_every > 1:
            lazy_optimizer(opts["G"], m.pl_every)
        return opts

    def schedule(self) -> list[Phase]:
        # G reads a batch for its conditions, or for D's outputs on reals (a relativistic loss)
        g_reals = self.loss.g_sees_real
        phases = adversarial_schedule(self.cfg.train, g_needs_batch=self.conditional or g_reals)
        if self.cfg.model.reuse_fake and not g_reals:  # the reused batch brings its conditions along
            phases[1] = Phase("G", needs_batch=False)
        return phases

    @property
    def step_is_atomic(self) -> bool:
        # a kept batch lives between the D and G phases: stop only between steps
        return self.cfg.model.reuse_fake

    def ema_targets(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G}

    def compile_targets(self) -> dict[str, torch.nn.Module]:
        nets = super().compile_targets()
        if self.loss.penalty != "none":  # gradient penalties differentiate twice; compiled graphs cannot
            nets.pop("D", None)
        if self.cfg.model.pl_weight > 0:  # so does the path-length penalty, through G
            nets.pop("G", None)
        return nets

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, torch.Tensor]:
        return self._d_step(batch, step) if phase == "D" else self._g_step(batch, step)

    def _d_step(self, batch: Batch, step: int = 0) -> dict[str, torch.Tensor]:
        real, c = batch["x"], self.batch_conditions(batch)
        self.train_only(self.D, self.G)
        z = self.randn(real.shape[0], self.z_dim)
        if self.cfg.model.reuse_fake:  # generated with its graph, for G's phase to reuse
            self.G.requires_grad_(True)
            with self.autocast():
                raw = self.G(z, c)
            self.__dict__["_kept_fake"] = (raw, z, c, batch.get("y"))
            fake = raw.detach()
        else:
            with torch.no_grad(), self.autocast():
                fake = self.G(z, c)
        raw_real = real
        real, fake = self._augment(real), self._augment(fake)
        with self.autocast():
            loss, logs = self._d_loss(real, fake, c, batch.get("y"), self._code_of(z))
        c_d = None if self.acgan else c
        lazy = self.cfg.model.reg_every
        if step % lazy == 0:  # lazy regularisation: the penalty every k-th step, weighted by k
            D, at = self.D, real
            if self.loss.penalty == "r1" and self.augment is not None:
                D, at = _ThroughAugment(self.D, self.augment), raw_real
            loss = self.loss.penalise(loss, logs, D, at, fake, c_d, scale=lazy,
                                      eps=lambda: self.rand(real.shape[0] // self.cfg.model.pack))
        logs["grad/D"] = self.optimize("D", loss, self.D)
        self.loss.clip_(self.D)
        self._adapt_augment(logs)
        return logs

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor | None,
                y: torch.Tensor | None, code: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's adversarial loss (matching-aware, with ACGAN's class terms, or with InfoGAN's
        code term on the fakes' ``code``) and its logs."""
        logs: dict[str, torch.Tensor] = {}
        if self.acgan:
            real_out, real_logits = self.D.score_and_logits(real)
            fake_out, fake_logits = self.D.score_and_logits(fake)
            aux = F.cross_entropy(real_logits.float(), y) + F.cross_entropy(fake_logits.float(), y)
            loss = self.loss.d_loss(real_out.float(), fake_out.float())
            loss = loss + self.cfg.model.aux_weight * aux
            logs["loss/D/aux"] = aux.detach()
        elif code is not None:
            real_out, (fake_out, q_logits) = self.D(real), self._score_and_code(fake)
            info = F.cross_entropy(q_logits.float(), code)
            loss = self.loss.d_loss(real_out.float(), fake_out.float())
            loss = loss + self.cfg.model.info_weight * info
            logs["loss/D/info"] = info.detach()
        else:
            real_out, fake_out = self.D(real, c), self.D(fake, c)
            if self.matching:
                partners = mismatched_partners(c, torch.rand(len(c), len(c), device=c.device))
                mismatch_out = self.D(real, c[partners])
                loss = matching_aware_d_loss(self.loss.d_loss, real_out.float(), fake_out.float(),
                                             mismatch_out.float(), self.cfg.model.mismatch_weight)
                logs["D/mismatch"] = mismatch_out.detach().float().mean()
            else:
                loss = self.loss.d_loss(real_out.float(), fake_out.float())
        if getattr(self.augment, "adaptive", False):  # ADA's r_t, against the objective's threshold
            threshold = self.loss.objective.decision_threshold
            logs["D/real_sign"] = (real_out.detach().float() - threshold).sign().mean()
        logs["loss/D"] = loss.detach()
        logs["D/real"] = real_out.detach().float().mean()
        logs["D/fake"] = fake_out.detach().float().mean()
        return loss, logs

    def _g_step(self, batch: Batch | None, step: int = 0) -> dict[str, torch.Tensor]:
        self.train_only(self.G, self.D)
        real_out = self._real_scores(batch)
        kept = self.__dict__.pop("_kept_fake", None)  # model.reuse_fake: D's batch, first G phase only
        if kept is not None:
            raw, z, c, y = kept
            batch = None if y is None else {"y": y}
        else:
            raw, z, c, batch = self._new_g_batch(batch)
        n, logs = len(z), {}
        with self.autocast():
            fake = self._augment(raw)
            if self.acgan:
                out, logits = self.D.score_and_logits(fake)
                aux = F.cross_entropy(logits.float(), batch["y"])
                loss = self.loss.g_loss(out.float(), real_out) + self.cfg.model.aux_weight * aux
                logs["loss/G/aux"] = aux.detach()
            elif self.info_codes:
                out, q_logits = self._score_and_code(fake)
                code = self._code_of(z)
                info = F.cross_entropy(q_logits.float(), code)
                loss = self.loss.g_loss(out.float(), real_out) + self.cfg.model.info_weight * info
                logs["loss/G/info"] = info.detach()
                logs["G/info_acc"] = (q_logits.detach().argmax(1) == code).float().mean()
            else:
                loss = self.loss.g_loss(self.D(fake, c).float(), real_out)
        if self.cfg.model.mode_seeking > 0:
            loss = loss + self.cfg.model.mode_seeking * mode_seeking_term(raw.float(), z, logs)
        if self.cfg.model.pl_weight > 0 and step % self.cfg.model.pl_every == 0:
            loss = loss + self._path_length(n, c, logs)
        logs["grad/G"] = self.optimize("G", loss, self.G)
        logs["loss/G"] = loss.detach()
        return logs

    def _real_scores(self, batch: Batch | None) -> torch.Tensor | None:
        """D's outputs on the phase's real batch (with its own conditions), for an objective
        whose G loss reads them; None otherwise."""
        def score() -> torch.Tensor:
            real, c = self._augment(batch["x"]), self.batch_conditions(batch)
            with self.autocast():
                return self.D.score_and_logits(real)[0] if self.acgan else self.D(real, c)

        return self.loss.real_scores(score)

    def _new_g_batch(self, batch: Batch | None):
        """G's own batch for its update: ``(G(z, c), z, c, batch)``, with the conditions of
        ``batch``; under mode seeking its second half repeats the first half's conditions."""
        c = self.batch_conditions(batch)
        n = len(c) if c is not None else self.cfg.data.batch_size // world_size()
        if self.cfg.model.mode_seeking > 0 and c is not None:  # two halves, one set of conditions
            n = 2 * (n // 2)
            c = torch.cat([c[: n // 2]] * 2)
            if batch is not None and "y" in batch:
                batch = {**batch, "y": torch.cat([batch["y"][: n // 2]] * 2)}
        z = self.randn(n, self.z_dim)
        with self.autocast():
            return self.G(z, c), z, c, batch

    # ---- small-data and StyleGAN2 extras (train.augment, lazy R1, path length, mixing) --------
    def _setup_extras(self, cfg: RunConfig) -> None:
        m = cfg.model
        for key, value in (("model.reg_every", m.reg_every), ("model.pl_every", m.pl_every)):
            if isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be a whole number >= 1, got {value!r}")
        if m.mode_seeking < 0:
            raise ConfigError(f"model.mode_seeking must be >= 0 (0 turns it off), got {m.mode_seeking}")
        if m.reuse_fake and (m.mode_seeking > 0 or cfg.train.n_critic != 1):
            raise ConfigError("model.reuse_fake reuses the one batch D judged in a step, so it needs "
                              "train.n_critic=1 and model.mode_seeking=0 (which pairs G's own latents)")
        if m.mode_seeking > 0 and cfg.data.batch_size // world_size() < 2:
            raise ConfigError("model.mode_seeking pairs the samples of a batch; set data.batch_size "
                              "to at least 2 per process")
        if not 0.0 <= m.style_mixing <= 1.0 or m.pl_weight < 0:
            raise ConfigError(f"model.style_mixing must be in [0, 1] and model.pl_weight >= 0, "
                              f"got {m.style_mixing} and {m.pl_weight}")
        net = stylegan2.find_generator(self.G)
        if net is None and (m.style_mixing > 0 or m.pl_weight > 0):
            raise ConfigError("model.style_mixing and model.pl_weight need G.name=stylegan2; "
                              "set them to 0 or use the stylegan2 generator")
        if net is not None:
            net.mixing_prob = m.style_mixing
        if m.pl_weight > 0:
            self.register_buffer("pl_mean", torch.zeros(()))
        if cfg.train.augment != "none" and not self.info.is_image:
            raise ConfigError(f"train.augment transforms images; '{self.info.name}' holds "
                              f"{self.info.kind} data: set train.augment=none")
        self.augment = build_augment(cfg.train.augment, cfg.train.ada_target, cfg.train.ada_kimg)
        if getattr(self.augment, "adaptive", False) and self.loss.objective.decision_threshold is None:
            # r_t counts reals on D's "real" side; a critic (or an f-GAN activation) has no fixed
            # side, so p would drift to 0 or 1 whatever D does
            raise ConfigError(f"train.augment={cfg.train.augment} steers p by the share of reals D "
                              f"calls real, which loss.name={self.loss.name} does not define; use "
                              "nonsaturating, minimax, hinge or lsgan, or train.augment=diffaugment")

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    # ---- InfoGAN's categorical code (model.info_codes) ------------------------------------------
    def _setup_info_codes(self, cfg: RunConfig) -> None:
        m = cfg.model
        self.info_codes = m.info_codes
        if isinstance(m.info_codes, bool) or not 0 <= m.info_codes < self.z_dim or m.info_weight < 0:
            raise ConfigError(f"model.info_codes must be a whole number in [0, model.z_dim) and "
                              f"model.info_weight >= 0; got {m.info_codes!r} and {m.info_weight}")
        if not m.info_codes:
            return
        if m.info_codes == 1:
            raise ConfigError("model.info_codes=1 is a code with one value; use 2 or more, or 0 (off)")
        if self.conditional or m.pack > 1:
            raise ConfigError("model.info_codes (InfoGAN) is for unconditional GANs with one sample "
                              "per D input; set data.condition=none and model.pack=1, or "
                              "model.info_codes=0")
        if not hasattr(self.G, "code_latent") or not getattr(self.D, "feature_dim", 0):
            raise ConfigError(f"model.info_codes needs a generator that reads z and a discriminator "
                              f"with features; G.name={cfg.G.name} / D.name={cfg.D.name} do not")
        self.G.code_dim = m.info_codes
        # Q shares D's body (InfoGAN's choice): its head is part of D, trained by D's optimizer
        self.D.info_head = torch.nn.Linear(self.D.feature_dim, m.info_codes)

    def _code_of(self, z: torch.Tensor) -> torch.Tensor | None:
        """The categorical code each latent carries (argmax of its last coordinates), or None."""
        return z[:, -self.info_codes:].argmax(1) if self.info_codes else None

    def _score_and_code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's score ``[B]`` and Q's code logits ``[B, K]`` from one pass through D's body."""
        h = self.D.features(x)
        return self.D.head(h).squeeze(1), self.D.info_head(h)

    def _adapt_augment(self, logs: dict[str, torch.Tensor]) -> None:
        """ADA: feed this D step's sign of D on reals (over all ranks) to the p controller."""
        if not getattr(self.augment, "adaptive", False):
            return
        n = self.cfg.data.batch_size  # the global batch
        self.augment.observe(all_reduce_mean(logs["D/real_sign"]) * n, n)
        logs["aug/p"] = self.augment.p.detach().clone()

    def _path_length(self, n: int, c: torch.Tensor | None, logs: dict[str, torch.Tensor]) -> torch.Tensor:
        """StyleGAN2's path-length penalty on half a batch, weighted by pl_every (lazy)."""
        m, half = self.cfg.model, max(1, n // 2)
        penalty, length = stylegan2.path_length_penalty(
            self.G, self.randn(half, self.z_dim), None if c is None else c[:half], self.pl_mean)
        logs["loss/G/pl"], logs["G/pl_length"] = penalty.detach(), length
        return penalty * m.pl_weight * m.pl_every

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Latents, and for a conditional GAN the raw conditions: ``c`` (one per sample) or
        the classes in turn (0, 1, ..., K-1, 0, ...)."""
        z = torch.randn(n, self.z_dim, generator=generator)
        inputs = {"z": z.to(self.device)}
        c = self.sample_conditions(n, c)
        if c is not None:
            inputs["c"] = c.to(self.device)
        return inputs

    def latent_generator(self, use_ema: bool = True) -> torch.nn.Module:
        return self.net("G", use_ema)

    @torch.no_grad()
    def decode(self, inputs: dict[str, torch.Tensor], use_ema: bool = True) -> torch.Tensor:
        G = self.net("G", use_ema)
        was_training = G.training
        G.eval()
        try:
            return G(inputs["z"], inputs.get("c"))
        finally:
            G.train(was_training)
