"""Image-to-image data: paired (pix2pix) and unpaired (CycleGAN) images, batches ``{a, b}``.

Layouts (``data.layout``):

* ``ab``: a folder of side-by-side images, the input A on the left half and the target B on
  the right (the public pix2pix data sets); an image of odd width is a DataError;
* ``aligned``: a folder with sub-folders ``A/`` and ``B/`` holding files of the same names
  (extensions may differ); a file without its counterpart is a DataError;
* ``unpaired``: a folder with ``trainA/`` and ``trainB/`` (the public CycleGAN data sets),
  sizes may differ; ``testA/``/``testB/`` are the held-out sets. Each side keeps its own
  resumable order, so no pairing is ever implied.

Built-in tasks made from MNIST-5k (1x28x28):

* ``mnist5k_edges`` (paired): A is the one-pixel outline around the strokes, B the digit;
* ``mnist5k_thick`` (unpaired): A holds plain digits, B dilated (bold) digits, drawn from
  *disjoint* halves of the training digits so that no digit appears in both styles.
  The held-out digits (``data.held_out``) are given in both styles, with their labels.

``data.direction=BtoA`` swaps the sides: batch key ``a`` is always the model's input side.

Unreadable files follow ``data.on_bad``. Paired folders are listed without verifying each
file (a file skipped at the scan would leave its counterpart unmatched), so a damaged file
is met when its pair is decoded: ``error`` (the default) stops with the file's name,
``skip`` leaves its pair out (in memory) or gives the next readable pair in its place and
counts it (streamed, as an image folder does). Each unpaired side is an image folder and
is treated as one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import Dataset

from gankit.config import DataConfig
from gankit.data import folders
from gankit.data.builtin import mnist5k_uint8, split_indices
from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, StreamingSource
from gankit.errors import ConfigError, DataError

PAIRED_BUILTINS = ("mnist5k_edges",)
UNPAIRED_BUILTINS = ("mnist5k_thick",)
PAIRED_LAYOUTS = ("ab", "aligned")
LAYOUTS = ("auto", "single", "ab", "aligned", "unpaired")
SPLIT_SEED = 0  # the built-in splits ignore train.seed: every run shares one test set
DEFAULT_SIZE = 64


def _check_layout(cfg: DataConfig) -> None:
    if cfg.layout not in LAYOUTS:
        raise ConfigError(f"data.layout must be one of {', '.join(LAYOUTS)}; got '{cfg.layout}'")
    if cfg.direction not in ("AtoB", "BtoA"):
        raise ConfigError(f"data.direction must be AtoB or BtoA; got '{cfg.direction}'")


def is_paired(cfg: DataConfig) -> bool:
    """Whether ``cfg`` describes paired data (a built-in paired task or layout ab/aligned)."""
    _check_layout(cfg)
    return cfg.source in PAIRED_BUILTINS or cfg.layout in PAIRED_LAYOUTS


def is_unpaired(cfg: DataConfig) -> bool:
    """Whether ``cfg`` describes unpaired data (the built-in unpaired task or layout unpaired)."""
    _check_layout(cfg)
    return cfg.source in UNPAIRED_BUILTINS or cfg.layout == "unpaired"


def _orient(a: Tensor, b: Tensor, cfg: DataConfig) -> tuple[Tensor, Tensor]:
    return (b, a) if cfg.direction == "BtoA" else (a, b)


# ---- the built-in tasks ----------------------------------------------------------------------
def mnist_digits() -> tuple[Tensor, Tensor]:
    """MNIST-5k as float32 [5000, 1, 28, 28] in [-1, 1] and the labels."""
    images, labels = mnist5k_uint8()
    return images.float().div(127.5).sub(1.0), labels.clone()


def outline(x: Tensor) -> Tensor:
    """The pixels just outside the strokes (ink = pixel > 0 in [-1, 1]) as white on black."""
    ink = (x > 0).float()
    ring = F.max_pool2d(ink, 3, stride=1, padding=1) - ink
    return ring * 2.0 - 1.0


def thicken(x: Tensor) -> Tensor:
    """Grey-level dilation by a 3x3 square: bolder strokes of the same digit."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def _builtin_info(name: str, kind: str, n: int) -> DataInfo:
    from gankit.data.builtin import DIGIT_NAMES

    return DataInfo(kind, (1, 28, 28), name=name, num_classes=10, class_names=list(DIGIT_NAMES), size=n)


