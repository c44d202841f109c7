"""k-nearest-neighbour manifold metrics on features.

* Improved precision and recall (Kynkaanniemi et al. 2019): the real manifold is the union
  of balls around each real feature, of radius its distance to its k-th nearest real
  neighbour; precision is the share of fake features inside it, recall the share of real
  features inside the fake manifold built the same way.
* Density and coverage (Naeem et al. 2020): density counts how many real balls each fake
  sample falls in (divided by k, so about 1 when fake matches real); coverage is the share
  of real balls that hold at least one fake sample.

Balls are closed (distance <= radius). Distances are computed in float64 (through matrix
products, which BLAS makes fast on 2048-d features), a block of rows
at a time, so the full N x M distance matrix is never held.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.stats import as_features as _as_features

_BLOCK_ELEMENTS = 2 ** 23  # float64 distances per block: 64 MB


def _distance_blocks(a: Tensor, b: Tensor) -> Iterator[tuple[slice, Tensor]]:
    """(rows, cdist(a[rows], b)) for consecutive row blocks of ``a``."""
    step = max(1, _BLOCK_ELEMENTS // max(1, b.shape[0]))
    for start in range(0, a.shape[0], step):
        rows = slice(start, min(start + step, a.shape[0]))
        yield rows, torch.cdist(a[rows], b, compute_mode="use_mm_for_euclid_dist")


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = torch.empty(x.shape[0], dtype=x.dtype)
    for rows, d in _distance_blocks(x, x):
        # The smallest distance is each point to itself; the k-th neighbour is the (k+1)-th.
        radii[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _ball_counts(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """For each point, the number of balls (centres, radii) that contain it."""
    counts = torch.empty(points.shape[0], dtype=torch.int64)
    for rows, d in _distance_blocks(points, centres):
        counts[rows] = (d <= radii[None, :]).sum(1)
    return counts


def _check(real: Tensor, fake: Tensor, k: int) -> None:
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")


def precision_recall(real_feats: Tensor | np.ndarray, fake_feats: Tensor | np.ndarray,
                     k: int = 3) -> dict[str, float]:
    """Improved precision and recall with k-NN balls; both in [0, 1]."""
    real = _as_features(real_feats, "real_feats", k + 1)
    fake = _as_features(fake_feats, "fake_feats", k + 1)
    _check(real, fake, k)
    precision = (_ball_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_ball_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real_feats: Tensor | np.ndarray, fake_feats: Tensor | np.ndarray,
                     k: int = 5) -> dict[str, float]:
    """Density (unbounded, about 1 for a perfect match) and coverage (in [0, 1])."""
    real = _as_features(real_feats, "real_feats", k + 1)
    fake = _as_features(fake_feats, "fake_feats", 1)
    _check(real, fake, k)
    radii = knn_radii(real, k)
    density = _ball_counts(fake, real, radii).double().sum() / (k * fake.shape[0])
    covered = torch.zeros(real.shape[0], dtype=torch.bool)
    for rows, d in _distance_blocks(real, fake):
        covered[rows] = d.min(1).values <= radii[rows]
    return {"density": float(density), "coverage": float(covered.double().mean())}
