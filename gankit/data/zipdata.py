"""Image data sets packed in one zip file: the layout of StyleGAN2-ADA's ``dataset_tool.py``.

A packed data set is a zip of image files (PNG, stored uncompressed, named
``00000/img00000000.png``) and an optional ``dataset.json``:
``{"labels": [["00000/img00000000.png", 3], ...]}`` or ``{"labels": null}``. The images are
the members with an image extension, in sorted name order (StyleGAN2-ADA's order); a label
is an integer class or, as StyleGAN2-ADA also allows, a one-hot float vector (read as its
class). ``gankit data pack`` adds ``"class_names"`` (the sub-folder names or tag texts) so
that names and text conditions survive packing; StyleGAN2-ADA ignores the extra key, and a
zip without it names its classes "0", "1", ...

One file instead of 70k: a start reads one directory and decodes small PNGs, which is what
makes training start fast (BENCHMARKS.md, "Export and data").
"""
from __future__ import annotations

import contextlib
import io
import json
import mmap
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from gankit.config import DataConfig
from gankit.data import folders
from gankit.data.folders import IMAGE_EXTENSIONS, ScanReport
from gankit.data.info import DataInfo
from gankit.data.sources import Loaded, data_source
from gankit.errors import ConfigError, DataError

LABELS_FILE = "dataset.json"


@dataclass
class ZipIndex:
    """The images of a packed data set (member names, sorted) and their class labels."""

    path: Path
    names: list[str]
    labels: list[int]
    class_names: list[str]
    infos: dict[str, zipfile.ZipInfo] = field(default_factory=dict, repr=False)  # name -> entry

    def native_format(self) -> tuple[int, int]:
        """``(shorter side, channels)`` of the first image."""
        with open_members(self) as read, Image.open(io.BytesIO(read(self.names[0]))) as im:
            return min(im.size), 1 if im.mode in folders._GRAY_MODES else 3


def is_zip_dataset(path: str | Path) -> bool:
    """Whether ``path`` names a zip file (a packed data set)."""
    return Path(path).suffix.lower() == ".zip" and Path(path).is_file()


def read_index(path: str | Path) -> ZipIndex:
    """List a packed data set's images and read their labels; DataError when it is not one."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            meta = json.loads(zf.read(LABELS_FILE)) if LABELS_FILE in infos else {}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"cannot read zip data set '{path}' ({e}); pack one with: gankit data pack "
                        "FOLDER --out DATA.zip") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"'{path}': {LABELS_FILE} is not valid JSON ({e})") from None
    names = sorted(n for n in infos if _is_image_member(n))
    if not names:
        raise DataError(f"zip data set '{path}' holds no images ({'/'.join(IMAGE_EXTENSIONS)})")
    labels, class_names = _read_labels(meta, names, path)
    return ZipIndex(path, names, labels, class_names, {n: infos[n] for n in names})


def _is_image_member(name: str) -> bool:
    """An image file, not hidden (string operations: pathlib costs seconds on 70k names)."""
    parts = name.split("/")
    hidden = any(p.startswith(".") for p in parts)  # e.g. macOS's __MACOSX/._x.png copies too
    return not name.endswith("/") and not hidden and "__MACOSX" not in parts \
        and name[name.rfind("."):].lower() in IMAGE_EXTENSIONS


def _read_labels(meta: object, names: list[str], path: Path) -> tuple[list[int], list[str]]:
    """Class labels in ``names`` order and the class names (see the module docstring)."""
    raw = meta.get("labels") if isinstance(meta, dict) else None
    if raw is None:
        return [0] * len(names), []
    try:
        table = {str(k).replace("\\", "/"): v for k, v in raw}
    except (TypeError, ValueError):
        raise DataError(f"'{path}': {LABELS_FILE} 'labels' must be a list of [file name, label] "
                        "pairs or null") from None
    missing = [n for n in names if n not in table]
    if missing:
        raise DataError(f"'{path}': {LABELS_FILE} has no label for {len(missing)} image(s), "
                        f"e.g. '{missing[0]}'; give every image a label or set labels to null")
    labels = [_class_of(table[n], n, path) for n in names]
    names_given = meta.get("class_names") if isinstance(meta, dict) else None
    count = max(labels) + 1
    if isinstance(names_given, list) and len(names_given) >= count \
            and all(isinstance(c, str) for c in names_given):
        return labels, list(names_given)
    return labels, [str(i) for i in range(count)]


def _class_of(label: object, name: str, path: Path) -> int:
    """An integer class, or the class of a one-hot vector; DataError for anything else."""
    if isinstance(label, int) and not isinstance(label, bool) and label >= 0:
        return label
    if isinstance(label, list) and label and all(isinstance(v, (int, float)) for v in label):
        values = np.asarray(label, dtype=np.float64)
        if np.count_nonzero(values) == 1 and values.max() == 1:
            return int(values.argmax())
        raise DataError(f"'{path}': the label of '{name}' is a vector that is not one-hot; gankit "
                        "conditions on classes, not on continuous label vectors")
    raise DataError(f"'{path}': the label of '{name}' is {label!r}; labels must be class indices "
                    "(integers >= 0) or one-hot vectors")


def decode_member(data: bytes, size: int, channels: int) -> np.ndarray:
    """uint8 pixels of one stored image, centre-cropped and resized to ``size`` as a folder's.

    A plain PNG already of the asked format (as :func:`png_bytes` writes) is read without
    Pillow, ~20x faster; any other image goes through the folder decoder."""
    pixels = _plain_png(data, size, channels)
    return pixels if pixels is not None else folders._decode(io.BytesIO(data), size, channels)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (grey, RGB)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A valid PNG of uint8 ``[H, W]`` or ``[H, W, 3]`` pixels, stored as a plain one: rows
    unfiltered, zlib level 0 (dataset_tool.py also stores PNGs uncompressed; without filters
    they also read back without Pillow, see :func:`decode_member`)."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.zeros((h, 1 + w * channels), np.uint8)  # filter byte 0 (None) on every row
    rows[:, 1:] = pixels.reshape(h, -1)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + \
        _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _plain_png(data: bytes, size: int, channels: int) -> np.ndarray | None:
    """The pixels of an 8-bit, non-interlaced, ``size x size`` PNG of ``channels`` whose
    chunks are only IHDR, IDAT and IEND and whose rows are unfiltered; None otherwise."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        else:  # a palette, transparency, gamma...: Pillow knows what they mean
            return None
    if header != (size, size, 8, _COLOR_TYPES[channels], 0, 0, 0):
        return None
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        return None
    if len(raw) != size * (1 + size * channels):
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(size, 1 + size * channels)
    if rows[:, 0].any():  # filtered rows: leave them to Pillow
        return None
    pixels = np.array(rows[:, 1:]).reshape(size, size, channels)  # a writable copy
    return pixels[:, :, 0] if channels == 1 else pixels


