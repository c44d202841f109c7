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

import contextvars
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
    workers = workers or min(8, available_cores())
    if workers <= 1 or len(items) < 2:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(items), chunk):
            yield from pool.map(fn, items[start:start + chunk])


# ---- the pixel cache of a large folder -------------------------------------------------------
# A 33k-image folder of JPEGs costs minutes of decoding at every start (and in every DataLoader
# epoch when streamed). Decoded once at the training size, its uint8 pixels fit one .npy file
# that the next run and ``gankit eval`` map into memory in a second.
CACHE_MIN_FILES = 2000  # below this a folder decodes in seconds: no cache file
CACHE_VERSION = 1  # bump when decoding changes what pixels a file gives


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cache_root(setting: str) -> Path | None:
    """Where folder caches live: ``data.cache_dir``, or ``folders/`` in gankit's cache
    (``$GANKIT_CACHE``, else ``~/.cache/gankit``) when empty; None for ``none`` (no cache)."""
    if setting == "none":
        return None
    if setting:
        return Path(setting).expanduser()
    return Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit") / "folders"


def cache_path(report: ScanReport, size: int, channels: int, root: Path) -> Path:
    """The cache file of ``report``'s files at ``size``/``channels``: keyed by the folder's
    path and every file's relative path, modification time and length, so any change to the
    folder (a file added, replaced or touched) makes a new cache."""
    import hashlib

    assert report.root is not None
    digest = hashlib.sha256(f"v{CACHE_VERSION} {report.root.resolve()} {size} {channels}\n".encode())
    for path in report.files:
        st = os.stat(path)
        digest.update(f"{path.relative_to(report.root)}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in report.root.resolve().name)
    return root / f"{name}-{size}px-{channels}c-{digest.hexdigest()[:20]}.npy"


@dataclass
class CachedPixels:
    """A folder's decoded pixels: ``path`` (uint8 ``[N, size, size, C]`` .npy over every scanned
    file), ``rows`` (the rows of the files that decoded) and the report of those files."""

    path: Path
    rows: list[int]
    report: ScanReport
    hit: bool  # read from an earlier run's cache rather than decoded now

    def array(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


def cached_pixels(report: ScanReport, size: int, channels: int, root: Path,
                  workers: int = 0) -> CachedPixels:
    """The pixels of ``report``'s files, from the cache under ``root`` or decoded into it
    (with progress on stderr); files that fail to decode are counted in the returned report."""
    import json

    _check_format(size, channels)
    npy = cache_path(report, size, channels, root)
    meta = npy.with_suffix(".json")
    if npy.is_file() and meta.is_file():
        bad = {int(k): v for k, v in json.loads(meta.read_text())["bad"].items()}
        return CachedPixels(npy, *_kept(report, bad), hit=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_name(npy.name + f".{os.getpid()}.tmp")
    try:
        bad = _decode_into(report, size, channels, tmp, workers)
        os.replace(tmp, npy)
    finally:
        tmp.unlink(missing_ok=True)
    tmp_meta = meta.with_name(meta.name + f".{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"root": str(report.root), "files": len(report.files),
                                    "size": size, "channels": channels, "bad": bad}))
    os.replace(tmp_meta, meta)
    return CachedPixels(npy, *_kept(report, bad), hit=False)


def _kept(report: ScanReport, bad: dict[int, str]) -> tuple[list[int], ScanReport]:
    out = dataclasses.replace(report, files=[], labels=[], skipped=dict(report.skipped),
                              examples=dict(report.examples))
    rows = []
    for i, (path, label) in enumerate(zip(report.files, report.labels)):
        if i in bad:
            out.skip(bad[i], path)
        else:
            rows.append(i)
            out.files.append(path)
            out.labels.append(label)
    if not rows:
        raise _no_usable(out)
    return rows, out


def _decode_into(report: ScanReport, size: int, channels: int, path: Path,
                 workers: int) -> dict[int, str]:
    """Decode every file into a new uint8 .npy at ``path``; {row: reason} of those that fail."""
    n = len(report.files)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, channels))
    bad: dict[int, str] = {}
    decode = _safe_decoder(size, channels)
    progress = _Progress(n, f"decoding {n} images of '{report.root}' at {size} px into the cache")
    for i, result in enumerate(_ordered_map(decode, report.files, workers or available_cores())):
        if isinstance(result, str):
            bad[i] = result
        else:
            arr[i] = result.reshape(size, size, channels)
        progress.update(i + 1)
    progress.close()
    arr.flush()
    del arr
    return bad