def mnist_edges(cfg: DataConfig) -> tuple[dict[str, Tensor], DataInfo]:
    """The paired edge -> digit task on all 5,000 digits (the caller holds some out)."""
    x, y = mnist_digits()
    a, b = _orient(outline(x), x, cfg)
    return {"a": a, "b": b, "y": y}, _builtin_info("mnist5k_edges", "paired", len(x))


def thick_split(held_out: float) -> tuple[Tensor, Tensor, Tensor]:
    """Indices of the A half, the B half (disjoint) and the held-out digits of mnist5k_thick."""
    n = 5000
    if held_out > 0:
        train, test = split_indices(n, held_out, SPLIT_SEED)
    else:
        train, test = torch.arange(n), torch.zeros(0, dtype=torch.int64)
    perm = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED + 1))]
    half = len(perm) // 2
    return perm[:half].sort().values, perm[half:].sort().values, test


def mnist_thick(cfg: DataConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(A images, B images, A labels, B labels) of the unpaired plain -> bold task."""
    x, y = mnist_digits()
    ia, ib, _ = thick_split(cfg.held_out)
    a, b, ya, yb = x[ia], thicken(x[ib]), y[ia], y[ib]
    return (b, a, yb, ya) if cfg.direction == "BtoA" else (a, b, ya, yb)


# ---- AB folders and aligned folders ----------------------------------------------------------
class UnreadableImage(DataError):
    """An image file of a pair that does not decode (``path`` names it)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def _open(path: Path, channels: int) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return folders._convert(im, channels)
    except Exception as e:  # noqa: BLE001 -- Pillow raises many types for bad files
        raise UnreadableImage(f"cannot read image '{path}' ({e}); replace it with a valid image",
                              path) from None


def _to_tensor(im: Image.Image, size: int) -> Tensor:
    import numpy as np

    pixels = np.array(folders._resize_center(im, size), dtype=np.uint8)
    return folders._to_tensor(pixels)


def load_ab_image(path: Path, size: int, channels: int) -> tuple[Tensor, Tensor]:
    """The left (A) and right (B) halves of a side-by-side image, each ``[C, size, size]``."""
    im = _open(path, channels)
    w, h = im.size
    if w % 2:
        raise DataError(f"AB image '{path}' is {w} px wide; side-by-side pairs need an even width "
                        f"(A on the left half, B on the right); fix it or use data.layout=aligned")
    left, right = im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))
    return _to_tensor(left, size), _to_tensor(right, size)


def _aligned_files(root: Path) -> list[tuple[Path, Path]]:
    """(A file, B file) pairs of an aligned folder, matched by path without extension."""
    sides = []
    for side in ("A", "B"):
        if not (root / side).is_dir():
            raise DataError(f"data.layout=aligned needs sub-folders 'A' and 'B' in '{root}'; "
                            f"'{root / side}' is missing")
        report = folders.scan_folder(root / side, verify=False)  # decoding decides (data.on_bad)
        sides.append({p.relative_to(root / side).with_suffix("").as_posix(): p for p in report.files})
    a, b = sides
    unmatched = sorted(set(a) ^ set(b))
    if unmatched:
        where = "A" if unmatched[0] in a else "B"
        raise DataError(f"{len(unmatched)} file(s) of the aligned folders have no counterpart, e.g. "
                        f"'{where}/{unmatched[0]}' in '{root}'; give A and B the same file names")
    return [(a[k], b[k]) for k in sorted(a)]


