"""Folders of images: scanning, decoding, a streaming Dataset and a resident loader.

Layout: images anywhere below ``root``. When some first-level sub-folders hold images, each
such folder is a class (sorted names, label = index) and images directly in ``root`` are
skipped; otherwise every image gets label 0 and there are no class names. Files and folders
whose names start with '.' are ignored (e.g. ``.DS_Store``, ``.ipynb_checkpoints``).

Bad files never crash a run; they are counted in :attr:`ScanReport.skipped` by reason:

* ``scan_folder(verify=True)`` opens each header and checks cheaply that the file is complete
  (PNG ends with IEND, JPEG with EOI, WebP/BMP are as long as their header says); only a file
  failing that check is fully decoded to decide. This catches files cut short (the common
  case) at the cost of reading a few bytes per file;
* :func:`load_folder_tensor` decodes every file exactly once, so it scans without
  verification and counts the files that fail to decode;
* :class:`ImageFolderDataset` may still meet a file that is damaged in the middle. It then
  returns the next readable item (``i+1``, ``i+2``, ... wrapping around) with that item's
  label, so a DataLoader worker never dies and the result stays deterministic; the bad file
  is recorded in ``dataset.failures`` (per process) and reported once with a warning. For
  training (``flag_bad=True``) the item says instead that its file failed, and the streaming
  source applies ``data.on_bad``: stop with the file's name (``error``, the default) or
  count the distinct bad files and log the count (``skip``).

Resizing: the shorter side is scaled to ``size`` with Pillow's LANCZOS filter (antialiased
when shrinking, sharp when enlarging) and the centre ``size x size`` square is kept. Both
are done in one resampling call on the centre square, so no pixels outside it are resampled.
EXIF orientation is applied; transparent pixels are composited onto white.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from gankit.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
RESAMPLE = Image.Resampling.LANCZOS
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_ORIENTATION = 0x0112  # the EXIF orientation tag
_TAIL = 1024  # bytes read from the end of each file to check that it is complete

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ScanReport:
    """The usable images of a folder, their labels, and what was skipped and why."""

    files: list[Path]
    labels: list[int]
    class_names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    root: Path | None = None
    examples: dict[str, Path] = field(default_factory=dict)  # reason -> first such file

    def __len__(self) -> int:
        return len(self.files)

    def skip(self, reason: str, path: Path) -> None:
        """Count ``path`` as skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.examples.setdefault(reason, path)

    def skipped_text(self) -> str:
        """E.g. '3 files skipped (2 corrupt, 1 not an image)'."""
        total = sum(self.skipped.values())
        if total == 0:
            return "no files skipped"
        parts = sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        detail = ", ".join(f"{n} {reason}" for reason, n in parts)
        return f"{total} file{'s' if total != 1 else ''} skipped ({detail})"

    def summary(self) -> str:
        """One line for the log: images, classes and skipped files."""
        classes = f"{len(self.class_names)} classes" if self.class_names else "no classes"
        where = f"'{self.root}': " if self.root is not None else ""
        n = len(self.files)
        text = f"{where}{n} image{'s' if n != 1 else ''}, {classes}; {self.skipped_text()}"
        if self.skipped:
            reason = max(self.skipped, key=lambda r: self.skipped[r])
            text += f", e.g. '{self.examples[reason]}'"
        return text


# ---- scanning --------------------------------------------------------------------------------
def scan_folder(root: str | Path, verify: bool = True) -> ScanReport:
    """List the images below ``root`` in a deterministic order, with labels from sub-folders.

    ``verify`` opens every file to skip non-images, corrupt and truncated files (see the
    module docstring). It runs in one thread: header parsing holds the GIL, so threads
    measured slower; ~0.1 ms per small image.
    """
    root = _check_root(root)
    report = ScanReport([], [], [], root=root)
    candidates = []
    for path in _walk(root, report):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            candidates.append(path)
        else:
            report.skip("not an image", path)
    if verify:
        reasons = [_verify(p) for p in candidates]
        for path, reason in zip(candidates, reasons):
            if reason is not None:
                report.skip(reason, path)
        candidates = [p for p, reason in zip(candidates, reasons) if reason is None]
    _assign_labels(report, candidates)
    if not report.files:
        raise _no_usable(report)
    return report


def _check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder '{root}' does not exist; check data.source")
    if not root.is_dir():
        raise DataError(f"'{root}' is a file, not a folder; give a folder of images "
                        f"(first-level sub-folders become classes)")
    return root


