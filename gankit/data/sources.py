"""The kinds of data ``data.source`` can name, each registered with :func:`data_source`.

A source kind is a loader ``load(cfg, seed) -> (tensors or None, Dataset or None, DataInfo)``
(every item, before the held-out split) plus ``claims(cfg)``: whether this kind reads
``cfg``. :func:`gankit.data.load_tensors` asks the kinds in ``order`` (lowest first) and the
first that claims the config loads it. ``builtins`` lists the kind's built-in names (shown
in errors and suggestions, in the order the kinds are registered here). ``identity(cfg,
seed, info)`` says what identifies the items beyond ``info.name`` (for statistics cache
keys) where the default of :func:`gankit.data.data_identity` (a path resolved, with its item
count; else the name) is not enough, e.g. for data drawn from ``seed``.

A kind whose items are not one set of tensors (unpaired image sets: two sides of different
sizes, each in its own order) also gives ``build(cfg, seed, device, rank, world)``, which
:func:`gankit.data.build_source` calls for its training batch source.

Adding a kind is one function here (or in its own module imported below) and one decorator.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.registry import Registry

DEFAULT_FOLDER_SIZE = 64

Loaded = tuple["dict[str, torch.Tensor] | None", object, DataInfo]


# (cfg, seed, device, rank, world) -> a batch source (next_batch, state_dict, iter_items, ...)
Build = Callable[[DataConfig, int, torch.device, int, int], object]


@dataclass(frozen=True)
class DataSource:
    name: str
    load: Callable[[DataConfig, int], Loaded]
    claims: Callable[[DataConfig], bool]
    order: int
    builtins: Callable[[], list[str]] | None = None
    identity: Callable[[DataConfig, int, DataInfo], str] | None = None
    # a kind whose items are not one set (unpaired sides, each in its own order) builds its
    # training batch source itself; the others are made resident or streaming from load
    build: Build | None = None


DATA_SOURCES: Registry[DataSource] = Registry("data source")


def data_source(name: str, *, order: int, claims: Callable[[DataConfig], bool],
                builtins: Callable[[], list[str]] | None = None,
                identity: Callable[[DataConfig, int, DataInfo], str] | None = None,
                build: Build | None = None) -> Callable:
    """Decorator: register ``load(cfg, seed)`` as the data source kind ``name`` (``build``:
    see :class:`DataSource`)."""
    def deco(load: Callable[[DataConfig, int], Loaded]) -> Callable[[DataConfig, int], Loaded]:
        DATA_SOURCES.add(name, DataSource(name, load, claims, order, builtins, identity, build))
        return load

    return deco


def source_for(cfg: DataConfig) -> DataSource | None:
    """The first kind, in ``order``, that claims ``cfg``; None when none does."""
    for source in sorted((s for _, s in DATA_SOURCES.items()), key=lambda s: s.order):
        if source.claims(cfg):
            return source
    return None


def builtin_names() -> list[str]:
    """Every built-in ``data.source`` name, kind by kind in registration order."""
    return [n for _, s in DATA_SOURCES.items() if s.builtins is not None for n in s.builtins()]


# ---- shared by the image and point-cloud kinds -----------------------------------------------
def convert_images(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Resize a [-1, 1] NCHW batch to ``size`` and convert it to ``channels`` (1 or 3)."""
    if channels and channels != x.shape[1]:
        if channels == 3 and x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif channels == 1 and x.shape[1] == 3:
            w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        else:
            raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")
    if size and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False).clamp_(-1, 1)
    return x


def _vector_info(cfg: DataConfig, x: torch.Tensor, name: str) -> DataInfo:
    """DataInfo of a point cloud, with its standardisation when ``data.standardize``."""
    info = DataInfo("vector", (x.shape[1],), name=name, size=len(x))
    if cfg.standardize:
        info.shift, info.scale = standardization(x)
    return info