class _Progress:
    """tqdm on a terminal (when installed), else a plain line every 10% (logs stay short)."""

    def __init__(self, total: int, what: str):
        import sys
        import time

        self.total, self.what, self.start, self.shown = total, what, time.monotonic(), 0
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc="data", unit="img", leave=False)
            except ImportError:
                pass
        if self.bar is None:
            print(f"data: {what}", file=sys.stderr, flush=True)

    def update(self, done: int) -> None:
        import sys
        import time

        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif done * 10 // self.total > self.shown * 10 // self.total or done == self.total:
            self.shown = done
            print(f"data: {done}/{self.total} decoded ({time.monotonic() - self.start:.0f} s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class CachedFolderDataset(Dataset):
    """Items ``{'x', 'y'}`` read from a folder's pixel cache: no decoding while training. The
    array is opened in each process on first use (a memory map does not pickle to workers)."""

    def __init__(self, cache: CachedPixels):
        self.path, self.rows = str(cache.path), list(cache.rows)
        self.labels = list(cache.report.labels)
        self.class_names = list(cache.report.class_names)
        self._arr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arr": None}

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self._arr is None:
            self._arr = np.load(self.path, mmap_mode="r")
        pixels = np.array(self._arr[self.rows[index]])
        return {"x": _to_tensor(pixels[..., 0] if pixels.shape[-1] == 1 else pixels),
                "y": torch.tensor(self.labels[index])}


def pixels_to_tensor(arr: np.ndarray, rows: list[int]) -> Tensor:
    """uint8 ``[N, H, W, C]`` rows -> float32 ``[n, C, H, W]`` in [-1, 1], in chunks."""
    n, (h, w, c) = len(rows), arr.shape[1:]
    x = torch.empty(n, c, h, w, dtype=torch.float32)
    for start in range(0, n, 4096):
        chunk = torch.from_numpy(np.ascontiguousarray(arr[rows[start:start + 4096]]))
        x[start:start + len(chunk)] = chunk.permute(0, 3, 1, 2)
    return x.mul_(2.0 / 255.0).sub_(1.0)


# ---- what a start would do (gankit train --dry-run) -----------------------------------------
PLANNING: contextvars.ContextVar[bool] = contextvars.ContextVar("gankit_folder_planning", default=False)


def image_sizes(files: list[Path], sample: int = 200) -> str:
    """The pixel sizes among (a spread sample of) ``files``, read from headers only,
    e.g. '96x96 (200 of 200 sampled)' or '96x96 (150), 128x128 (50) of 200 sampled'."""
    from collections import Counter

    step = max(1, len(files) // sample)
    counts: Counter[str] = Counter()
    for path in files[::step][:sample]:
        try:
            with Image.open(path) as im:
                counts[f"{im.size[0]}x{im.size[1]}"] += 1
        except Exception:  # noqa: BLE001 -- an unreadable header: counted by the decode pass
            counts["unreadable"] += 1
    total = sum(counts.values())
    if len(counts) == 1:
        return f"{next(iter(counts))} ({total} of {total} sampled)"
    return ", ".join(f"{k} ({v})" for k, v in counts.most_common(4)) + f" of {total} sampled"


def plan_text(report: ScanReport, size: int, channels: int, cache_root: Path | None,
              resident: bool) -> str:
    """What loading this folder will do, for ``--dry-run``: images found, their sizes, what
    was skipped, and whether the pixels come from the cache or must be decoded (how long)."""
    import time

    lines = [f"data: {report.summary()}", f"data: sizes {image_sizes(report.files)}; "
             f"trained at {size}x{size}, {channels} channel(s), "
             f"{'in memory' if resident else 'streamed'}"]
    if cache_root is None:
        lines.append("data: no pixel cache (a small folder, or data.cache_dir=none); "
                     "files are decoded at each start")
        return "\n".join(lines)
    npy = cache_path(report, size, channels, cache_root)
    if npy.is_file():
        lines.append(f"data: pixels cached in '{npy}': the start reads them, no decoding")
        return "\n".join(lines)
    probe = report.files[:: max(1, len(report.files) // 50)][:50]
    start = time.perf_counter()
    for path in probe:
        _safe_decoder(size, channels)(path)
    per_file = (time.perf_counter() - start) / max(1, len(probe))
    est = per_file * len(report.files) / min(8, available_cores())
    lines.append(f"data: the first start decodes {len(report.files)} images once into '{npy}' "
                 f"(about {est:.0f} s here, timed on {len(probe)} files; "
                 f"{len(report.files) * size * size * channels / 2**20:.0f} MiB); later starts "
                 "and gankit eval read that file")
    return "\n".join(lines)