def _walk(root: Path, report: ScanReport) -> list[Path]:
    """Every non-hidden file below ``root``, sorted by path components; follows links once."""
    found: list[Path] = []
    seen: set[str] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:  # a symbolic link back up the tree
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            report.skip("unreadable folder", folder)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                report.skip("hidden", Path(entry.path))
            elif entry.is_dir():
                stack.append(Path(entry.path))
            elif entry.is_file():
                found.append(Path(entry.path))
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _assign_labels(report: ScanReport, images: list[Path]) -> None:
    assert report.root is not None
    rel = [p.relative_to(report.root).parts for p in images]
    if not any(len(parts) > 1 for parts in rel):
        report.files, report.labels, report.class_names = list(images), [0] * len(images), []
        return
    names = sorted({parts[0] for parts in rel if len(parts) > 1})
    index = {name: i for i, name in enumerate(names)}
    for path, parts in zip(images, rel):
        if len(parts) == 1:
            report.skip("outside class folders", path)
        else:
            report.files.append(path)
            report.labels.append(index[parts[0]])
    report.class_names = names


def _no_usable(report: ScanReport) -> DataError:
    if not report.skipped:
        what = "the folder is empty"
    else:
        what = report.skipped_text()
        if "outside class folders" in report.skipped:
            what += "; images must all sit in class sub-folders or all directly in the folder"
    exts = "/".join(e[1:] for e in IMAGE_EXTENSIONS)
    return DataError(f"no usable images in '{report.root}': {what}; add {exts} files")


def _verify(path: Path) -> str | None:
    """None for a readable image, else the reason to skip it."""
    complete = None
    try:
        with open(path, "rb") as f:
            complete = _looks_complete(f)
            f.seek(0)
            with Image.open(f) as im:
                if complete is not True:  # only suspicious files pay for a full decode
                    im.load()
    except Exception as e:  # noqa: BLE001 -- any failure on one bad file means "skip it"
        return "truncated" if complete is False else _reason(e)
    return None


def _looks_complete(f) -> bool | None:
    """True when the file ends as its format requires, False when it is cut short, else None."""
    head = f.read(16)
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _TAIL))
    tail = f.read()
    if head.startswith(b"\x89PNG"):
        return b"IEND" in tail[-32:]
    if head.startswith(b"\xff\xd8"):
        # Entropy-coded data escapes 0xFF, so FF D9 only appears as the end-of-image marker.
        return b"\xff\xd9" in tail
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= size
    if head.startswith(b"BM"):
        declared = int.from_bytes(head[2:6], "little")
        return declared <= size if declared else None
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        return "too large"
    if isinstance(exc, UnidentifiedImageError):  # its message holds the path: test it first
        return "corrupt"
    if isinstance(exc, OSError) and exc.errno is not None:  # missing, no permission, I/O
        return "unreadable"
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return "truncated"
    return "corrupt"