class PairedFolderDataset(Dataset):
    """Item ``i`` is ``{'a': [C, s, s], 'b': [C, s, s], 'bad': int64}`` from an AB image or an
    aligned pair. When a file of pair ``i`` does not decode, the next readable pair (``i+1``,
    ``i+2``, ... wrapping around) comes in its place with ``bad = i`` (else -1), as in
    :class:`~gankit.data.folders.ImageFolderDataset` for training: the source applies
    ``data.on_bad`` and names the file through :attr:`paths`."""

    def __init__(self, items: list, size: int, channels: int, layout: str, swap: bool):
        self.items, self.size, self.channels = items, size, channels
        self.layout, self.swap = layout, swap
        self.paths = _PairPaths(items, layout)

    def __len__(self) -> int:
        return len(self.items)

    def read(self, i: int) -> tuple[Tensor, Tensor]:
        """Pair ``i`` as (A, B); :class:`UnreadableImage` when one of its files does not decode."""
        if self.layout == "ab":
            return load_ab_image(self.items[i], self.size, self.channels)
        return tuple(_load_side(p, self.size, self.channels) for p in self.items[i])  # type: ignore[return-value]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        n = len(self.items)
        for k in range(n):
            try:
                a, b = self.read((index + k) % n)
            except UnreadableImage:
                continue
            pair = {"a": b, "b": a} if self.swap else {"a": a, "b": b}
            return {**pair, "bad": torch.tensor(index if k > 0 else -1)}
        raise DataError(f"none of the {n} pairs of images could be decoded; check the files "
                        f"(e.g. '{self.paths[0]}')")


def _load_side(path: Path, size: int, channels: int) -> Tensor:
    try:
        return folders.load_image(path, size, channels)
    except DataError as e:
        raise UnreadableImage(str(e), path) from None


class _PairPaths:
    """``paths[i]``: the file to name for pair ``i`` (an AB image; of an aligned pair, the
    side that fails to decode, else A's)."""

    def __init__(self, items: list, layout: str):
        self.items, self.layout = items, layout

    def __getitem__(self, i: int) -> Path:
        if self.layout == "ab":
            return self.items[i]
        for path in self.items[i]:
            try:
                folders.load_image(path, 8, 1)
            except DataError:
                return path
        return self.items[i][0]


def _native_channels(paths: list[Path]) -> int:
    """1 when the first file that opens is greyscale, else 3 (a damaged file is met later)."""
    for path in paths:
        try:
            with Image.open(path) as im:
                return 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3
        except Exception:  # noqa: BLE001 -- any file that does not open is skipped here
            continue
    raise DataError(f"none of the {len(paths)} images (e.g. '{paths[0]}') can be opened; check the files")


def _resident_pairs(dataset: PairedFolderDataset, on_bad: str) -> dict[str, Tensor]:
    """Every pair decoded once; an unreadable file stops (``data.on_bad=error``, naming it)
    or leaves its pair out (``skip``, with a count)."""
    pairs, bad = [], []
    for i in range(len(dataset)):
        try:
            a, b = dataset.read(i)
        except UnreadableImage as e:
            if on_bad == "error":
                raise DataError(f"{e} (or set data.on_bad=skip to leave such pairs out)") from None
            bad.append(e.path)
            continue
        pairs.append({"a": b, "b": a} if dataset.swap else {"a": a, "b": b})
    if not pairs:
        raise DataError(f"none of the {len(dataset)} pairs of images could be decoded; check the "
                        f"files (e.g. '{bad[0]}')")
    if bad:
        print(f"data: {len(bad)} pair(s) left out, their images unreadable (data.on_bad=skip), "
              f"e.g. '{bad[0]}'")
    return {k: torch.stack([p[k] for p in pairs]) for k in ("a", "b")}


