"""Reference statistics cached on disk, keyed by everything that changes them.

The key is the data set, the extractor's protocol (network, weights hash, resize, input
quantisation), the image size and the number of items requested. Each entry is a gankit
``.npz`` statistics file (pytorch-fid compatible) that may also hold the raw features, which
KID and precision/recall need. The sample metrics store one entry per statistic they
declare (:mod:`gankit.metrics.accumulate`), whose name is in the key
(:meth:`StatsCache.save_arrays`).
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from gankit.errors import DataError
from gankit.metrics.protocol import Protocol, from_json, to_json
from gankit.metrics.stats import FeatureStats, read_npz, write_atomic

ENV_VAR = "GANKIT_CACHE"


def default_cache_dir() -> Path:
    """``$GANKIT_CACHE``, else ``~/.cache/gankit``."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "gankit")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[-40:] or "data"


class StatsCache:
    """Reference statistics under ``root/stats``, one file per key protocol."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: Protocol) -> Path:
        digest = hashlib.sha256(to_json(key).encode()).hexdigest()[:16]
        stat = f"{_slug(str(key['stat']))}-" if "stat" in key else ""
        name = f"{_slug(str(key.get('data', '')))}-{_slug(str(key.get('extractor', '')))}-" \
               f"n{key.get('n', 'all')}-{stat}{digest}.npz"
        return self.root / "stats" / name

    def load(self, key: Protocol, need_features: bool) -> tuple[FeatureStats, np.ndarray | None] | None:
        """The cached ``(stats, features)`` for ``key``, or None when absent or incomplete."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            stats, features = read_npz(path, with_features=need_features)
        except DataError as e:  # a damaged entry (e.g. copied in): measure again, replace it
            warnings.warn(f"ignoring a damaged cache entry: {e}", stacklevel=2)
            return None
        if stats.protocol.get("cache_key") != to_json(key) or (need_features and features is None):
            return None
        return stats, features

    def save(self, key: Protocol, stats: FeatureStats, features: np.ndarray | None) -> Path:
        """Store ``stats`` (and ``features``) under ``key``; the key is kept in the protocol."""
        stats.protocol["cache_key"] = to_json(key)
        return stats.to_npz(self.path(key), features)

    def save_arrays(self, key: Protocol, arrays: dict[str, np.ndarray], protocol: Protocol,
                    n: int) -> Path:
        """Store one statistic's ``arrays`` of ``n`` items under ``key`` (kept in the protocol)."""
        stored = {**arrays, "n": np.int64(n),
                  "protocol": np.array(to_json({**protocol, "cache_key": to_json(key)}))}
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: np.savez(f, **stored))
        return path

    def load_arrays(self, key: Protocol) -> tuple[dict[str, np.ndarray], Protocol, int] | None:
        """``(arrays, protocol, n)`` stored under ``key``, or None when absent, damaged or
        written under another key (a hash collision, or an entry of an older version)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            protocol = from_json(str(arrays.pop("protocol")), str(path))
            n = int(arrays["n"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, DataError) as e:
            warnings.warn(f"ignoring a damaged cache entry '{path}': {e}", stacklevel=2)
            return None
        if protocol.get("cache_key") != to_json(key):
            return None
        return arrays, protocol, n