# ---- decoding --------------------------------------------------------------------------------
def _check_format(size: int, channels: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"image size must be a positive integer, got {size!r}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def _decode(path: str | Path, size: int, channels: int) -> np.ndarray:
    """uint8 pixels, [size, size] for 1 channel or [size, size, 3]; raises on a bad file."""
    with Image.open(path) as im:
        # JPEG only: decode at a reduced scale that still covers size x size (much faster).
        im.draft("L" if channels == 1 else "RGB", (size, size))
        im.load()
        if im.getexif().get(_ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        im = _convert(im, channels)
        return np.array(_resize_center(im, size), dtype=np.uint8)


def _convert(im: Image.Image, channels: int) -> Image.Image:
    if im.mode.startswith("I"):
        # Pillow's convert clips 16-bit values at 255 instead of scaling them.
        pixels = np.asarray(im, dtype=np.float64) / 257.0
        im = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    target = "L" if channels == 1 else "RGB"
    return im if im.mode == target else im.convert(target)


def _resize_center(im: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` and keep the centre square, in one resampling."""
    w, h = im.size
    if (w, h) == (size, size):
        return im
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return im.resize((size, size), RESAMPLE, box=(left, top, left + side, top + side))


def _to_tensor(pixels: np.ndarray, out: Tensor | None = None) -> Tensor:
    """uint8 [H, W] or [H, W, C] -> float32 [C, H, W] in [-1, 1] (written into ``out``)."""
    t = torch.from_numpy(pixels)
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    if out is None:
        out = torch.empty(t.shape, dtype=torch.float32)
    return out.copy_(t).mul_(2.0 / 255.0).sub_(1.0)


PIXEL_BINS = 256  # 8-bit pixels: stored as p * 2/255 - 1, read back by to_pixels


def to_pixels(x: Tensor, bins: int = PIXEL_BINS) -> Tensor:
    """[-1, 1] images -> integer pixel values ``0 .. bins-1`` (as floats); the inverse of
    how :func:`load_image` stores 8-bit pixels."""
    return ((x.float() + 1.0) * ((bins - 1) / 2.0)).round().clamp(0, bins - 1)


def to_uint8(images: Tensor) -> np.ndarray:
    """[-1, 1] NCHW images -> their 8-bit pixels (:func:`to_pixels`) as uint8 NHWC arrays,
    what PNG files and pictures hold."""
    return to_pixels(images.detach().cpu()).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def load_image(path: str | Path, size: int, channels: int) -> Tensor:
    """One image as float32 ``[channels, size, size]`` in [-1, 1]; DataError if unreadable."""
    _check_format(size, channels)
    try:
        return _to_tensor(_decode(path, size, channels))
    except Exception as e:  # noqa: BLE001 -- Pillow raises many types for bad files
        raise DataError(f"cannot read image '{path}' ({_reason(e)}: {e}); "
                        f"replace it with a valid png/jpg/webp/bmp file") from None


def native_format(report: ScanReport) -> tuple[int, int]:
    """``(shorter side, channels)`` of the first image: the defaults when none are configured."""
    with Image.open(report.files[0]) as im:
        return min(im.size), 1 if im.mode in _GRAY_MODES else 3


# ---- data sets -------------------------------------------------------------------------------
class ImageFolderDataset(Dataset):
    """Streams a folder of images: item ``i`` is ``{'x': [C, size, size], 'y': int64}``."""

    def __init__(self, root: str | Path, size: int, channels: int,
                 report: ScanReport | None = None, flag_bad: bool = False):
        _check_format(size, channels)
        # flag_bad: items carry 'bad' (the requested index when its file failed, else -1) and
        # nothing is warned here; the training source decides (data.on_bad) in the main process
        self.flag_bad = flag_bad
        report = report if report is not None else scan_folder(root)
        self.root = report.root or Path(root)
        self.class_names = list(report.class_names)
        # Plain strings and ints (not the report's Paths) pickle quickly to DataLoader workers.
        self.paths = [str(p) for p in report.files]
        self.labels = list(report.labels)
        self.size, self.channels = size, channels
        self.failures: dict[str, str] = {}  # path -> reason, seen by this process

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        n = len(self.paths)
        for k in range(n):
            j = (index + k) % n
            if self.paths[j] in self.failures:
                continue
            try:
                pixels = _decode(self.paths[j], self.size, self.channels)
            except Exception as e:  # noqa: BLE001 -- one bad file must not kill a worker
                self._record_failure(self.paths[j], e)
                continue
            item = {"x": _to_tensor(pixels), "y": torch.tensor(self.labels[j])}
            if self.flag_bad:
                item["bad"] = torch.tensor(index if k > 0 else -1)
            return item
        raise DataError(f"none of the {n} images in '{self.root}' could be decoded; "
                        f"check the files (e.g. '{self.paths[0]}')")

    def _record_failure(self, path: str, exc: Exception) -> None:
        self.failures[path] = _reason(exc)
        if self.flag_bad:
            return
        warnings.warn(f"skipping unreadable image '{path}' ({self.failures[path]}: {exc}); "
                      f"the next image is used in its place", stacklevel=2)


def bad_file_error(path: str | Path) -> DataError:
    """The error for an image that failed while training, with the reason found by decoding
    it once more here (the worker that met it may be another process)."""
    try:
        _decode(path, 8, 1)
        reason = "could not be read a moment ago"
    except Exception as e:  # noqa: BLE001 -- any decoding failure is the reason
        reason = f"{_reason(e)}: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}"
    return DataError(f"cannot read image '{path}' ({reason}); training stopped (data.on_bad=error): "
                     "replace or remove the file, or set data.on_bad=skip to skip such files")


def load_folder_tensor(root: str | Path, size: int, channels: int,
                       report: ScanReport | None = None,
                       workers: int = 0) -> tuple[Tensor, Tensor, ScanReport]:
    """Decode a whole folder into ``(x float32 [N, C, size, size], y int64 [N], report)``.

    Each file is decoded once, by ``workers`` threads (0 = up to 8); files that fail are
    dropped and counted in the returned report (a new one: ``report`` is not modified).
    """
    _check_format(size, channels)
    scanned = report if report is not None else scan_folder(root, verify=False)
    out = dataclasses.replace(scanned, files=[], labels=[], skipped=dict(scanned.skipped),
                              examples=dict(scanned.examples))
    x = torch.empty(len(scanned.files), channels, size, size, dtype=torch.float32)
    decode = _safe_decoder(size, channels)
    for path, label, result in zip(scanned.files, scanned.labels,
                                   _ordered_map(decode, scanned.files, workers)):
        if isinstance(result, str):
            out.skip(result, path)
            continue
        _to_tensor(result, out=x[len(out.files)])
        out.files.append(path)
        out.labels.append(label)
    if not out.files:
        raise _no_usable(out)
    if len(out.files) < len(x):
        x = x[: len(out.files)].clone()  # release the slots of the failed files
    return x, torch.tensor(out.labels, dtype=torch.int64), out


def _safe_decoder(size: int, channels: int) -> Callable[[Path], np.ndarray | str]:
    def decode(path: Path) -> np.ndarray | str:
        try:
            return _decode(path, size, channels)
        except Exception as e:  # noqa: BLE001 -- counted and skipped by the caller
            return _reason(e)

    return decode


def _ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 0,
                 chunk: int = 512) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in order, holding at most ``chunk`` results.

    Pillow releases the GIL while it reads, decodes and resizes, so threads help.
    """
    items = list(items)
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(items), chunk):
            yield from pool.map(fn, items[start:start + chunk])
