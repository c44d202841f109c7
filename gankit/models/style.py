"""Unpaired text style transfer: a cycle of two sequence generators through Gumbel-softmax.

The lecture's "GAN for translation" with text: ``G_ab`` rewrites style-A sentences in style B
and ``G_ba`` the other way, trained on two sets of sentences with no pairs between them. The
generators emit discrete tokens, so what passes between networks is the straight-through
Gumbel-softmax: the one-hot row of ``argmax(logits + g)`` going forward, the gradient of
``softmax((logits + g) / tau)`` going back. Three losses, as in CycleGAN:

* adversarial: D_b cannot tell ``G_ab(a)`` from real B sentences (and D_a likewise), in the
  objective ``loss.name`` (binary cross-entropy, ``nonsaturating``, by default);
* cycle: ``G_ba(G_ab(a))`` gives back ``a`` (cross-entropy), so content must survive;
* identity: ``G_ab(b)`` keeps ``b`` unchanged, which teaches both generators to copy content.

The data are labelled sentences (``y`` 0 for style A, 1 for B): ``data.source=style_synth``
or two text files ``a.txt,b.txt``. ``gankit translate RUN --input in.txt --out out.txt``
rewrites a file, one sentence per line; ``--direction BtoA`` goes the other way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.config import ModelOptions, RunConfig
from gankit.data.info import DataInfo
from gankit.data.text import Vocab, read_sentences, write_sentences
from gankit.errors import ConfigError, DataError
from gankit.models import register_model
from gankit.models.adversarial import adversarial_loss, adversarial_optimizers, adversarial_schedule
from gankit.models.base import Batch, GenerativeModel, Phase
from gankit.models.sequence import check_sequence_data
from gankit.nets.sequence import CNNDiscriminator, Transducer, gumbel_noise

N_EXAMPLES = 16  # training sentences kept for the sample files


def straight_through(logits: Tensor, noise: Tensor | None = None, tau: float = 1.0) -> Tensor:
    """One-hot rows of ``argmax(logits + noise)`` whose gradient is that of
    ``softmax((logits + noise) / tau)``."""
    y = logits if noise is None else logits + noise
    soft = torch.softmax(y / tau, dim=-1)
    hard = F.one_hot(y.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


@dataclass
class StyleOptions(ModelOptions):
    kind: str = "style"
    emb_dim: int = 64  # generators' token embedding (their bi-LSTMs have G.width units)
    tau: float = 1.0  # temperature of the relaxation's gradient
    lambda_cycle: float = 10.0
    lambda_identity: float = 5.0
    d_emb_dim: int = 64
    d_windows: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    d_filters: list[int] = field(default_factory=lambda: [64, 64, 64, 64])
    d_dropout: float = 0.25


@register_model
class StyleTransfer(GenerativeModel):
    kind = "style"
    Options = StyleOptions
    no_latent_generator = "is a text style translator (its input is a sentence, not a latent); use gankit translate"

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__(cfg, info)
        check_sequence_data(info, self.kind)
        if info.num_classes != 2:
            raise ConfigError("model.kind=style needs sentences in exactly two styles: "
                              "data.source=style_synth or data.source=a.txt,b.txt")
        if cfg.model.tau <= 0:
            raise ConfigError(f"model.tau must be > 0, got {cfg.model.tau}")
        self.loss = adversarial_loss(cfg.loss).require(self.kind)  # D and G's adversarial terms
        self.vocab = Vocab(list(info.vocab))
        self.max_len = int(info.shape[0])
        V, m = len(self.vocab), cfg.model
        self.G_ab = Transducer(V, m.emb_dim, cfg.G.width, cfg.G.depth)
        self.G_ba = Transducer(V, m.emb_dim, cfg.G.width, cfg.G.depth)
        self.D_a, self.D_b = (CNNDiscriminator(V, self.max_len, m.d_emb_dim, m.d_windows, m.d_filters,
                                               m.d_dropout) for _ in range(2))
        self.register_buffer("examples", torch.zeros(N_EXAMPLES, self.max_len, dtype=torch.long))
        self.register_buffer("example_styles", torch.zeros(N_EXAMPLES, dtype=torch.long))
        self.register_buffer("examples_kept", torch.zeros((), dtype=torch.long))

    # ---- training ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        Gs = list(self.G_ab.parameters()) + list(self.G_ba.parameters())
        Ds = list(self.D_a.parameters()) + list(self.D_b.parameters())
        return adversarial_optimizers(self, Gs, Ds)

    def schedule(self) -> list[Phase]:
        return adversarial_schedule(self.cfg.train, g_needs_batch=True)

    def ema_targets(self) -> dict[str, nn.Module]:
        return {"G_ab": self.G_ab, "G_ba": self.G_ba}

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        self._keep_examples(batch)
        if "y" not in batch:
            raise DataError("style transfer needs sentences labelled with their style (y)")
        a, b = batch["x"][batch["y"] == 0], batch["x"][batch["y"] == 1]
        if len(a) == 0 or len(b) == 0:  # a batch of one style only: nothing to compare
            return {}
        return self._d_step(a, b) if phase == "D" else self._g_step(a, b)

    def _relaxed(self, logits: Tensor) -> Tensor:
        noise = gumbel_noise(self.rand(logits.shape[0], *logits.shape[1:]))
        return straight_through(logits.float(), noise, self.cfg.model.tau)

    def _d_step(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        self.train_only(nn.ModuleList([self.D_a, self.D_b]), self.G_ab, self.G_ba)
        with torch.no_grad():
            fake_b, fake_a = self._relaxed(self.G_ab(a)), self._relaxed(self.G_ba(b))
        loss = self.loss.d_loss(self.D_b(b), self.D_b(fake_b)) + self.loss.d_loss(self.D_a(a), self.D_a(fake_a))
        self.optimize("D", loss, nn.ModuleList([self.D_a, self.D_b]))
        return {"loss/D": loss.detach()}

    def _g_step(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        Gs = nn.ModuleList([self.G_ab, self.G_ba])
        self.train_only(Gs, self.D_a, self.D_b)
        m = self.cfg.model
        fake_b, fake_a = self._relaxed(self.G_ab(a)), self._relaxed(self.G_ba(b))
        adv = self.loss.g_loss(self.D_b(fake_b)) + self.loss.g_loss(self.D_a(fake_a))
        cycle = self._ce(self.G_ba(fake_b), a) + self._ce(self.G_ab(fake_a), b)
        identity = self._ce(self.G_ab(b), b) + self._ce(self.G_ba(a), a)
        loss = adv + m.lambda_cycle * cycle + m.lambda_identity * identity
        self.optimize("G", loss, Gs)
        return {"loss/G/adv": adv.detach(), "loss/G/cycle": cycle.detach(),
                "loss/G/identity": identity.detach()}

    @staticmethod
    def _ce(logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float().transpose(1, 2), target)

    # ---- translation -----------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: Tensor, to_style: Tensor | int, use_ema: bool = True) -> Tensor:
        """Token ids ``[N, L]`` rewritten in ``to_style`` (one int, or one per sentence)."""
        to = torch.as_tensor(to_style, device=x.device).expand(x.shape[0])
        out = x.clone()
        for style, name in ((1, "G_ab"), (0, "G_ba")):
            rows = to == style
            if rows.any():
                G = self.net(name, use_ema)
                was_training = G.training
                G.eval()
                out[rows] = G(x[rows]).argmax(-1)
                G.train(was_training)
        return _clean(out, self.vocab)

    def translate_path(self, source: Path, out: Path, direction: str = "AtoB") -> str:
        """Rewrite a text file (one sentence per line) with ``direction`` AtoB or BtoA."""
        if Path(source).is_dir():
            raise DataError(f"'{source}' is a folder; give a text file with one sentence per line")
        sentences = read_sentences(Path(source))
        x = self.vocab.encode(sentences, self.max_len).to(self.device)
        y = torch.cat([self.translate(x[s:s + 500], 1 if direction == "AtoB" else 0)
                       for s in range(0, len(x), 500)])
        out = Path(out)
        path = out / "translated.txt" if out.is_dir() else out
        write_sentences(y.cpu(), self.vocab, path)
        return f"{len(y)} sentences ({direction}) to {path}"

    # ---- samples: translations of a few training sentences ---------------------------------
    @torch.no_grad()
    def _keep_examples(self, batch: Batch) -> None:
        if bool(self.examples_kept) or "y" not in batch:
            return
        n = min(N_EXAMPLES, len(batch["x"]))
        self.examples[:n] = batch["x"][:n]
        self.example_styles[:n] = batch["y"][:n]
        self.examples_kept.fill_(1)

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: Tensor | None = None) -> dict[str, Tensor]:
        return {"i": torch.arange(n, device=self.device) % N_EXAMPLES}

    @torch.no_grad()
    def decode(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        """Kept training sentences, each rewritten in the other style."""
        i = inputs["i"]
        return self.translate(self.examples[i], 1 - self.example_styles[i], use_ema)

    def write_samples(self, samples: Tensor, out: Path) -> str:
        out = Path(out)
        path = out if out.suffix else out / "samples.txt"
        write_sentences(samples.long(), self.vocab, path)
        return f"{len(samples)} translated sentences to {path}"


def _clean(x: Tensor, vocab: Vocab) -> Tensor:
    """Everything after the first end (or pad) token becomes padding, as in the data."""
    if vocab.eos is None:
        return x
    stop = (x == vocab.eos) | (x == vocab.pad)
    after = (stop.long().cumsum(1) - stop.long()) > 0
    first_pad = stop & (x == vocab.pad) & ~after
    x = x.masked_fill(first_pad, vocab.eos)  # a sentence ends with <eos>, never a bare <pad>
    return x.masked_fill(after, vocab.pad)
