"""Reference statistics cached on disk, keyed by everything that changes them.

The key is the data set, the extractor's protocol (network, weights hash, resize, input
quantisation), the image size and the number of items requested. Each entry is a gankit
``.npz`` statistics file (pytorch-fid compatible) that may also hold the raw features, which
KID and precision/recall need.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numpy as np

from gankit.errors import DataError
from gankit.metrics.protocol import Protocol, to_json
from gankit.metrics.stats import FeatureStats, read_npz

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
        name = f"{_slug(str(key.get('data', '')))}-{_slug(str(key.get('extractor', '')))}-" \
               f"n{key.get('n', 'all')}-{digest}.npz"
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