def _paired_folder(cfg: DataConfig) -> tuple[dict[str, Tensor] | None, Dataset | None, DataInfo]:
    root = Path(cfg.source)
    if not root.is_dir():
        raise DataError(f"data.layout={cfg.layout} needs a folder, but '{root}' is not one; "
                        "fix data.source")
    if cfg.layout == "ab":
        items: list = folders.scan_folder(root, verify=False).files  # decoding decides (data.on_bad)
        firsts = items
    else:
        items = _aligned_files(root)
        firsts = [a for a, _ in items]
    size = cfg.image_size or DEFAULT_SIZE
    channels = cfg.channels or _native_channels(firsts)
    dataset = PairedFolderDataset(items, size, channels, cfg.layout, cfg.direction == "BtoA")
    info = DataInfo("paired", (channels, size, size), name=str(root), size=len(items))
    nbytes = 2 * len(items) * channels * size * size * 4
    if cfg.resident == "no" or (cfg.resident == "auto" and nbytes > cfg.resident_max_mb * 2**20):
        return None, dataset, info
    tensors = _resident_pairs(dataset, cfg.on_bad)
    info.size = len(tensors["a"])
    return tensors, None, info


def load_paired(cfg: DataConfig) -> tuple[dict[str, Tensor] | None, Dataset | None, DataInfo]:
    """Every pair of ``data.source`` (before any held-out split): tensors or a Dataset."""
    if cfg.source in PAIRED_BUILTINS:
        tensors, info = mnist_edges(cfg)
        if cfg.image_size or cfg.channels:
            raise ConfigError(f"the built-in task '{cfg.source}' is 1x28x28; leave data.image_size "
                              "and data.channels at 0")
        return tensors, None, info
    if cfg.layout not in PAIRED_LAYOUTS:
        raise ConfigError(f"paired data needs data.layout=ab or aligned, got '{cfg.layout}'")
    return _paired_folder(cfg)


# ---- unpaired data ---------------------------------------------------------------------------
def _side_folder(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        raise DataError(f"data.layout=unpaired needs folders 'trainA' and 'trainB' in '{root}'; "
                        f"'{folder}' is missing")
    return folder


def _scan_side(folder: Path) -> folders.ScanReport:
    try:
        return folders.scan_folder(folder)
    except DataError as e:
        raise DataError(f"{folder.name} is unusable for unpaired training: {e}") from None


def _side_source(folder: Path, cfg: DataConfig, size: int, channels: int, seed: int,
                 device: torch.device, rank: int, world: int):
    """One side as an image folder is read: what the scan or the in-memory decode skips is
    reported in one line; a file damaged later meets ``data.on_bad`` in the streaming source."""
    report = _scan_side(folder)
    info = DataInfo("image", (channels, size, size), name=str(folder), size=len(report))
    nbytes = len(report) * channels * size * size * 4
    if cfg.resident == "yes" or (cfg.resident == "auto" and nbytes <= cfg.resident_max_mb * 2**20):
        x, _, report = folders.load_folder_tensor(folder, size, channels, report=report)
        _report_skipped(report)
        info.size = len(x)
        return ResidentSource({"x": x}, info, cfg.batch_size, seed, device, rank, world)
    _report_skipped(report)
    dataset = folders.ImageFolderDataset(folder, size, channels, report=report, flag_bad=True)
    return StreamingSource(dataset, info, cfg.batch_size, seed, device, cfg.workers, rank, world,
                           on_bad=cfg.on_bad)


def _report_skipped(report: folders.ScanReport) -> None:
    if sum(report.skipped.values()):
        print(f"data: {report.summary()}")


class UnpairedSource:
    """Batches ``{a, b}`` from two sources, each in its own resumable order."""

    def __init__(self, source_a: Any, source_b: Any, info: DataInfo):
        self.a, self.b, self.info = source_a, source_b, info

    def next_batch(self) -> dict[str, Tensor]:
        return {"a": self.a.next_batch()["x"], "b": self.b.next_batch()["x"]}

    @property
    def bad_files(self) -> set[tuple[str, int]]:
        """The files of either side met unreadable while streaming (``data.on_bad=skip``)."""
        return {(side, i) for side, src in (("a", self.a), ("b", self.b))
                for i in getattr(src, "bad_files", ())}

    def log_values(self) -> dict[str, float]:
        """``data/skipped`` over both sides when a streamed side counts them."""
        if not any(getattr(src, "log_values", dict)() for src in (self.a, self.b)):
            return {}
        return {"data/skipped": float(len(self.bad_files))}

    def state_dict(self) -> dict[str, Any]:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])

    def reference_subset(self, max_items: int | None) -> str:
        return self.b.reference_subset(max_items)

    def iter_items(self, batch_size: int, max_items: int | None = None) -> Iterator[dict[str, Tensor]]:
        """The target side (B) as the sources' ``iter_items`` chooses it, as ``{'x': ...}`` (for FID in that domain)."""
        for batch in self.b.iter_items(batch_size, max_items):
            yield {"x": batch["x"]}