def standardization(x: torch.Tensor) -> tuple[list[float], float]:
    """``(mean, scale)`` with ``(x - mean) / scale`` centred and of unit root-mean-square.

    One scale for every dimension: the cloud's shape (a ring stays a ring) is kept, only its
    size and position change, so a preset tuned on one mixture carries over to any other."""
    points = x.detach().cpu().double().numpy()  # numpy: no tensor reads by the host
    mean = points.mean(0)
    scale = float(np.sqrt(np.square(points - mean).sum(1).mean() / points.shape[1]))
    return mean.tolist(), scale if scale > 0 else 1.0  # one repeated point: only centre it


# ---- the kinds, in the order their built-in names are listed ---------------------------------
def _mixtures() -> list[str]:
    from gankit.data.toy import MIXTURES

    return sorted(MIXTURES)


def _is_mixture(cfg: DataConfig) -> bool:
    from gankit.data.toy import MIXTURES

    return cfg.source in MIXTURES


def _drawn_from_seed(cfg: DataConfig, seed: int, info: DataInfo) -> str:
    return f"{info.name} seed={seed} n={cfg.toy_samples}"


@data_source("toy", order=30, claims=_is_mixture, builtins=_mixtures, identity=_drawn_from_seed)
def _toy(cfg: DataConfig, seed: int) -> Loaded:
    """A 2-D Gaussian mixture (ring8, grid25) of ``data.toy_samples`` points."""
    from gankit.data import toy

    x, y = toy.sample_mixture(cfg.source, cfg.toy_samples, seed=seed)
    return {"x": x, "y": y}, None, _vector_info(cfg, x, cfg.source)


def _image_names() -> list[str]:
    from gankit.data.builtin import BUILTIN_IMAGES

    return BUILTIN_IMAGES.names()


def _is_builtin_image(cfg: DataConfig) -> bool:
    from gankit.data.builtin import find_builtin

    return find_builtin(cfg.source) is not None


def _image_identity(cfg: DataConfig, seed: int, info: DataInfo) -> str:
    # stacked_mnist draws its digit triples from the seed; the other sets are fixed
    return f"{info.name} seed={seed}" if cfg.source == "stacked_mnist" else info.name


@data_source("images", order=40, claims=_is_builtin_image, builtins=_image_names,
             identity=_image_identity)
def _builtin_images(cfg: DataConfig, seed: int) -> Loaded:
    """A built-in image set (mnist5k, digits, stacked_mnist, faces, faces<N>)."""
    from gankit.data import builtin

    x, y, names = builtin.load_builtin(cfg.source, seed=seed)
    x = convert_images(x, cfg.image_size, cfg.channels)
    info = DataInfo("image", tuple(x.shape[1:]), name=cfg.source, num_classes=len(names),
                    class_names=names, size=len(x))
    return {"x": x, "y": y}, None, info


def _paired_names() -> list[str]:
    from gankit.data.paired import PAIRED_BUILTINS

    return list(PAIRED_BUILTINS)


def _is_paired(cfg: DataConfig) -> bool:
    from gankit.data import paired

    return paired.is_paired(cfg)


@data_source("paired", order=20, claims=_is_paired, builtins=_paired_names)
def _paired(cfg: DataConfig, seed: int) -> Loaded:
    """Image-to-image pairs: batches ``{a, b}``."""
    from gankit.data import paired

    return paired.load_paired(cfg)


def _unpaired_names() -> list[str]:
    from gankit.data.paired import UNPAIRED_BUILTINS

    return list(UNPAIRED_BUILTINS)


def _is_unpaired(cfg: DataConfig) -> bool:
    from gankit.data import paired

    return paired.is_unpaired(cfg)


def _unpaired_source(cfg: DataConfig, seed: int, device: torch.device, rank: int, world: int):
    from gankit.data import paired

    return paired.build_unpaired_source(cfg, seed, device, rank, world)


