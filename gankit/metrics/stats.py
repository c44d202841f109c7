"""Streaming feature statistics (mean and covariance) and their ``.npz`` files.

The file format is pytorch-fid's: arrays ``mu`` [D] and ``sigma`` [D, D]. gankit adds ``n``
(the number of items) and ``protocol`` (a JSON string), which pytorch-fid ignores, so files
go both ways.
"""
from __future__ import annotations

import os
import uuid
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from torch import Tensor

from gankit import files
from gankit.errors import DataError
from gankit.metrics.protocol import (UNKNOWN_PROTOCOL, Protocol, check_same_protocol,
                                     feature_protocol, from_json, is_unknown, to_json)


class FeatureStats:
    """Running mean and covariance of feature vectors, updated batch by batch in float64.

    Batches are merged with Chan et al.'s pairwise update of centred sums, which keeps the
    covariance accurate when the features have a large mean (a plain sum of x x^T does not).
    """

    def __init__(self, protocol: Protocol | None = None):
        self.protocol: Protocol = dict(protocol or {})
        self.n = 0
        self._mean: Tensor | None = None
        self._m2: Tensor | None = None  # sum of outer products of centred features
        self._frozen_cov: np.ndarray | None = None  # from a file without a sample count

    @property
    def dim(self) -> int:
        return 0 if self._mean is None else int(self._mean.numel())

    def update(self, features: Tensor | np.ndarray) -> None:
        """Add a batch ``[B, D]`` of features."""
        if self._frozen_cov is not None:
            raise DataError("these statistics were read from a file without a sample count; "
                            "they cannot be extended with more features")
        x = torch.as_tensor(features).detach().to(torch.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(f"features must be a non-empty [batch, dim] array, got {tuple(x.shape)}")
        if self._mean is not None and x.shape[1] != self.dim:
            raise DataError(f"features of dimension {x.shape[1]} cannot join statistics of "
                            f"dimension {self.dim}")
        b_mean = x.mean(0)
        centred = x - b_mean
        b_m2 = centred.T @ centred
        if self._mean is None:
            self.n, self._mean, self._m2 = x.shape[0], b_mean, b_m2
            return
        total = self.n + x.shape[0]
        delta = (b_mean - self._mean).to(self._mean.device)
        self._mean = self._mean + delta * (x.shape[0] / total)
        weight = self.n * x.shape[0] / total
        self._m2 = self._m2 + b_m2.to(self._m2.device) + torch.outer(delta, delta) * weight
        self.n = total

    @property
    def mean(self) -> np.ndarray:
        """The mean feature, float64 [D]."""
        if self._mean is None:
            raise DataError("no features were added to these statistics")
        return self._mean.cpu().numpy()

    @property
    def cov(self) -> np.ndarray:
        """The unbiased covariance (divides by n - 1, like ``np.cov``), float64 [D, D]."""
        if self._frozen_cov is not None:
            return self._frozen_cov
        if self._m2 is None or self.n < 2:
            raise DataError(f"a covariance needs at least 2 items, got {self.n}")
        return (self._m2 / (self.n - 1)).cpu().numpy()

    @classmethod
    def from_moments(cls, mu: np.ndarray, sigma: np.ndarray, n: int = 0,
                     protocol: Protocol | None = None) -> FeatureStats:
        """Statistics from a known mean and covariance (``n = 0`` when the count is unknown)."""
        mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
            raise DataError(f"statistics need mu [D] and sigma [D, D], got {mu.shape} and {sigma.shape}")
        stats = cls(protocol)
        stats._mean = torch.from_numpy(mu.copy())
        if n >= 2:
            stats.n, stats._m2 = n, torch.from_numpy(sigma * (n - 1))
        else:
            stats.n, stats._frozen_cov = max(n, 0), sigma.copy()
        return stats

    def to_npz(self, path: str | Path, features: np.ndarray | None = None) -> Path:
        """Write ``mu``, ``sigma`` (pytorch-fid keys), ``n``, ``protocol`` and optionally the
        raw ``features`` (used by KID and precision/recall when the file is a cache entry)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"mu": self.mean, "sigma": self.cov, "n": np.int64(self.n),
                  "protocol": np.array(to_json(self.protocol))}
        if features is not None:
            arrays["features"] = np.asarray(features, np.float32)
        write_atomic(path, lambda f: np.savez(f, **arrays))
        return path

    @classmethod
    def from_npz(cls, path: str | Path) -> FeatureStats:
        """Read a pytorch-fid or gankit statistics file.

        A file without a protocol (e.g. from pytorch-fid) is accepted and marked unknown.
        """
        stats, _ = read_npz(path, with_features=False)
        return stats


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file of its own in ``path``'s folder, then rename it over
    ``path``: concurrent writers of one path (two evaluations filling the same cache entry)
    leave one of their files whole, never a mix, and a failed write leaves ``path`` alone."""
    # a name of its own per writer (mkstemp would also do, but makes the file owner-only)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    # a full disk or an unwritable folder is one line (files.WriteError), the old file kept
    with files.translated(path, "free space or fix the folder; the file there is unchanged"):
        try:
            with open(tmp, "xb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def read_npz(path: str | Path, with_features: bool = True) -> tuple[FeatureStats, np.ndarray | None]:
    """``(stats, features or None)`` from a ``.npz`` statistics file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"statistics file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("mu", "sigma") if k not in f.files]
            if missing:
                raise DataError(f"'{path}' is not a statistics file: it lacks {', '.join(missing)} "
                                "(expected pytorch-fid's 'mu' and 'sigma' arrays)")
            protocol = (from_json(str(f["protocol"]), str(path)) if "protocol" in f.files
                        else dict(UNKNOWN_PROTOCOL, file=path.name))
            n = int(f["n"]) if "n" in f.files else 0
            features = f["features"] if with_features and "features" in f.files else None
            stats = FeatureStats.from_moments(f["mu"], f["sigma"], n, protocol)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read statistics file '{path}' ({e}); "
                        "give an .npz file with 'mu' and 'sigma'") from None
    return stats, features


def check_comparable(a: FeatureStats, b: FeatureStats) -> None:
    """Refuse to compare statistics measured with different extractors or preprocessing."""
    unknown = is_unknown(a.protocol) or is_unknown(b.protocol)
    if not unknown:  # the protocol names the cause, so it goes before the dimension check
        check_same_protocol(feature_protocol(a.protocol), feature_protocol(b.protocol), "statistics")
    if a.dim != b.dim:
        raise DataError(f"statistics of dimension {a.dim} and {b.dim} cannot be compared; "
                        "they come from different feature extractors")
    if unknown:
        warnings.warn("comparing with statistics whose protocol is unknown (a file from another "
                      "tool); make sure it used the same extractor and resize", stacklevel=2)


def as_features(x: Tensor | np.ndarray, name: str, min_rows: int = 2) -> Tensor:
    """``x`` as a float64 [N, D] tensor; DataError naming ``name`` unless N >= ``min_rows``."""
    t = torch.as_tensor(x).detach().to(torch.float64)
    if t.ndim != 2 or t.shape[0] < min_rows:
        raise DataError(f"{name} must be [N >= {min_rows}, D] features, got {tuple(t.shape)}")
    return t
