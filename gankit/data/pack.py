"""``gankit data pack FOLDER --out DATA.zip``: a folder of images packed in one zip file.

The zip has StyleGAN2-ADA's layout (see :mod:`gankit.data.zipdata`), so both toolkits read
it. Every image is decoded once, centre-cropped (or stretched) to ``size x size`` and stored
as an uncompressed PNG (rows unfiltered, so a start reads them without Pillow); labels come from class sub-folders or a tags file. Unreadable files
follow ``--on-bad`` (as ``data.on_bad``: ``error`` stops before anything is written, ``skip``
leaves them out and counts them); images with identical pixels after resizing are reported
(and left out with ``--dedupe``). The zip is written to a temporary file and renamed, so an
interrupted pack leaves no half-written data set.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
from PIL import Image, ImageOps

from gankit.data import folders
from gankit.data.conditions import tag_report
from gankit.data.zipdata import LABELS_FILE, png_bytes
from gankit.errors import ConfigError, DataError

CROPS = ("center", "stretch")
PROGRESS_MIN = 1000  # smaller packs take a moment: one closing line is enough
T = TypeVar("T")


@dataclass
class PackResult:
    """What a pack wrote and what it left out."""

    out: Path
    count: int
    size: int
    channels: int
    class_names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (copy, first seen)

    def summary(self) -> str:
        """One line: images written, classes, skipped files and duplicates."""
        classes = f"{len(self.class_names)} classes" if self.class_names else "no labels"
        skipped = sum(self.skipped.values())
        text = f"packed {self.count} images ({self.size}x{self.size}, {self.channels} ch, {classes}) into '{self.out}'"
        if skipped:
            text += "; skipped " + ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        if self.duplicates:
            copy, first = self.duplicates[0]
            text += f"; {len(self.duplicates)} duplicate(s) (identical pixels), e.g. '{copy}' = '{first}'"
        return text


def member_name(i: int) -> str:
    """The zip member of image ``i``: ``00000/img00000000.png`` (dataset_tool.py's names)."""
    digits = f"{i:08d}"
    return f"{digits[:5]}/img{digits}.png"


def pack_folder(folder: str | Path, out: str | Path, size: int = 64, crop: str = "center",
                channels: int = 0, tags: str | Path | None = None, on_bad: str = "error",
                dedupe: bool = False, workers: int = 0, stream=None) -> PackResult:
    """Pack the images below ``folder`` into the zip ``out`` (see the module docstring).

    ``size`` 0 keeps the first image's shorter side; ``channels`` 0 the first image's."""
    if crop not in CROPS:
        raise ConfigError(f"--crop must be one of {', '.join(CROPS)}; got '{crop}'")
    if on_bad not in ("error", "skip"):
        raise ConfigError(f"--on-bad must be error or skip; got '{on_bad}'")
    report = folders.scan_folder(folder, verify=True)
    if tags:
        report = tag_report(report, tags)
    _check_bad(report.skipped, report.examples, on_bad)
    native_size, native_channels = folders.native_format(report)
    size, channels = size or native_size, channels or native_channels
    folders._check_format(size, channels)
    result = PackResult(Path(out), 0, size, channels, list(report.class_names),
                        skipped=dict(report.skipped))
    pixels = folders._ordered_map(_decoder(size, channels, crop), report.files, workers)
    items = _progress(zip(report.files, report.labels, pixels), len(report.files), stream)
    with atomic_output(Path(out)) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        entries = _write_images(zf, items, report.root, result, on_bad, dedupe)
        meta = {"labels": entries if report.class_names else None, "class_names": result.class_names}
        zf.writestr(LABELS_FILE, json.dumps(meta))
    result.count = len(entries)
    return result


def _write_images(zf: zipfile.ZipFile, items: Iterable, root: Path, result: PackResult,
                  on_bad: str, dedupe: bool) -> list[list]:
    """Store each decoded image as the next member; returns the ``[member, label]`` entries.
    Unreadable files follow ``on_bad``; repeated pixels are noted (and left out if ``dedupe``)."""
    seen: dict[bytes, str] = {}
    entries: list[list] = []
    for path, label, px in items:
        if isinstance(px, str):  # the reason it could not be decoded
            _check_bad({px: 1}, {px: path}, on_bad)
            result.skipped[px] = result.skipped.get(px, 0) + 1
            continue
        rel = path.relative_to(root).as_posix()
        key = hashlib.blake2b(px.tobytes(), digest_size=16).digest()
        if key in seen:
            result.duplicates.append((rel, seen[key]))
            if dedupe:
                continue
        seen.setdefault(key, rel)
        name = member_name(len(entries))
        zf.writestr(name, png_bytes(px))
        entries.append([name, label])
    return entries


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """``with atomic_output(path) as tmp``: write ``tmp`` in ``path``'s folder; it becomes
    ``path`` on success and is removed on failure, so no half-written file is ever left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; the output is not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_BAD = ("corrupt", "truncated", "unreadable", "too large")


def _check_bad(skipped: dict[str, int], examples: dict, on_bad: str) -> None:
    """Under ``--on-bad error``, stop at the first unreadable file, naming it."""
    bad = [r for r in _BAD if skipped.get(r)]
    if bad and on_bad == "error":
        raise DataError(f"cannot read image '{examples[bad[0]]}' ({bad[0]}); nothing written: "
                        "replace or remove it, or pass --on-bad skip to leave such files out")


def _decoder(size: int, channels: int, crop: str) -> Callable[[Path], np.ndarray | str]:
    def decode(path: Path) -> np.ndarray | str:
        try:
            if crop == "center":
                return folders._decode(path, size, channels)
            return _decode_stretched(path, size, channels)
        except Exception as e:  # noqa: BLE001 -- counted (or refused) by the caller
            return folders._reason(e)

    return decode


def _decode_stretched(path: Path, size: int, channels: int) -> np.ndarray:
    """The whole image resized to ``size x size`` (its aspect ratio not kept)."""
    with Image.open(path) as im:
        im.load()
        im = folders._convert(ImageOps.exif_transpose(im), channels)
        return np.array(im.resize((size, size), folders.RESAMPLE), dtype=np.uint8)


def _progress(items: Iterable[T], total: int, stream=None) -> Iterator[T]:
    """A tqdm bar on a terminal (where tqdm is installed); otherwise a plain line at every
    tenth, so logs and pipes stay readable."""
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is not a dependency of gankit: plain lines then
            pass
        else:
            yield from tqdm(items, total=total, unit="img", file=stream, desc="pack")
            return
    start, step = time.time(), max(1, total // 10)
    for i, item in enumerate(items, 1):
        yield item
        if i == total or (total >= PROGRESS_MIN and i % step == 0):
            print(f"pack: {i}/{total} images ({time.time() - start:.1f} s)", file=stream, flush=True)


# ---- the command -----------------------------------------------------------------------------
def cmd_pack(args: argparse.Namespace) -> int:
    result = pack_folder(args.folder, args.out, size=args.size, crop=args.crop,
                         channels=args.channels, tags=args.tags, on_bad=args.on_bad,
                         dedupe=args.dedupe)
    print(result.summary())
    return 0


def add_parsers(sub) -> None:
    """``gankit data pack``."""
    d = sub.add_parser("data", help="prepare data sets (pack a folder into one zip)")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=type(d))
    p = dsub.add_parser("pack", help="pack an image folder into a zip (StyleGAN2-ADA's layout)")
    p.add_argument("folder")
    p.add_argument("--out", required=True, help="the zip file to write")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (0: the first image's)")
    p.add_argument("--crop", default="center", choices=CROPS,
                   help="center: the centre square; stretch: the whole image, aspect not kept")
    p.add_argument("--channels", type=int, default=0, choices=(0, 1, 3), help="0: the first image's")
    p.add_argument("--tags", help="a tags file: each distinct tag line becomes a class")
    p.add_argument("--on-bad", default="error", choices=("error", "skip"),
                   help="an unreadable file: stop (error) or leave it out (skip)")
    p.add_argument("--dedupe", action="store_true", help="leave out images whose pixels repeat an earlier one")
    p.set_defaults(func=cmd_pack)
