"""Feature extractors behind one interface (see :mod:`gankit.metrics.extractors.base`).

``build_extractor(name, info)`` picks one by name:

* ``auto``: raw vectors for vector data; the digit classifier for 28x28 digits (MNIST-5k,
  and Stacked MNIST read channel by channel); Inception-v3 for every other image;
* ``inception``, ``digits``, ``identity``;
* a path to a TorchScript file (``.pt``, ``.pth``, ``.ts``, ``.jit``, ``.torchscript``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.metrics.extractors.base import Extracted, Extractor, IdentityExtractor, file_sha256
from gankit.metrics.extractors.digits import DigitExtractor, DigitNet, load_digit_net
from gankit.metrics.extractors.inception import InceptionExtractor, find_weights, tf_inception_input
from gankit.metrics.extractors.torchscript import TorchScriptExtractor
from gankit.registry import closest

NAMES = ["auto", "inception", "digits", "identity"]
SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")

__all__ = ["Extracted", "Extractor", "IdentityExtractor", "DigitExtractor", "DigitNet",
           "InceptionExtractor", "TorchScriptExtractor", "build_extractor", "auto_extractor_name",
           "find_weights", "load_digit_net", "tf_inception_input", "file_sha256"]


def auto_extractor_name(info: DataInfo) -> str:
    """The extractor ``auto`` stands for on this data."""
    if not info.is_image:
        return "identity"
    shape = tuple(info.shape)
    if shape == (1, 28, 28) or (info.name == "stacked_mnist" and shape == (3, 28, 28)):
        return "digits"
    return "inception"


def build_extractor(name: str, info: DataInfo, device: str | torch.device = "cpu",
                    inception_path: str | Path | None = None) -> Extractor:
    """The extractor called ``name`` (or the TorchScript file at that path) for ``info``'s data."""
    if name == "auto":
        name = auto_extractor_name(info)
    if name == "identity":
        return IdentityExtractor(device)
    if name == "inception":
        return InceptionExtractor(inception_path, device)
    if name == "digits":
        channels = info.shape[0] if info.is_image else 0
        return DigitExtractor(channels, device)
    if Path(name).suffix.lower() in SCRIPT_SUFFIXES or Path(name).is_file():
        return TorchScriptExtractor(name, device)
    raise ConfigError(f"unknown extractor '{name}'{closest(name, NAMES)}; use one of "
                      f"{', '.join(NAMES)} or the path of a TorchScript file")
