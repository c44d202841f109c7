"""Kernel Inception Distance (Binkowski et al. 2018): an unbiased MMD^2 between feature sets.

The kernel is the cubic polynomial k(x, y) = (x.y / d + 1)^3. Unlike FID, the estimator is
unbiased, so KID values from different sample counts are comparable in expectation; the
spread over random subsets is reported as its standard deviation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.stats import as_features as _as_features


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 of two equally sized sets under the cubic polynomial kernel."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    # Within-set sums leave out the diagonal k(x_i, x_i): that is what makes it unbiased.
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid(feats_a: Tensor | np.ndarray, feats_b: Tensor | np.ndarray, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """``(mean, std)`` of the unbiased MMD^2 over ``subsets`` random subsets of each set.

    Each subset holds ``min(subset_size, len(a), len(b))`` items drawn without replacement.
    """
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"KID needs features of one dimension, got {a.shape[1]} and {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise DataError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    gen = torch.Generator().manual_seed(seed)
    values = [mmd2_unbiased(a[torch.randperm(a.shape[0], generator=gen)[:m]],
                            b[torch.randperm(b.shape[0], generator=gen)[:m]])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
