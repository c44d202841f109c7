"""Conditions of image data sets: class labels, tag texts, and the vocabulary of those texts.

A condition is always stored as an integer ``y`` per image that indexes ``info.class_names``:

* ``data.condition=label``: ``class_names`` are the classes (sub-folder names, the digit
  words of MNIST-5k, or the distinct lines of a tags file) and ``c`` is the class;
* ``data.condition=text``: ``class_names`` are the distinct condition *texts* (e.g.
  ``"red_hair blue_eyes"``) and ``info.vocab`` their words; the model encodes the words.

Keeping ``y`` an index keeps batches ``{x, y}`` for every source (resident or streamed) and
lets a model draw conditions for sampling without seeing the data again.

A tags file has one line per image: its file name (relative to the data folder, or a bare
name when it is unique), then its tags. The name ends at the first tab or comma when the line
has one (so names may hold spaces), else at the first space. Tags are separated by spaces,
commas or semicolons; blank lines and lines starting with '#' are ignored.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable

import torch

from gankit.config import DataConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
_SEPARATORS = re.compile(r"[\s,;]+")


# ---- words -----------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Lower-case words of a condition text: ``'Red_hair, blue_eyes'`` -> two words.

    Underscores stay inside a word, so multi-word tags like ``red_hair`` remain one token."""
    return [w for w in _SEPARATORS.split(text.strip().lower()) if w]


def normalise(text: str) -> str:
    """The canonical form of a text: its words joined by single spaces."""
    return " ".join(tokenize(text))


def build_vocab(texts: Iterable[str], min_count: int = 1, max_words: int = 0) -> list[str]:
    """``[<pad>, <unk>, words...]``, most frequent first (ties alphabetical).

    Words seen fewer than ``min_count`` times are left out (they encode as ``<unk>``);
    ``max_words > 0`` keeps only that many words."""
    counts = Counter(w for t in texts for w in tokenize(t))
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    if max_words > 0:
        words = words[:max_words]
    return [PAD, UNK] + words


def encode_texts(texts: list[str], vocab: list[str], max_len: int) -> torch.Tensor:
    """Token ids ``int64 [len(texts), max_len]``: 0 pads the end, unknown words are 1."""
    if max_len < 1:
        raise ConfigError(f"data.max_len must be at least 1 for text conditions, got {max_len}")
    index = {w: i for i, w in enumerate(vocab)}
    out = torch.zeros(len(texts), max_len, dtype=torch.int64)
    for row, text in enumerate(texts):
        ids = [index.get(w, 1) for w in tokenize(text)][:max_len]
        out[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def unknown_words(text: str, vocab: list[str]) -> list[str]:
    """The words of ``text`` that ``vocab`` does not hold."""
    known = set(vocab[2:])
    return [w for w in tokenize(text) if w not in known]


# ---- tags files ------------------------------------------------------------------------------
def read_tags(path: str | Path) -> list[tuple[int, str, str]]:
    """``(line number, file name, normalised tag text)`` for each entry of a tags file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tags file '{path}' does not exist; fix data.tags")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read tags file '{path}' ({e}); give a UTF-8 text file") from None
    entries, seen = [], {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, tags = _split_line(line)
        if not _inside_folder(name):
            raise DataError(f"tags file '{path}' line {number} names '{name}', a path outside the "
                            "data folder; give names relative to the folder, without '..'")
        if name in seen:
            raise DataError(f"tags file '{path}' names '{name}' twice (lines {seen[name]} and "
                            f"{number}); keep one line per image")
        seen[name] = number
        entries.append((number, name, normalise(tags)))
    if not entries:
        raise DataError(f"tags file '{path}' has no entries; write one line per image: name, tags")
    return entries


def _inside_folder(name: str) -> bool:
    """Whether ``name`` stays inside the folder it is relative to: not absolute (POSIX or
    Windows, drive letters included) and no '..' component."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return False
    return ".." not in posix.split("/")


def _split_line(line: str) -> tuple[str, str]:
    for sep in ("\t", ","):
        if sep in line:
            name, tags = line.split(sep, 1)
            return name.strip(), tags
    parts = line.split(None, 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _match_tags(report, entries: list[tuple[int, str, str]]) -> tuple[dict[int, str], list]:
    """``({index of a scanned image: its text}, [(line, name) of entries naming no file]``)."""
    root = Path(report.root)
    by_rel = {p.relative_to(root).as_posix(): i for i, p in enumerate(report.files)}
    by_name: dict[str, list[int]] = {}
    for i, p in enumerate(report.files):
        by_name.setdefault(p.name, []).append(i)
    texts, missing = {}, []
    for number, name, text in entries:
        i = by_rel.get(name.replace("\\", "/"))
        if i is None and len(by_name.get(name, [])) == 1:
            i = by_name[name][0]
        if i is not None:
            texts[i] = text
        elif not (root / name).exists():  # present but unreadable files were already skipped
            missing.append((number, name))
    return texts, missing


def tag_report(report, tags_path: str | Path):
    """A copy of a folder's ScanReport whose labels index the distinct tag texts.

    Images without a line in the tags file are skipped (counted as 'no tags'); a line naming
    an image that does not exist is a DataError."""
    import dataclasses

    texts, missing = _match_tags(report, read_tags(tags_path))
    if missing:
        number, name = missing[0]
        raise DataError(f"tags file '{tags_path}' names {len(missing)} image(s) missing from "
                        f"'{report.root}', e.g. '{name}' (line {number}); fix the names or drop those lines")
    out = dataclasses.replace(report, files=[], labels=[], skipped=dict(report.skipped),
                              examples=dict(report.examples))
    out.class_names = sorted(set(texts.values()))
    index = {t: k for k, t in enumerate(out.class_names)}
    for i, path in enumerate(report.files):
        if i in texts:
            out.files.append(path)
            out.labels.append(index[texts[i]])
        else:
            out.skip("no tags", path)
    if not out.files:
        raise DataError(f"no image in '{report.root}' has a line in tags file '{tags_path}'; "
                        "check that the file names match")
    return out


# ---- the condition of a data set -------------------------------------------------------------
def condition_report(report, cfg: DataConfig):
    """Apply ``data.tags`` to a folder's ScanReport (labels become tag texts) when it is set."""
    if not cfg.tags:
        return report
    if cfg.condition == "none":
        raise ConfigError("data.tags is set but data.condition=none; set data.condition=text "
                          "(tag words) or label (each distinct tag line is a class)")
    return tag_report(report, cfg.tags)


def with_condition(cfg: DataConfig, info: DataInfo) -> DataInfo:
    """Check that the data can carry ``data.condition`` and add the text vocabulary (built
    from the distinct texts, so ``data.min_count`` counts texts, not images)."""
    if cfg.condition == "none":
        return info
    if not info.is_image or info.kind != "image":
        raise ConfigError(f"data.condition={cfg.condition} applies to single images, not to "
                          f"{info.kind} data; set data.condition=none")
    if info.num_classes < 2 or len(info.class_names) != info.num_classes:
        raise DataError(f"data.condition={cfg.condition} needs at least two named classes, but "
                        f"'{info.name}' has {len(info.class_names)}; put the images in class "
                        "sub-folders, give a data.tags file, or use a labelled built-in (mnist5k)")
    if cfg.condition == "text":
        info.vocab = build_vocab(info.class_names, cfg.min_count, cfg.vocab_size)
    return info
