"""Networks for token sequences: an LSTM generator, a CNN discriminator and a recurrent
per-prefix discriminator.

Sequences are LongTensors ``[B, L]`` of token ids. Text data ends each sentence with an
end token and fills the rest with padding; the oracle data has neither (``eos=None``).
Discriminators also take "soft" sequences ``[B, L, V]`` (rows of probabilities, e.g. a
Gumbel-softmax output) and embed them as ``soft @ embedding``, which equals the embedding
lookup for one-hot rows. The optional condition ``c`` ([B, c_dim]) sets the generator's
initial state and enters the discriminators as a projection term, as for the image nets.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import ConfigError

State = tuple[Tensor, Tensor]


def valid_mask(x: Tensor, eos: int | None) -> Tensor:
    """Bool ``[B, L]``: True up to and including the first end token (all True without one)."""
    if eos is None:
        return torch.ones_like(x, dtype=torch.bool)
    is_end = (x == eos).long()
    ends_before = is_end.cumsum(1) - is_end  # end tokens strictly before each position
    return ends_before == 0


def gumbel_noise(u: Tensor) -> Tensor:
    """Gumbel(0, 1) noise from uniforms in (0, 1); clamped so the logs stay finite. (In place
    on the clamped copy: the same values as ``-log(-log(u))`` without three temporaries the
    size of ``u``, which for a [batch, length, vocabulary] draw are tens of MB.)"""
    tiny = torch.finfo(u.dtype).tiny
    return u.clamp(tiny, 1.0 - 1e-7).log_().neg_().log_().neg_()


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")


class LSTMGenerator(nn.Module):
    """An autoregressive LSTM language model ``p(x_t | x_<t, z, c)`` of fixed length ``max_len``.

    A learned start token (id ``vocab_size``) opens every sequence. With ``eos`` set, every
    token after the first end token is forced to ``pad`` when sampling.
    """

    def __init__(self, vocab_size: int, max_len: int, emb_dim: int = 32, hidden: int = 32,
                 layers: int = 1, z_dim: int = 0, c_dim: int = 0, eos: int | None = None,
                 pad: int | None = None):
        super().__init__()
        _check_positive(vocab_size=vocab_size, max_len=max_len, emb_dim=emb_dim, hidden=hidden,
                        layers=layers)
        if (eos is None) != (pad is None):
            raise ConfigError("give both the end and the pad token ids, or neither")
        self.vocab_size, self.max_len = vocab_size, max_len
        self.hidden, self.layers = hidden, layers
        self.z_dim, self.c_dim, self.eos, self.pad = z_dim, c_dim, eos, pad
        self.embed = nn.Embedding(vocab_size + 1, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)
        self.init = nn.Linear(z_dim + c_dim, 2 * layers * hidden) if z_dim + c_dim else None

    # ---- teacher forcing -----------------------------------------------------------------
    def initial_state(self, n: int, z: Tensor | None = None, c: Tensor | None = None) -> State | None:
        """The LSTM's (h, c) at the start: zeros, or a function of ``z`` and ``c``."""
        if self.init is None:
            return None
        parts = [t for t in (z, c) if t is not None]
        if sum(t.shape[1] for t in parts) != self.z_dim + self.c_dim:
            raise ValueError(f"the generator expects z_dim={self.z_dim} and c_dim={self.c_dim}")
        hc = torch.tanh(self.init(torch.cat(parts, 1))).view(n, 2, self.layers, self.hidden)
        return hc[:, 0].transpose(0, 1).contiguous(), hc[:, 1].transpose(0, 1).contiguous()

    def start_tokens(self, n: int, device: torch.device) -> Tensor:
        return torch.full((n, 1), self.vocab_size, dtype=torch.long, device=device)

    def forward(self, x: Tensor, z: Tensor | None = None, c: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``[B, L, V]``: position t is predicted from start, x_0..x_{t-1}."""
        inputs = torch.cat([self.start_tokens(x.shape[0], x.device), x[:, :-1]], 1)
        out, _ = self.lstm(self.embed(inputs), self.initial_state(x.shape[0], z, c))
        return self.out(out)

    def log_probs(self, x: Tensor, z: Tensor | None = None, c: Tensor | None = None,
                  temperature: float = 1.0) -> Tensor:
        """``log p(x_t | x_<t)`` per token, ``[B, L]``, under ``softmax(logits / temperature)``."""
        logp = F.log_softmax(self(x, z, c).float() / temperature, dim=-1)
        return logp.gather(2, x.unsqueeze(2)).squeeze(2)

    # ---- sampling ------------------------------------------------------------------------
    def step(self, tokens: Tensor, state: State | None) -> tuple[Tensor, State]:
        """One step: previous tokens ``[B]`` -> logits ``[B, V]`` of the next one, new state."""
        out, state = self.lstm(self.embed(tokens.unsqueeze(1)), state)
        return self.out(out[:, 0]), state

    def _prefix_state(self, n: int, prefix: Tensor | None, z: Tensor | None,
                      c: Tensor | None) -> tuple[Tensor, State | None, int]:
        """Consume start + prefix: the last input token, the state before it, prefix length."""
        state = self.initial_state(n, z, c)
        start = self.start_tokens(n, self.out.weight.device)[:, 0]
        if prefix is None or prefix.shape[1] == 0:
            return start, state, 0
        seen = torch.cat([start.unsqueeze(1), prefix[:, :-1]], 1)
        _, state = self.lstm(self.embed(seen), state)
        return prefix[:, -1], state, prefix.shape[1]

    def _force_pad(self, tok: Tensor, done: Tensor) -> tuple[Tensor, Tensor]:
        if self.eos is None:
            return tok, done
        tok = torch.where(done, torch.full_like(tok, self.pad), tok)
        return tok, done | (tok == self.eos)

    def _done_after(self, prefix: Tensor | None, n: int, device: torch.device) -> Tensor:
        if prefix is None or self.eos is None or prefix.shape[1] == 0:
            return torch.zeros(n, dtype=torch.bool, device=device)
        return (prefix == self.eos).any(1)

    @torch.no_grad()
    def sample(self, n: int, u: Tensor | None = None, z: Tensor | None = None,
               c: Tensor | None = None, temperature: float = 1.0,
               prefix: Tensor | None = None) -> Tensor:
        """``n`` sequences ``[n, L]`` drawn by inverse-CDF sampling with uniforms ``u`` [n, L]
        (fresh ``torch.rand`` when None), at ``temperature``; a ``prefix`` [n, t] is kept."""
        device = self.out.weight.device
        u = torch.rand(n, self.max_len, device=device) if u is None else u
        prev, state, t0 = self._prefix_state(n, prefix, z, c)
        done = self._done_after(prefix, n, device)
        tokens = [prefix] if t0 else []
        for t in range(t0, self.max_len):
            logits, state = self.step(prev, state)
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            cdf = probs.cumsum(-1)
            target = (u[:, t:t + 1] * cdf[:, -1:]).contiguous()
            tok = torch.searchsorted(cdf, target, right=True)[:, 0].clamp_(max=self.vocab_size - 1)
            tok, done = self._force_pad(tok, done)
            tokens.append(tok.unsqueeze(1))
            prev = tok
        return torch.cat(tokens, 1)

    def gumbel_sample(self, n: int, beta: float | Tensor, noise: Tensor | None = None,
                      z: Tensor | None = None, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gumbel-softmax sampling with gradients: the hard token ``argmax(logits + g)`` is fed
        back; returns (tokens [n, L], soft [n, L, V] = ``softmax(beta * (logits + g))``).
        ``noise`` is Gumbel noise [n, L, V] (fresh when None)."""
        device = self.out.weight.device
        if noise is None:
            noise = gumbel_noise(torch.rand(n, self.max_len, self.vocab_size, device=device))
        prev, state, _ = self._prefix_state(n, None, z, c)
        done = torch.zeros(n, dtype=torch.bool, device=device)
        tokens, softs = [], []
        for t in range(self.max_len):
            logits, state = self.step(prev, state)
            y = logits.float() + noise[:, t]
            soft = torch.softmax(beta * y, dim=-1)
            tok = y.detach().argmax(-1)
            if self.eos is not None:  # after the end: exactly the one-hot pad the data has
                pad_row = F.one_hot(torch.full_like(tok, self.pad), self.vocab_size).float()
                soft = torch.where(done.unsqueeze(1), pad_row, soft)
            tok, done = self._force_pad(tok, done)
            tokens.append(tok)
            softs.append(soft)
            prev = tok
        return torch.stack(tokens, 1), torch.stack(softs, 1)


class _TokenEmbedding(nn.Module):
    """Embeds token ids ``[B, L]`` by lookup and soft sequences ``[B, L, V]`` by ``soft @ W``."""

    def __init__(self, vocab_size: int, emb_dim: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, emb_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype in (torch.long, torch.int32, torch.int64):
            return self.embed(x)
        if x.dim() != 3 or x.shape[-1] != self.vocab_size:
            raise ValueError(f"soft sequences must be [B, L, {self.vocab_size}], got {tuple(x.shape)}")
        return x @ self.embed.weight


class CNNDiscriminator(nn.Module):
    """The SeqGAN / text-CNN discriminator: convolutions of several window sizes over the
    embedded sequence, max-over-time pooling, a highway layer, dropout, one logit per item."""

    def __init__(self, vocab_size: int, max_len: int, emb_dim: int = 64,
                 windows: Sequence[int] = (2, 3, 4, 5), filters: Sequence[int] = (64, 64, 64, 64),
                 dropout: float = 0.25, highway: bool = True, c_dim: int = 0):
        super().__init__()
        _check_positive(vocab_size=vocab_size, max_len=max_len, emb_dim=emb_dim)
        if len(windows) != len(filters) or not windows:
            raise ConfigError(f"give one filter count per window size; got windows {list(windows)} "
                              f"and filters {list(filters)}")
        too_wide = [w for w in windows if not 1 <= w <= max_len]
        if too_wide:
            raise ConfigError(f"window sizes {too_wide} do not fit sequences of {max_len} tokens; "
                              f"use windows between 1 and {max_len}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"the discriminator's dropout must be in [0, 1), got {dropout}")
        self.embed = _TokenEmbedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, f, w) for w, f in zip(windows, filters))
        self.feature_dim = int(sum(filters))
        self.highway = nn.Linear(self.feature_dim, 2 * self.feature_dim) if highway else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, 1)
        self.proj = nn.Linear(c_dim, self.feature_dim, bias=False) if c_dim else None

    def features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        e = self.embed(x).transpose(1, 2)  # [B, E, L]
        h = torch.cat([F.relu(conv(e)).amax(-1) for conv in self.convs], 1)
        if self.highway is not None:
            transform, gate = self.highway(h).chunk(2, dim=1)
            g = torch.sigmoid(gate)
            h = g * F.relu(transform) + (1 - g) * h
        return self.dropout(h)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        f = self.features(x)
        out = self.head(f).squeeze(1)
        if self.proj is not None and c is not None:
            out = out + (self.proj(c) * f).sum(1)
        return out


