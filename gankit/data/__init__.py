"""Data sources: ``build_source(cfg)`` turns ``data.source`` into a resumable batch source.

``data.source`` is a built-in name (toy mixtures ``ring8``/``grid25``, images ``mnist5k``,
``digits``, ``stacked_mnist``, drawn ``faces`` / ``faces<N>``), an image folder, or a ``.npy``/``.csv`` point cloud.
Each kind of source registers itself in :data:`gankit.data.sources.DATA_SOURCES`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from gankit.config import DataConfig
from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, StreamingSource
from gankit.data.sources import (DATA_SOURCES, DEFAULT_FOLDER_SIZE, builtin_names,  # noqa: F401
                                 convert_images, data_source, source_for, standardization)
from gankit.errors import ConfigError, DataError
from gankit.registry import closest

from gankit.data import zipdata  # noqa: E402,F401 -- registers the "zip" source kind (packed data sets)

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
    """Every item of ``data.source``, before the held-out split: loaded by the first source
    kind of :data:`~gankit.data.sources.DATA_SOURCES` that claims it."""
    source = source_for(cfg)
    if source is not None:
        return source.load(cfg, seed)
    src = cfg.source
    if Path(src).exists():
        raise DataError(f"'{src}' is a file; data.source takes a folder of images, a packed "
                        ".zip (gankit data pack), a .npy/.csv point cloud or a built-in name")
    hint = closest(src, builtin_names())
    raise DataError(f"data source '{src}' is neither an existing path nor a built-in name{hint}; "
                    f"built-ins: {', '.join(builtin_names())}")


def data_identity(cfg: DataConfig, seed: int, info: DataInfo) -> str:
    """What identifies the items behind ``info.name``, for statistics cache keys: a path
    resolved and with its item count (a folder that gained files is other data), a synthetic
    set's seed and size (the source kind's ``identity``); the held-out and binarised variants
    are in ``info.name`` already."""
    source = source_for(cfg)
    if source is not None and source.identity is not None:
        return source.identity(cfg, seed, info)
    path = Path(cfg.source)
    if path.exists():
        return f"{info.name} at {path.resolve()} ({info.size} items)"
    return info.name


def build_source(cfg: DataConfig, seed: int, device: torch.device, rank: int = 0, world: int = 1):
    """The training batch source for ``cfg`` on ``device`` (this rank's slice under torchrun)."""
    source = source_for(cfg)
    if source is not None and source.build is not None:  # e.g. unpaired sides, each in its own order
        return source.build(cfg, seed, device, rank, world)
    tensors, dataset, info = load_tensors(cfg, seed)
    if tensors is not None:
        return ResidentSource(tensors, info, cfg.batch_size, seed, device, rank, world)
    from gankit.data.folders import available_cores

    # more workers than cores only queue for the same CPUs (and make torch warn)
    workers = min(cfg.workers, available_cores())
    return StreamingSource(dataset, info, cfg.batch_size, seed, device, workers, rank, world,
                           on_bad=cfg.on_bad)
