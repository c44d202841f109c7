"""Data sources: ``build_source(cfg)`` turns ``data.source`` into a resumable batch source.

``data.source`` is a built-in name (toy mixtures ``ring8``/``grid25``, images ``mnist5k``,
``digits``, ``stacked_mnist``, drawn ``faces`` / ``faces<N>``), an image folder, or a ``.npy``/``.csv`` point cloud.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, StreamingSource
from gankit.errors import ConfigError, DataError
from gankit.registry import closest

DEFAULT_FOLDER_SIZE = 64


def builtin_names() -> list[str]:
    from gankit.data.builtin import BUILTIN_IMAGES
    from gankit.data.toy import MIXTURES

    from gankit.data.paired import builtin_names as image_to_image_names

    return sorted(MIXTURES) + BUILTIN_IMAGES.names() + image_to_image_names()


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


# The held-out split ignores train.seed, so runs with different seeds share one test set.
SPLIT_SEED = 0


def load_tensors(cfg: DataConfig, seed: int) -> tuple[dict[str, torch.Tensor] | None, object, DataInfo]:
    """(tensors for a resident source or None, a Dataset for streaming or None, DataInfo).

    Resident tensors are the training part when ``data.held_out`` > 0, binarised to {-1, 1}
    when ``data.binarize``, and carry ``index``: each item's position in the training part
    (per-item latents, e.g. GLO's codes, are looked up by it)."""
    from gankit.data.conditions import with_condition

    tensors, dataset, info = _load_all(cfg, seed)
    info = with_condition(cfg, info)
    if tensors is None:
        _check_in_memory(cfg, None)
        return None, dataset, info
    tensors = _held_out_part(tensors, info, cfg, part=0)
    info.size = len(next(iter(tensors.values())))
    if info.is_image:  # the name keys cached reference statistics: say what changed
        info.name += "-binarised" if cfg.binarize else ""
        info.name += f"[train {1 - cfg.held_out:g}]" if cfg.held_out > 0 else ""
    tensors["index"] = torch.arange(info.size)
    return tensors, None, info


def held_out_tensors(cfg: DataConfig, seed: int) -> dict[str, torch.Tensor]:
    """The items ``data.held_out`` keeps out of training (binarised like the training part)."""
    if cfg.held_out <= 0:
        raise ConfigError("this run holds no data out (data.held_out=0); train with e.g. "
                          "data.held_out=0.1 to measure held-out likelihoods")
    tensors, _, info = _load_all(cfg, seed)
    _check_in_memory(cfg, tensors)
    return _held_out_part(tensors, info, cfg, part=1)


def _check_in_memory(cfg: DataConfig, tensors: dict[str, torch.Tensor] | None) -> None:
    if tensors is None and (cfg.held_out > 0 or cfg.binarize):
        raise ConfigError("data.held_out and data.binarize need the data in memory; "
                          "set data.resident=yes (or use a smaller data set)")


def _held_out_part(tensors: dict[str, torch.Tensor], info: DataInfo, cfg: DataConfig,
                   part: int) -> dict[str, torch.Tensor]:
    """Binarise if asked, then keep the training (0) or held-out (1) part of the split."""
    from gankit.data.builtin import split_indices

    if cfg.binarize:
        if info.kind != "image":
            raise ConfigError(f"data.binarize applies to single images; '{info.name}' is "
                              f"{info.kind} data: drop data.binarize")
        tensors = {**tensors, "x": torch.where(tensors["x"] > 0, 1.0, -1.0)}
    if cfg.held_out > 0:
        n = len(next(iter(tensors.values())))
        idx = split_indices(n, cfg.held_out, SPLIT_SEED)[part]
        tensors = {k: v[idx] for k, v in tensors.items()}
    return tensors


def _load_all(cfg: DataConfig, seed: int) -> tuple[dict[str, torch.Tensor] | None, object, DataInfo]:
    """Every item of ``data.source``, before the held-out split."""
    from gankit.data import builtin, points, toy

    src = cfg.source
    from gankit.data import text

    if text.is_text_source(src):  # token sequences: oracle, .txt files, built-in text
        return text.load_text_tensors(cfg, seed)
    from gankit.data import paired

    if paired.is_paired(cfg):  # image-to-image pairs: batches {a, b}
        return paired.load_paired(cfg)
    if src in toy.MIXTURES:
        x, y = toy.sample_mixture(src, cfg.toy_samples, seed=seed)
        return {"x": x, "y": y}, None, _vector_info(cfg, x, src)
    if builtin.find_builtin(src) is not None:
        x, y, names = builtin.load_builtin(src, seed=seed)
        x = convert_images(x, cfg.image_size, cfg.channels)
        info = DataInfo("image", tuple(x.shape[1:]), name=src, num_classes=len(names),
                        class_names=names, size=len(x))
        return {"x": x, "y": y}, None, info
    path = Path(src)
    if path.suffix.lower() in (".npy", ".csv"):
        x = points.load_points(path)
        return {"x": x}, None, _vector_info(cfg, x, str(path))
    if path.is_dir():
        return _folder(cfg, path)
    if path.exists():
        raise DataError(f"'{src}' is a file; data.source takes a folder of images, a .npy/.csv "
                        "point cloud or a built-in name")
    hint = closest(src, builtin_names())
    raise DataError(f"data source '{src}' is neither an existing path nor a built-in name{hint}; "
                    f"built-ins: {', '.join(builtin_names())}")


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


def _folder(cfg: DataConfig, path: Path):
    from gankit.data import folders

    from gankit.data.conditions import condition_report

    report = condition_report(folders.scan_folder(path), cfg)  # data.tags relabels the images
    size = cfg.image_size or DEFAULT_FOLDER_SIZE
    channels = cfg.channels or folders.native_format(report)[1]
    info = DataInfo("image", (channels, size, size), name=str(path),
                    num_classes=len(report.class_names), class_names=report.class_names,
                    size=len(report.files))
    nbytes = len(report.files) * channels * size * size * 4
    resident = cfg.resident == "yes" or (cfg.resident == "auto" and nbytes <= cfg.resident_max_mb * 2**20)
    if resident:
        x, y, report = folders.load_folder_tensor(path, size, channels, report=report)
        info.size = len(x)
    if sum(report.skipped.values()):
        print(f"data: {report.summary()}")
    if resident:
        return {"x": x, "y": y}, None, info
    return None, folders.ImageFolderDataset(path, size, channels, report=report, flag_bad=True), info


def data_identity(cfg: DataConfig, seed: int, info: DataInfo) -> str:
    """What identifies the items behind ``info.name``, for statistics cache keys: a path
    resolved and with its item count (a folder that gained files is other data), a synthetic
    set's seed and size; the held-out and binarised variants are in ``info.name`` already."""
    from gankit.data import toy

    src = cfg.source
    if src in toy.MIXTURES:
        return f"{info.name} seed={seed} n={cfg.toy_samples}"
    if src == "stacked_mnist":
        return f"{info.name} seed={seed}"
    path = Path(src)
    if path.exists():
        return f"{info.name} at {path.resolve()} ({info.size} items)"
    return info.name


def build_source(cfg: DataConfig, seed: int, device: torch.device, rank: int = 0, world: int = 1):
    """The training batch source for ``cfg`` on ``device`` (this rank's slice under torchrun)."""
    from gankit.data import paired

    if paired.is_unpaired(cfg):  # two sides of different sizes, each with its own order
        return paired.build_unpaired_source(cfg, seed, device, rank, world)
    tensors, dataset, info = load_tensors(cfg, seed)
    if tensors is not None:
        return ResidentSource(tensors, info, cfg.batch_size, seed, device, rank, world)
    return StreamingSource(dataset, info, cfg.batch_size, seed, device, cfg.workers, rank, world,
                           on_bad=cfg.on_bad)
