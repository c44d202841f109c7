"""Data sources: ``build_source(cfg)`` turns ``data.source`` into a resumable batch source.

``data.source`` is a built-in name (toy mixtures ``ring8``/``grid25``, images ``mnist5k``,
``digits``, ``stacked_mnist``), an image folder, or a ``.npy``/``.csv`` point cloud.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, StreamingSource
from gankit.errors import DataError

DEFAULT_FOLDER_SIZE = 64


def builtin_names() -> list[str]:
    from gankit.data.builtin import BUILTIN_IMAGES
    from gankit.data.toy import MIXTURES

    return sorted(MIXTURES) + BUILTIN_IMAGES.names()


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


def load_tensors(cfg: DataConfig, seed: int) -> tuple[dict[str, torch.Tensor] | None, object, DataInfo]:
    """(tensors for a resident source or None, a Dataset for streaming or None, DataInfo)."""
    from gankit.data import builtin, points, toy

    src = cfg.source
    if src in toy.MIXTURES:
        x, y = toy.sample_mixture(src, cfg.toy_samples, seed=seed)
        return {"x": x, "y": y}, None, DataInfo("vector", (2,), name=src, size=len(x))
    if src in builtin.BUILTIN_IMAGES:
        x, y, names = builtin.load_builtin(src, seed=seed)
        x = convert_images(x, cfg.image_size, cfg.channels)
        info = DataInfo("image", tuple(x.shape[1:]), name=src, num_classes=len(names),
                        class_names=names, size=len(x))
        return {"x": x, "y": y}, None, info
    path = Path(src)
    if path.suffix.lower() in (".npy", ".csv"):
        x = points.load_points(path)
        return {"x": x}, None, DataInfo("vector", (x.shape[1],), name=str(path), size=len(x))
    if path.is_dir():
        return _folder(cfg, path)
    if path.exists():
        raise DataError(f"'{src}' is a file; data.source takes a folder of images, a .npy/.csv "
                        "point cloud or a built-in name")
    match = difflib.get_close_matches(src, builtin_names(), n=1)
    hint = f" (did you mean '{match[0]}'?)" if match else ""
    raise DataError(f"data source '{src}' is neither an existing path nor a built-in name{hint}; "
                    f"built-ins: {', '.join(builtin_names())}")


def _folder(cfg: DataConfig, path: Path):
    from gankit.data import folders

    report = folders.scan_folder(path)
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
    return None, folders.ImageFolderDataset(path, size, channels, report=report), info


def build_source(cfg: DataConfig, seed: int, device: torch.device, rank: int = 0, world: int = 1):
    """The training batch source for ``cfg`` on ``device`` (this rank's slice under torchrun)."""
    tensors, dataset, info = load_tensors(cfg, seed)
    if tensors is not None:
        return ResidentSource(tensors, info, cfg.batch_size, seed, device, rank, world)
    return StreamingSource(dataset, info, cfg.batch_size, seed, device, cfg.workers, rank, world)
