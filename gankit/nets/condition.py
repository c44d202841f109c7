"""Condition encoders and the conditional wrappers of G and D.

Nets take a float condition ``c`` (``G(z, c)``, ``D(x, c)``, see :mod:`gankit.nets.common`).
A data set's *raw* condition is a class id (``data.condition=label``) or the token ids of a
short text (``data.condition=text``); the encoders here turn raw conditions into ``c``:

* :class:`LabelEncoder`: one-hot (``embed_dim=0``) or a learned embedding table;
* :class:`TextEncoder`: learned token embeddings pooled by a masked mean (a bag of words)
  or read by a GRU (word order matters).

:class:`ConditionedGenerator` and :class:`ConditionedDiscriminator` pair a net with its own
encoder, so each side learns its encoder with its own optimizer and the EMA of G covers G's
encoder. :class:`ConditionSpace` knows the data set's conditions: it maps labels to raw
conditions, draws them for sampling, parses ``--cond`` text, and picks mismatched partners for
matching-aware training (Reed et al. 2016).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.conditions import encode_texts, normalise, tokenize, unknown_words
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError

CONDITIONS = ("label", "text")
TEXT_ENCODERS = ("mean", "gru")
DEFAULT_TEXT_DIM = 32
_MAX_LISTED = 40  # known words listed in an error message


# ---- encoders --------------------------------------------------------------------------------
class LabelEncoder(nn.Module):
    """Class ids ``[B]`` -> ``[B, out_dim]``: one-hot, or a learned embedding of ``embed_dim``."""

    def __init__(self, num_classes: int, embed_dim: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim > 0 else None
        self.out_dim = embed_dim if embed_dim > 0 else num_classes

    def forward(self, y: Tensor) -> Tensor:
        if y.dim() != 1 or y.dtype != torch.int64:
            raise ValueError(f"labels must be int64 [B], got {y.dtype} {list(y.shape)}")
        if self.embed is not None:
            return self.embed(y)
        return F.one_hot(y, self.num_classes).float()


class TextEncoder(nn.Module):
    """Token ids ``[B, L]`` (0 = padding at the end) -> ``[B, embed_dim]``.

    ``pooling='mean'`` averages the embeddings of the real tokens; ``'gru'`` runs a GRU over
    them and keeps its output at the last real token. An empty text encodes to zeros."""

    def __init__(self, vocab_size: int, embed_dim: int = DEFAULT_TEXT_DIM, pooling: str = "mean"):
        super().__init__()
        if pooling not in TEXT_ENCODERS:
            raise ConfigError(f"model.text_encoder='{pooling}' is unknown; use one of "
                              f"{', '.join(TEXT_ENCODERS)}")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, embed_dim, batch_first=True) if pooling == "gru" else None
        self.out_dim = embed_dim

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ValueError(f"token ids must be int64 [B, L], got {tokens.dtype} {list(tokens.shape)}")
        mask = tokens != 0
        lengths = mask.sum(1)
        h = self.embed(tokens)
        if self.gru is None:
            return (h * mask.unsqueeze(-1)).sum(1) / lengths.clamp(min=1).unsqueeze(-1)
        # Padding sits at the end, so the outputs up to the last real token never saw it.
        out, _ = self.gru(h)
        last = out[torch.arange(len(tokens), device=tokens.device), (lengths - 1).clamp(min=0)]
        return last * (lengths > 0).unsqueeze(-1)


def build_condition_encoder(condition: str, info: DataInfo, embed_dim: int = 0,
                            pooling: str = "mean") -> nn.Module:
    """The encoder of ``data.condition``: labels -> one-hot/embedding, text -> TextEncoder."""
    if embed_dim < 0:
        raise ConfigError(f"model.embed_dim must be >= 0, got {embed_dim}")
    if condition == "label":
        return LabelEncoder(info.num_classes, embed_dim)
    if condition == "text":
        return TextEncoder(len(info.vocab), embed_dim or DEFAULT_TEXT_DIM, pooling)
    raise ConfigError(f"data.condition='{condition}' has no encoder; use one of {', '.join(CONDITIONS)}")


# ---- conditional nets ------------------------------------------------------------------------
class WithCondition(nn.Module):
    """``net(input, raw condition)``: a net fed with its own encoding of the condition (a
    conditional VAE's encoder and decoder)."""

    role = "model"  # named in the error for a missing condition

    def __init__(self, net: nn.Module, encoder: nn.Module):
        super().__init__()
        self.net, self.encoder = net, encoder

    def forward(self, inp: Tensor, cond: Tensor | None = None):
        if cond is None:
            raise ConfigError(f"this {self.role} is conditional; give a condition (e.g. --cond)")
        return self.net(inp, self.encoder(cond))


class ConditionedGenerator(WithCondition):
    """``G(z, raw condition)``: the generator fed with its own encoding of the condition."""

    role = "generator"


class ConditionedDiscriminator(nn.Module):
    """``D(x, raw condition)`` with its own encoder (concat or projection), or, for ACGAN, an
    unconditional ``D(x)`` plus an auxiliary classifier on ``D.features`` (Odena et al. 2017)."""

    def __init__(self, net: nn.Module, encoder: nn.Module | None = None, num_classes: int = 0):
        super().__init__()
        self.net, self.encoder = net, encoder
        self.aux = nn.Linear(net.feature_dim, num_classes) if num_classes > 0 else None
        self.feature_dim = net.feature_dim

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if self.encoder is None:
            return self.net(x, cond)
        if cond is None:
            raise ConfigError("this discriminator is conditional and needs a condition")
        return self.net(x, self.encoder(cond))

    def features(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        c = self.encoder(cond) if self.encoder is not None and cond is not None else None
        return self.net.features(x, c)

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """ACGAN: the real/fake score ``[B]`` and class logits ``[B, K]`` from one pass."""
        if self.aux is None:
            raise ConfigError("score_and_logits needs an auxiliary classifier (model.cond_mode=acgan)")
        h = self.net.features(x)
        return self.net.head(h).squeeze(1), self.aux(h)


# ---- the conditions of a data set ------------------------------------------------------------
class ConditionSpace(nn.Module):
    """Raw conditions of a data set whose items carry a class index ``y`` (see
    :mod:`gankit.data.conditions`): ``y`` itself for labels, the token ids of
    ``class_names[y]`` for text. Holds no learned state (its table is rebuilt from DataInfo)."""

    def __init__(self, condition: str, info: DataInfo, max_len: int = 20):
        super().__init__()
        if condition not in CONDITIONS:
            raise ConfigError(f"data.condition='{condition}' is unknown; use one of {', '.join(CONDITIONS)}")
        self.condition = condition
        self.class_names = list(info.class_names)
        self.vocab = list(info.vocab)
        self.max_len = max_len
        table = encode_texts(self.class_names, self.vocab, max_len) if condition == "text" else torch.zeros(0)
        self.register_buffer("texts", table, persistent=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def from_labels(self, y: Tensor) -> Tensor:
        """Batch labels ``[B]`` -> raw conditions (labels, or token ids ``[B, L]``)."""
        return y if self.condition == "label" else self.texts[y]

    def default(self, n: int) -> Tensor:
        """``n`` raw conditions cycling through the classes (balanced grids and metrics)."""
        return self.from_labels(torch.arange(n, device=self.texts.device) % self.num_classes)

    def parse(self, text: str, n: int) -> Tensor:
        """``--cond`` text -> ``n`` copies of its raw condition; GankitError for unknown words."""
        if not tokenize(text):
            raise GankitError("--cond is empty; give a class name or words, e.g. --cond seven")
        if self.condition == "label":
            return torch.full((n,), self._label_of(text), dtype=torch.int64)
        unknown = unknown_words(text, self.vocab)
        if unknown:
            raise GankitError(f"unknown word(s) {', '.join(repr(w) for w in unknown)} in --cond; "
                              f"known words: {_listing(self.vocab[2:])}")
        return encode_texts([text], self.vocab, self.max_len).repeat(n, 1)

    def _label_of(self, text: str) -> int:
        wanted = normalise(text)
        for i, name in enumerate(self.class_names):
            if normalise(name) == wanted:
                return i
        if wanted.isdigit() and int(wanted) < self.num_classes:
            return int(wanted)
        raise GankitError(f"unknown condition '{text}'; known classes: {_listing(self.class_names)}"
                          f" (or a class number 0-{self.num_classes - 1})")


def _listing(words: list[str]) -> str:
    shown = ", ".join(words[:_MAX_LISTED])
    return shown + (f", ... ({len(words)} in all)" if len(words) > _MAX_LISTED else "")


# ---- matching-aware training -----------------------------------------------------------------
def mismatched_partners(cond: Tensor, rand: Tensor) -> Tensor:
    """For each item, the index of another item of the batch whose condition differs.

    ``cond`` is ``[B]`` labels or ``[B, L]`` tokens; ``rand`` is ``[B, B]`` uniform noise that
    picks among the candidates. An item whose condition every item shares gets a random partner
    (then the 'mismatch' matches; only a batch of one condition does this)."""
    same = cond[:, None] == cond[None, :]
    if same.dim() == 3:
        same = same.all(-1)
    return rand.masked_fill(same, -1.0).argmax(dim=1)


def matching_aware_d_loss(d_loss: Callable[[Tensor, Tensor], Tensor], real_out: Tensor,
                          fake_out: Tensor, mismatch_out: Tensor, weight: float) -> Tensor:
    """D's loss with (real x, mismatched c) as a second kind of fake (GAN-CLS):
    ``(1 - w) d_loss(real, fake) + w d_loss(real, mismatch)``.

    For the objectives that split into a real and a fake term (all of gankit's), this is the
    real term plus the fake term shared ``1 - w : w`` between generated and mismatched pairs;
    ``w = 0.5`` is Reed et al.'s ``log D(x, c) + (log(1 - D(x, c')) + log(1 - D(G(z, c), c))) / 2``."""
    return (1.0 - weight) * d_loss(real_out, fake_out) + weight * d_loss(real_out, mismatch_out)