# The B order is seeded apart from the A order, so the two never move in step.
B_SEED_OFFSET = 7919


def build_unpaired_source(cfg: DataConfig, seed: int, device: torch.device, rank: int = 0,
                          world: int = 1) -> UnpairedSource:
    """The training source of unpaired data: a built-in task or trainA/trainB folders."""
    if cfg.condition != "none":
        raise ConfigError("unpaired data carries no condition; set data.condition=none")
    if cfg.source in UNPAIRED_BUILTINS:
        if cfg.image_size or cfg.channels:
            raise ConfigError(f"the built-in task '{cfg.source}' is 1x28x28; leave data.image_size "
                              "and data.channels at 0")
        a, b, _, _ = mnist_thick(cfg)
        info = DataInfo("image", (1, 28, 28), name=cfg.source)
        src_a = ResidentSource({"x": a}, info, cfg.batch_size, seed, device, rank, world)
        src_b = ResidentSource({"x": b}, info, cfg.batch_size, seed + B_SEED_OFFSET, device, rank, world)
        return UnpairedSource(src_a, src_b, _builtin_info(cfg.source, "unpaired", len(a) + len(b)))
    root = Path(cfg.source)
    if not root.is_dir():
        raise DataError(f"data.layout=unpaired needs a folder with trainA/ and trainB/; '{root}' "
                        "is not a folder")
    names = ("trainB", "trainA") if cfg.direction == "BtoA" else ("trainA", "trainB")
    folder_a, folder_b = (_side_folder(root, n) for n in names)
    size = cfg.image_size or DEFAULT_SIZE
    channels = cfg.channels or max(folders.native_format(_scan_side(f))[1] for f in (folder_a, folder_b))
    src_a = _side_source(folder_a, cfg, size, channels, seed, device, rank, world)
    src_b = _side_source(folder_b, cfg, size, channels, seed + B_SEED_OFFSET, device, rank, world)
    info = DataInfo("unpaired", (channels, size, size), name=str(root),
                    size=src_a.order.n + src_b.order.n)
    return UnpairedSource(src_a, src_b, info)


def unpaired_held_out(cfg: DataConfig, channels: int = 0) -> dict[str, Tensor]:
    """Held-out images of both sides: the built-in's held-out digits in both styles (with
    labels ``y``), or the folders ``testA``/``testB`` (as ``channels``-channel images)."""
    if cfg.source in UNPAIRED_BUILTINS:
        if cfg.held_out <= 0:
            raise ConfigError("this run holds no digits out (data.held_out=0); train with "
                              "data.held_out=0.1 to measure translations of unseen digits")
        x, y = mnist_digits()
        _, _, test = thick_split(cfg.held_out)
        a, b = _orient(x[test], thicken(x[test]), cfg)
        return {"a": a, "b": b, "y": y[test]}
    root = Path(cfg.source)
    names = ("testB", "testA") if cfg.direction == "BtoA" else ("testA", "testB")
    size, out = cfg.image_size or DEFAULT_SIZE, {}
    for key, name in zip("ab", names):
        if not (root / name).is_dir():
            raise DataError(f"held-out images need a '{name}' folder in '{root}'")
        report = _scan_side(root / name)
        side_channels = channels or cfg.channels or folders.native_format(report)[1]
        out[key] = folders.load_folder_tensor(root / name, size, side_channels, report=report)[0]
    return out
