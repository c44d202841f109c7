"""The common interface of feature extractors: image batches in, features/probabilities out.

Every extractor takes a batch in data space (images [N, C, H, W] in [-1, 1], or vectors
[N, D] for :class:`IdentityExtractor`) and returns :class:`Extracted` on the CPU. Its
:meth:`Extractor.protocol` names the network, a hash of its weights and its preprocessing,
so statistics computed with different extractors are never compared.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.protocol import Protocol


@dataclass
class Extracted:
    """Per-sample outputs: ``features`` [N, F] and/or class ``probs`` [N, K] (float32, CPU)."""

    features: Tensor | None = None
    probs: Tensor | None = None


class Extractor:
    """Base class. Subclasses set ``name``, ``feature_dim``, ``num_classes`` (0 = no
    probabilities) and implement :meth:`extract`."""

    name: str = ""
    feature_dim: int = 0
    num_classes: int = 0
    # the key of an FID in these features: ``fid`` is Inception's (and a vector's, a user's
    # model's); features no published FID uses get a name of their own
    fid_key: str = "fid"

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def protocol(self) -> Protocol:
        """What makes two feature sets comparable: network, weights and preprocessing."""
        return {"extractor": self.name}

    def extract(self, x: Tensor) -> Extracted:
        raise NotImplementedError

    @torch.inference_mode()
    def __call__(self, x: Tensor) -> Extracted:
        out = self.extract(x.to(self.device, torch.float32))
        return Extracted(
            features=None if out.features is None else out.features.float().cpu(),
            probs=None if out.probs is None else out.probs.float().cpu(),
        )


class IdentityExtractor(Extractor):
    """The data itself as features: Frechet distance, KID, precision/recall on raw vectors."""

    name = "identity"

    def extract(self, x: Tensor) -> Extracted:
        return Extracted(features=x.reshape(x.shape[0], -1))


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """``'sha256:<hex>'`` of a file, remembered per (path, size, mtime) within the process."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASHES[key] = "sha256:" + digest.hexdigest()
    return _HASHES[key]


def check_images(x: Tensor, what: str, channels: tuple[int, ...] = (1, 3)) -> None:
    """DataError unless ``x`` is an NCHW batch with an allowed channel count."""
    if x.ndim != 4 or x.shape[1] not in channels:
        raise DataError(f"{what} needs images [N, C, H, W] with C in {channels}, got {tuple(x.shape)}")


def load_torchscript(path: str | Path, device: torch.device, what: str) -> torch.jit.ScriptModule:
    """Load a TorchScript file; DataError with the reason when it is not one."""
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"'{path}' is not a TorchScript model ({first}); "
                        f"give a file saved with torch.jit.save") from None