class RecurrentDiscriminator(nn.Module):
    """An LSTM that scores every prefix: ``prefix_scores(x)[:, t]`` is the logit that
    ``x_0..x_t`` is real. ``forward`` gives the score of the whole (valid) sequence."""

    def __init__(self, vocab_size: int, max_len: int, emb_dim: int = 32, hidden: int = 64,
                 c_dim: int = 0, eos: int | None = None, dropout: float = 0.0):
        super().__init__()
        _check_positive(vocab_size=vocab_size, max_len=max_len, emb_dim=emb_dim, hidden=hidden)
        self.eos = eos
        self.embed = _TokenEmbedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)
        self.proj = nn.Linear(c_dim, hidden, bias=False) if c_dim else None
        self.feature_dim = hidden

    def prefix_features(self, x: Tensor) -> Tensor:
        out, _ = self.lstm(self.embed(x))
        return self.dropout(out)

    def prefix_scores(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = self.prefix_features(x)
        out = self.head(h).squeeze(2)
        if self.proj is not None and c is not None:
            out = out + (self.proj(c).unsqueeze(1) * h).sum(2)
        return out

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        scores = self.prefix_scores(x, c)
        if x.dtype != torch.long or self.eos is None:
            return scores[:, -1]
        last = valid_mask(x, self.eos).sum(1) - 1
        return scores.gather(1, last.unsqueeze(1)).squeeze(1)

    def features(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.prefix_features(x)[:, -1]


class Transducer(nn.Module):
    """A non-autoregressive sequence-to-sequence generator: a bidirectional LSTM reads the
    whole input (token ids or soft rows) and emits logits ``[B, L, V]`` for every position.
    Output and input have the same number of positions, not the same sentence length: padded
    positions can carry words and words can become the end token."""

    def __init__(self, vocab_size: int, emb_dim: int = 64, hidden: int = 128, layers: int = 1):
        super().__init__()
        _check_positive(vocab_size=vocab_size, emb_dim=emb_dim, hidden=hidden, layers=layers)
        self.embed = _TokenEmbedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden, layers, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.lstm(self.embed(x))
        return self.out(h)