class ZipImageDataset(Dataset):
    """Streams a packed data set: item ``i`` is ``{'x': [C, size, size], 'y': int64}``.

    Each process (a DataLoader worker) opens its own handle on the zip, lazily."""

    def __init__(self, index: ZipIndex, size: int, channels: int, flag_bad: bool = False):
        self.zip_path, self.names = str(index.path), list(index.names)
        self.labels, self.class_names = list(index.labels), list(index.class_names)
        self.paths = [f"{self.zip_path}:{n}" for n in self.names]  # how errors name an item
        self.size, self.channels, self.flag_bad = size, channels, flag_bad
        self.failures: dict[str, str] = {}
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": -1}  # a handle does not cross processes

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, j: int) -> bytes:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.zip_path), os.getpid()
        return self._zip.read(self.names[j])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        n = len(self.names)
        for k in range(n):  # a bad member is replaced by the next readable one, as in folders
            j = (index + k) % n
            if self.paths[j] in self.failures:
                continue
            try:
                pixels = decode_member(self._read(j), self.size, self.channels)
            except Exception as e:  # noqa: BLE001 -- one bad member must not kill a worker
                self.failures[self.paths[j]] = folders._reason(e)
                continue
            item = {"x": folders._to_tensor(pixels), "y": torch.tensor(self.labels[j])}
            if self.flag_bad:
                item["bad"] = torch.tensor(index if k > 0 else -1)
            return item
        raise DataError(f"none of the {n} images in '{self.zip_path}' could be decoded")

    def bad_file_error(self, path: str) -> DataError:
        """The error for a member that failed while training (``data.on_bad=error``)."""
        zip_path, name = path.rsplit(":", 1) if path.startswith(self.zip_path) else (self.zip_path, path)
        try:
            with zipfile.ZipFile(zip_path) as zf:
                decode_member(zf.read(name), 8, 1)
            reason = "could not be read a moment ago"
        except Exception as e:  # noqa: BLE001 -- any failure is the reason
            reason = f"{folders._reason(e)}: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}"
        return DataError(f"cannot read image '{path}' ({reason}); training stopped (data.on_bad="
                         "error): repack the data, or set data.on_bad=skip to skip such images")