# asked first, as before it was a kind: its claim also checks data.layout and data.direction
@data_source("unpaired", order=5, claims=_is_unpaired, builtins=_unpaired_names, build=_unpaired_source)
def _unpaired(cfg: DataConfig, seed: int) -> Loaded:
    """Two image sets of different sizes, batches ``{a, b}`` each side in its own order: a
    batch source only (``build``), never one set of tensors."""
    raise ConfigError(f"'{cfg.source}' is unpaired data (two sides, each in its own order): it is "
                      "read as a training batch source (gankit.data.build_source), not as tensors")


def _is_text(cfg: DataConfig) -> bool:
    from gankit.data import text

    return text.is_text_source(cfg.source)


@data_source("text", order=10, claims=_is_text)
def _text(cfg: DataConfig, seed: int) -> Loaded:
    """Token sequences: the oracle, .txt files, built-in text."""
    from gankit.data import text

    return text.load_text_tensors(cfg, seed)


def _is_point_file(cfg: DataConfig) -> bool:
    return Path(cfg.source).suffix.lower() in (".npy", ".csv")


@data_source("points", order=50, claims=_is_point_file)
def _points(cfg: DataConfig, seed: int) -> Loaded:
    """A ``.npy`` / ``.csv`` point cloud."""
    from gankit.data import points

    path = Path(cfg.source)
    x = points.load_points(path)
    return {"x": x}, None, _vector_info(cfg, x, str(path))


def _is_folder(cfg: DataConfig) -> bool:
    return Path(cfg.source).is_dir()


@data_source("folder", order=60, claims=_is_folder)
def _folder(cfg: DataConfig, seed: int) -> Loaded:
    """A folder of images (class sub-folders or a tags file label them): in memory when small
    enough (``data.resident``), else streamed; a large folder is decoded once into a pixel
    cache (``data.cache_dir``) that later runs and ``gankit eval`` read instead of the files."""
    from gankit.data import folders
    from gankit.data.conditions import condition_report

    path = Path(cfg.source)
    listed = folders.scan_folder(path, verify=False)
    cache_root = folders.cache_root(cfg.cache_dir)
    use_cache = cache_root is not None and len(listed) >= folders.CACHE_MIN_FILES
    # the cache's decode pass finds the bad files; without it, check each file's header now
    report = condition_report(listed if use_cache else folders.scan_folder(path), cfg)
    size = cfg.image_size or DEFAULT_FOLDER_SIZE
    channels = cfg.channels or folders.native_format(report)[1]
    info = DataInfo("image", (channels, size, size), name=str(path),
                    num_classes=len(report.class_names), class_names=report.class_names,
                    size=len(report.files))
    nbytes = len(report.files) * channels * size * size * 4
    resident = cfg.resident == "yes" or (cfg.resident == "auto" and nbytes <= cfg.resident_max_mb * 2**20)
    if folders.PLANNING.get():  # gankit train --dry-run: say what a start would do, decode nothing
        print(folders.plan_text(report, size, channels, cache_root if use_cache else None,
                                resident), file=sys.stderr)
        return None, folders.ImageFolderDataset(path, size, channels, report=report), info
    if use_cache:
        cache = folders.cached_pixels(report, size, channels, cache_root)
        report, info.size = cache.report, len(cache.rows)
        print(f"data: {report.summary()}; pixels {'read from' if cache.hit else 'cached in'} "
              f"'{cache.path}'", file=sys.stderr)
        y = torch.tensor(report.labels, dtype=torch.int64)
        if resident:
            return {"x": folders.pixels_to_tensor(cache.array(), cache.rows), "y": y}, None, info
        return None, folders.CachedFolderDataset(cache), info
    if resident:
        x, y, report = folders.load_folder_tensor(path, size, channels, report=report)
        info.size = len(x)
    if sum(report.skipped.values()):
        print(f"data: {report.summary()}")
    if resident:
        return {"x": x, "y": y}, None, info
    return None, folders.ImageFolderDataset(path, size, channels, report=report, flag_bad=True), info

