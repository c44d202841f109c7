"""What every model of token sequences shares, and the base class of the text GANs.

:class:`SequenceModel` owns the LSTM generator, its MLE loss, sampling and the text output of
``gankit sample``; :class:`gankit.models.mle.MLE` trains it by teacher forcing alone.
:class:`TextGAN` adds a discriminator and the stages every text GAN goes through, decided by
the step alone so that a run resumes exactly:

* steps ``[0, pretrain_steps)``: MLE pretraining of G (its own optimizer, ``pretrain_lr``);
* the next ``d_pretrain_steps``: D alone learns real from generated;
* the rest: the adversarial updates of the subclass (SeqGAN, Gumbel-softmax, dense reward).

D's loss is the objective ``loss.name`` names (:mod:`gankit.objectives`; binary
cross-entropy, ``nonsaturating``, by default). The rewards of the REINFORCE GANs are
``sigmoid(D)``, so D must score real above generated, and its inputs are tokens, so it takes
no input penalty: :data:`TEXT_GAN_LOSSES` are the objectives that fit.

``init_from`` starts G from the weights of an MLE run instead (pretraining once for many GANs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.checkpoint_format import checkpoint_file, load_checkpoint
from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.data.text import Vocab, write_sentences
from gankit.errors import CheckpointError, ConfigError, DataError, GankitError
from gankit.models.adversarial import adversarial_loss, adversarial_optimizers, adversarial_schedule
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.nets.common import apply_spectral_norm
from gankit.nets.sequence import CNNDiscriminator, LSTMGenerator, valid_mask

# D objectives a text GAN can take: D scores real above generated (its rewards are sigmoid(D))
# with no input penalty or weight clipping (its inputs are tokens)
TEXT_GAN_LOSSES = ("nonsaturating", "minimax", "lsgan", "hinge")


@dataclass
class SequenceOptions(ModelOptions):
    emb_dim: int = 32  # G's token embedding (its LSTM has G.width units in G.depth layers)
    temperature: float = 1.0  # sampling temperature of `gankit sample` and the sample files


def check_sequence_data(info: DataInfo, kind: str) -> None:
    if info.kind != "sequence" or len(info.shape) != 1 or not info.vocab:
        raise ConfigError(f"model.kind={kind} trains on token sequences, but data is {info.kind} "
                          f"of shape {tuple(info.shape)}; use data.source=oracle, a .txt file or "
                          "a built-in text")


class SequenceModel(GenerativeModel):
    """An LSTM generator of token sequences, optionally conditioned on the data's labels."""
    no_latent_generator = "is a sequence model (it writes tokens one by one, with no latent to sample, project or edit)"

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_sequence_data(info, cfg.model.kind)
        if cfg.G.name not in ("auto", "lstm"):
            raise ConfigError(f"G.name='{cfg.G.name}' is not a sequence generator; use G.name=lstm")
        if cfg.model.temperature <= 0:
            raise ConfigError(f"model.temperature must be > 0, got {cfg.model.temperature}")
        self.vocab = Vocab(list(info.vocab))
        self.max_len = int(info.shape[0])
        self.c_dim = self._condition_dim(cfg, info)
        self.G = LSTMGenerator(len(self.vocab), self.max_len, cfg.model.emb_dim, cfg.G.width,
                               cfg.G.depth, c_dim=self.c_dim, eos=self.vocab.eos, pad=self.vocab.pad)

    @staticmethod
    def _condition_dim(cfg: RunConfig, info: DataInfo) -> int:
        if cfg.data.condition == "none":
            return 0
        if cfg.data.condition == "label" and info.num_classes > 1:
            return info.num_classes
        raise ConfigError(f"data.condition={cfg.data.condition} needs labelled sentences; give "
                          "several files (data.source=a.txt,b.txt) or set data.condition=none")

    # ---- conditions and noise ------------------------------------------------------------
    def condition(self, batch: Batch) -> Tensor | None:
        """One-hot labels of a batch when the model is conditional, else None."""
        if not self.c_dim:
            return None
        if "y" not in batch:
            raise DataError("a conditional text model needs labelled batches (y)")
        return F.one_hot(batch["y"], self.c_dim).float()

    def uniform(self, n: int, *shape: int) -> Tensor:
        """U[0, 1) noise (inverse-CDF token draws, Gumbel noise), through :meth:`rand`: every
        rank slices one global stream (exact resume and multi-process runs alike). One
        ``torch.rand`` costs about 0.7x the ``ndtr(randn)`` used before, which for the Gumbel
        GAN's [64, 20, 5000] draws was most of its gap to a hand-written loop."""
        return self.rand(n, *shape)

    # ---- MLE -----------------------------------------------------------------------------
    def mle_loss(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        """Mean per-token cross-entropy of teacher forcing (tokens up to the end token)."""
        logits = self.G(x, c=c).float()
        ce = F.cross_entropy(logits.transpose(1, 2), x, reduction="none")
        mask = valid_mask(x, self.vocab.eos).float()
        return (ce * mask).sum() / mask.sum()

    def mle_step(self, batch: Batch, optimizer: str = "G") -> dict[str, Tensor]:
        self.G.requires_grad_(True)
        with self.autocast():
            loss = self.mle_loss(batch["x"], self.condition(batch))
        self.optimize(optimizer, loss, self.G)
        return {"loss/G/mle": loss.detach()}

    # ---- sampling and output -------------------------------------------------------------
    def ema_targets(self) -> dict[str, nn.Module]:
        return {"G": self.G}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: Tensor | None = None) -> dict[str, Tensor]:
        inputs = {"u": torch.rand(n, self.max_len, generator=generator).to(self.device)}
        if self.c_dim:
            if c is None:
                labels = torch.randint(0, self.c_dim, (n,), generator=generator)
                c = F.one_hot(labels, self.c_dim).float()
            inputs["c"] = c.to(self.device)
        return inputs

    @torch.no_grad()
    def decode(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        """Token ids ``[n, L]`` sampled at ``model.temperature`` with the inputs' uniforms."""
        G = self.net("G", use_ema)
        u = inputs["u"]
        return G.sample(u.shape[0], u=u, c=inputs.get("c"), temperature=self.cfg.model.temperature)

    def write_samples(self, samples: Tensor, out: Path) -> str:
        """One sentence per line to ``out`` (a .txt path, or a folder that gets samples.txt)."""
        out = Path(out)
        path = out if out.suffix else out / "samples.txt"
        write_sentences(samples.long(), self.vocab, path)
        return f"{len(samples)} sentences to {path}"

    def parse_condition(self, text: str, n: int) -> Tensor:
        """``--cond`` is a class name (a file's stem) or its index."""
        if not self.c_dim:
            raise GankitError(f"this {self.kind} run is unconditional; drop --cond")
        names = list(self.info.class_names)
        if text in names:
            label = names.index(text)
        elif text.isdigit() and int(text) < self.c_dim:
            label = int(text)
        else:
            raise GankitError(f"--cond '{text}' is not a class of this run; use one of {', '.join(names)}")
        return F.one_hot(torch.full((n,), label), self.c_dim).float()


# ---- what the text GANs share --------------------------------------------------------------
@dataclass
class TextGANOptions(SequenceOptions):
    kind: str = "textgan"
    pretrain_steps: int = 1000  # MLE steps of G before anything adversarial
    pretrain_lr: float = 1e-2  # Adam learning rate of the MLE pretraining
    d_pretrain_steps: int = 0  # then steps of D alone (train.n_critic updates each)
    init_from: str = ""  # an MLE run (folder or .pt) whose G starts this one
    d_emb_dim: int = 64
    d_windows: list[int] = field(default_factory=lambda: [2, 3, 4, 5])  # CNN window sizes
    d_filters: list[int] = field(default_factory=lambda: [64, 64, 64, 64])  # filters per window
    d_dropout: float = 0.25
    d_highway: bool = True



class TextGAN(SequenceModel):
    """MLE pretraining, D pretraining, then adversarial updates (in ``adversarial_g_step``)."""

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        m = cfg.model
        for key in ("pretrain_steps", "d_pretrain_steps"):
            if getattr(m, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(m, key)}")
        if m.pretrain_steps + m.d_pretrain_steps > cfg.train.steps:
            raise ConfigError(f"train.steps={cfg.train.steps} leaves no adversarial steps after "
                              f"{m.pretrain_steps} + {m.d_pretrain_steps} pretraining steps; "
                              "raise train.steps")
        self.loss = self.text_gan_loss(cfg)
        self.D = self.build_discriminator()
        if cfg.D.spectral_norm:
            apply_spectral_norm(self.D)
        self.register_buffer("warm_started", torch.zeros((), dtype=torch.long))

    def text_gan_loss(self, cfg: RunConfig):
        """D's objective (``loss.name``), refused in one line where it does not fit."""
        return adversarial_loss(cfg.loss).require(self.kind, TEXT_GAN_LOSSES,
                                                  "D's verdicts are rewards through sigmoid(D)")

    def build_discriminator(self) -> nn.Module:
        m, D = self.cfg.model, self.cfg.D
        if D.name not in ("auto", "cnn"):
            raise ConfigError(f"D.name='{D.name}' is not supported by model.kind={self.kind}; use D.name=cnn")
        return CNNDiscriminator(len(self.vocab), self.max_len, m.d_emb_dim, m.d_windows,
                                m.d_filters, m.d_dropout, m.d_highway, c_dim=self.c_dim)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G_mle": self.make_optimizer(self.G.parameters(), self.cfg.model.pretrain_lr),
                **adversarial_optimizers(self, self.G, self.D)}

    def schedule(self) -> list[Phase]:
        return adversarial_schedule(self.cfg.train, g_needs_batch=True, g_first=True)

    def stage(self, step: int) -> str:
        """'mle', 'd' (D pretraining) or 'adv' at ``step``."""
        m = self.cfg.model
        if step < m.pretrain_steps:
            return "mle"
        return "d" if step < m.pretrain_steps + m.d_pretrain_steps else "adv"

    def adversarial_index(self, step: int) -> tuple[int, int]:
        """(index of ``step`` among the adversarial steps, how many there are)."""
        first = self.cfg.model.pretrain_steps + self.cfg.model.d_pretrain_steps
        return step - first, self.cfg.train.steps - first

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        self.warm_start()
        stage = self.stage(step)
        if phase == "G":
            if stage == "mle":
                return self.mle_step(batch, "G_mle")
            return self.adversarial_g_step(batch, step) if stage == "adv" else {}
        return self.d_step(batch, step) if stage != "mle" else {}

    # ---- discriminator -------------------------------------------------------------------
    def fake_like(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Generated sequences for the real batch's size and conditions (no gradients)."""
        n, c = batch["x"].shape[0], self.condition(batch)
        return self.G.sample(n, u=self.uniform(n, self.max_len), c=c), c

    def d_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        self.train_only(self.D, self.G)
        fake, c = self.fake_like(batch)
        with self.autocast():
            real_out, fake_out = self.D(batch["x"], c), self.D(fake, c)
            loss = self.loss.d_loss(real_out.float(), fake_out.float())
        self.optimize("D", loss, self.D)
        return {"loss/D": loss.detach(), "D/real": real_out.detach().float().mean(),
                "D/fake": fake_out.detach().float().mean()}

    def adversarial_g_step(self, batch: Batch, step: int) -> dict[str, Tensor]:
        raise NotImplementedError

    # ---- warm start ----------------------------------------------------------------------
    def warm_start(self) -> None:
        """Copy G from ``model.init_from`` once (a buffer records it, so a resume skips it)."""
        source = self.cfg.model.init_from
        if not source or bool(self.warm_started):
            return
        ckpt = load_checkpoint(checkpoint_file(Path(source)))
        if list(ckpt.get("info", {}).get("vocab", [])) != list(self.info.vocab):
            raise CheckpointError(f"model.init_from '{source}' was trained on another vocabulary; "
                                  "pretrain on the same data.source")
        state = {k[2:]: v for k, v in ckpt["model"].items() if k.startswith("G.")}
        try:
            self.G.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"model.init_from '{source}' holds another generator shape "
                                  f"({str(e).splitlines()[0][:100]}); "
                                  "match G.width, G.depth and model.emb_dim") from None
        for name, shadow in self.ema_nets.items():
            shadow.load_state_dict(getattr(self, name).state_dict())
        self.warm_started.fill_(1)