def load_zip_tensor(index: ZipIndex, size: int, channels: int,
                    workers: int = 0) -> tuple[Tensor, Tensor, ScanReport]:
    """Decode a whole packed data set into ``(x float32 [N, C, size, size], y int64 [N],
    report)``; members that fail to decode are dropped and counted in the report.

    Plain PNGs (see :func:`decode_member`) are read in this thread: a thread pool's
    bookkeeping would cost more than their decoding. Pixels are gathered as uint8 and turned
    into floats in large blocks: one conversion per image cost as much as reading it."""
    report = ScanReport([], [], list(index.class_names), root=index.path)
    pixels = np.empty((len(index.names), size, size, channels), np.uint8)
    kept: list[int] = []
    with open_members(index) as read:
        def decode(name: str) -> np.ndarray | str:
            try:
                return decode_member(read(name), size, channels)
            except Exception as e:  # noqa: BLE001 -- counted and skipped below
                return folders._reason(e)

        if not isinstance(decode(index.names[0]), str) and \
                _plain_png(read(index.names[0]), size, channels) is not None:
            workers = 1
        for i, result in enumerate(folders._ordered_map(decode, index.names, workers)):
            if isinstance(result, str):
                report.skip(result, Path(f"{index.path}:{index.names[i]}"))
                continue
            pixels[len(kept)] = result.reshape(size, size, channels)
            kept.append(i)
    if not kept:
        raise DataError(f"no image in '{index.path}' could be decoded ({report.skipped_text()})")
    report.labels = [index.labels[i] for i in kept]
    x = torch.empty(len(kept), channels, size, size, dtype=torch.float32)
    for s in range(0, len(x), _BLOCK):
        block = torch.from_numpy(pixels[s:s + _BLOCK]).permute(0, 3, 1, 2)
        x[s:s + _BLOCK].copy_(block).mul_(2.0 / 255.0).sub_(1.0)  # as folders._to_tensor
    return x, torch.tensor(report.labels, dtype=torch.int64), report


_BLOCK = 1024  # images converted to float at a time
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # a zip member's local file header (30 bytes)


@contextlib.contextmanager
def open_members(index: ZipIndex) -> Iterator[Callable[[str], bytes]]:
    """``name -> bytes`` for the members of ``index``: stored (uncompressed) ones sliced
    straight from a memory map of the zip, without ZipFile's per-member overhead and without
    reading its directory again; the others read by ZipFile.

    The PNG inside is checked by its own decoder (zlib's checksum, the expected size)."""
    with open(index.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        opened: list[zipfile.ZipFile] = []

        def read(name: str) -> bytes:
            info = index.infos.get(name)
            if info is None or info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                if not opened:  # deflated or encrypted: ZipFile knows how
                    opened.append(zipfile.ZipFile(f))
                return opened[0].read(name)
            header = _LOCAL_HEADER.unpack_from(view, info.header_offset)
            if header[0] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local header for '{name}'")
            begin = info.header_offset + _LOCAL_HEADER.size + header[-2] + header[-1]
            return view[begin:begin + info.compress_size]

        try:
            yield read
        finally:
            for zf in opened:
                zf.close()


def _claims(cfg: DataConfig) -> bool:
    return is_zip_dataset(cfg.source)


@data_source("zip", order=55, claims=_claims)
def _zip_source(cfg: DataConfig, seed: int) -> Loaded:
    """A packed data set (``gankit data pack`` or StyleGAN2-ADA's dataset_tool.py): in memory
    when small enough (``data.resident``), else streamed from the zip."""
    if cfg.tags:
        raise ConfigError(f"data.tags applies to image folders; '{cfg.source}' is packed: pack "
                          "the folder with its tags (gankit data pack FOLDER --tags FILE)")
    index = read_index(cfg.source)
    native_size, native_channels = index.native_format()
    size, channels = cfg.image_size or native_size, cfg.channels or native_channels
    info = DataInfo("image", (channels, size, size), name=str(index.path),
                    num_classes=len(index.class_names), class_names=index.class_names,
                    size=len(index.names))
    nbytes = len(index.names) * channels * size * size * 4
    if cfg.resident == "yes" or (cfg.resident == "auto" and nbytes <= cfg.resident_max_mb * 2**20):
        x, y, report = load_zip_tensor(index, size, channels)
        if report.skipped:
            print(f"data: {report.summary()}")
        info.size = len(x)
        return {"x": x, "y": y}, None, info
    return None, ZipImageDataset(index, size, channels, flag_bad=True), info
