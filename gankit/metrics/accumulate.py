"""What one pass over a set of samples accumulates: the statistics metrics declare.

A metric names the statistics it needs over the generated samples and over the real data
(``@metric(..., fake=[...], real=[...])`` in :mod:`gankit.metrics.compute`); the pass keeps
the union of what the requested metrics declare, and nothing else. Each
:class:`Statistic` reads one input per batch:

* ``features``: the extractor's features ``[B, F]``;
* ``probs``: the extractor's class probabilities ``[B, K]``;
* ``items``: the batch itself, in data space (images in [-1, 1], vectors).

A statistic whose :attr:`Statistic.load` is set may be read from and written to the
statistics cache on the real side, one entry per statistic: its key is the data, the item
shape, the number of items, the statistic's name and its own :attr:`Statistic.key` (plus the
extractor's protocol when it reads ``features`` or ``probs``), so an entry written for one
statistic never answers for another. Statistics that depend on the other side (the
memorisation check's neighbours) are never cached.

A new statistic of per-item values is one call: ``per_item("brightness", lambda x: ...)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from gankit.metrics.protocol import Protocol
from gankit.metrics.stats import FeatureStats

INPUTS = ("features", "probs", "items")


class Accumulator:
    """Running state of one statistic over one set: ``update`` per batch, then ``result``;
    ``arrays`` is what the cache stores (a statistic with a ``load`` implements it)."""

    def update(self, x: Tensor) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        """The statistic over every batch so far; None when no batch gave it input."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Statistic:
    """A statistic a pass accumulates over one set of samples.

    ``start(plan, fake)`` returns a fresh :class:`Accumulator` (``plan`` gives the metric
    options and loaded resources; ``fake`` is the generated side, already scanned, when this
    set is the real one, else None). ``load(arrays)`` rebuilds the result from a cache entry;
    None means the statistic is never cached. ``key(plan)`` adds what identifies the
    statistic in cache keys beyond its name. ``prepare()`` loads a resource once per
    evaluation (and at start-up, so that a broken one fails early), read with
    ``plan.resource(statistic)``."""

    name: str
    reads: str
    start: Callable[[Any, Any], Accumulator]
    load: Callable[[dict[str, np.ndarray]], Any] | None = None
    key: Callable[[Any], Protocol] | None = None
    prepare: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        if self.reads not in INPUTS:
            raise ValueError(f"statistic '{self.name}' reads '{self.reads}'; one of {', '.join(INPUTS)}")

    @property
    def cached(self) -> bool:
        return self.load is not None

    def cache_key(self, plan: Any) -> Protocol:
        return {"stat": self.name, **(self.key(plan) if self.key is not None else {})}


class Moments(Accumulator):
    """Mean and covariance of the features (:class:`FeatureStats`; FID reads them)."""

    def __init__(self) -> None:
        self.stats = FeatureStats()

    def update(self, x: Tensor) -> None:
        self.stats.update(x)

    def result(self) -> FeatureStats | None:
        return self.stats if self.stats.n else None  # None: the extractor gave no features

    def arrays(self) -> dict[str, np.ndarray]:
        # pytorch-fid's keys, so a cache entry is also a statistics file
        return {"mu": self.stats.mean, "sigma": self.stats.cov}


def _moments_from(arrays: dict[str, np.ndarray]) -> FeatureStats:
    return FeatureStats.from_moments(arrays["mu"], arrays["sigma"], int(arrays["n"]))


class Rows(Accumulator):
    """Every row of ``transform(x)`` (at most ``limit`` rows; None keeps all), concatenated."""

    def __init__(self, transform: Callable[[Tensor], Tensor] | None = None, limit: int | None = None):
        self.transform, self.limit = transform, limit
        self.parts: list[Tensor] = []
        self.n = 0

    def update(self, x: Tensor) -> None:
        room = x.shape[0] if self.limit is None else max(0, self.limit - self.n)
        if room:
            part = x[:room]
            self.parts.append(self.transform(part) if self.transform is not None else part)
            self.n += part.shape[0]

    def result(self) -> Tensor | None:
        return torch.cat(self.parts) if self.parts else None  # None: no input gave rows

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rows": self.result().numpy()}


def _rows_from(arrays: dict[str, np.ndarray]) -> Tensor:
    return torch.from_numpy(np.asarray(arrays["rows"]))


FEATURE_STATS = Statistic("feature_stats", "features", lambda plan, fake: Moments(), _moments_from)
FEATURES = Statistic("features", "features", lambda plan, fake: Rows(), _rows_from)
PROBS = Statistic("probs", "probs", lambda plan, fake: Rows(), _rows_from)
# The items themselves: all of them (toy points), or the first memo_max (memorisation).
SAMPLES = Statistic("samples", "items", lambda plan, fake: Rows())
MEMO_SAMPLES = Statistic("memo_samples", "items", lambda plan, fake: Rows(limit=plan.opts.memo_max))


def _code_digest(fn: Callable) -> str:
    """What identifies a per-item function's code in cache keys (its bytecode and names), so
    that an edited function does not read values its former version cached."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__qualname__", type(fn).__name__)
    digest = hashlib.sha256(code.co_code + repr((code.co_names, [c for c in code.co_consts
                                                                if isinstance(c, (int, float, str, tuple))])).encode())
    return digest.hexdigest()[:16]


def per_item(name: str, values: Callable[[Tensor], Tensor], reads: str = "items") -> Statistic:
    """A statistic of one value (or row) per item: ``values(x)`` maps a batch ``[B, ...]`` of
    ``reads`` (items in data space by default) to ``[B]`` or ``[B, K]``; the result is every
    item's value, concatenated. It is cached by ``name`` and the function's code."""
    digest = _code_digest(values)
    return Statistic(name, reads, lambda plan, fake: Rows(values), _rows_from,
                     key=lambda plan: {"code": digest})
