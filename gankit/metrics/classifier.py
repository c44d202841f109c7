"""Scores read from a classifier's p(c|x): Inception Score, the quality/diversity view, modes.

The lecture's view of a good generator through a classifier: each sample should be
classified confidently (low entropy of p(c|x): quality), and the samples together should
cover the classes evenly (high entropy of the average p(c): diversity). The Inception
Score folds both into one number, exp(H(mean p) - mean H(p)) on one split.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gankit.errors import DataError


def _as_probs(probs: Tensor | np.ndarray) -> Tensor:
    p = torch.as_tensor(probs).detach().to(torch.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise DataError(f"class probabilities must be [N, classes], got {tuple(p.shape)}")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-4):
        raise DataError("class probabilities must be non-negative rows that sum to 1; "
                        "apply softmax to logits first")
    return p


def _entropy(p: Tensor) -> Tensor:
    """Entropy in nats along the last axis (0 log 0 = 0)."""
    return -torch.special.xlogy(p, p).sum(-1)


def inception_score(probs: Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """``(mean, std)`` over ``splits`` consecutive splits of exp(E_x KL(p(c|x) || p(c)))."""
    p = _as_probs(probs)
    if not 1 <= splits <= p.shape[0]:
        raise DataError(f"splits must be between 1 and the number of samples ({p.shape[0]}), got {splits}")
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        # KL(p || marginal) summed per row; where p = 0 the term is 0 whatever the marginal.
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)).sum(1)
        scores.append(math.exp(float(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def classifier_quality_diversity(probs: Tensor | np.ndarray) -> dict[str, float]:
    """Quality and diversity of samples as a classifier sees them.

    * ``confidence``: mean of max_c p(c|x) (1 = every sample classified with certainty);
    * ``entropy``: mean per-sample entropy of p(c|x) in nats (0 = certain; lower is better);
    * ``diversity``: entropy of the average p(c) in nats (log(classes) = all classes equally);
    * ``diversity_max``: log(classes), the largest possible diversity.
    """
    p = _as_probs(probs)
    return {
        "confidence": float(p.max(1).values.mean()),
        "entropy": float(_entropy(p).mean()),
        "diversity": float(_entropy(p.mean(0))),
        "diversity_max": math.log(p.shape[1]),
    }


def mode_counts(labels: Tensor | np.ndarray, n_modes: int) -> dict[str, float]:
    """Modes hit by at least one sample, and KL(mode histogram || uniform) in nats."""
    y = torch.as_tensor(labels).detach().reshape(-1).long()
    if y.numel() == 0:
        raise DataError("mode counting needs at least one sample")
    if n_modes < 1 or int(y.min()) < 0 or int(y.max()) >= n_modes:
        raise DataError(f"mode labels must lie in [0, {n_modes}), got {int(y.min())}..{int(y.max())}")
    hist = torch.bincount(y, minlength=n_modes).to(torch.float64) / y.numel()
    kl = torch.special.xlogy(hist, hist * n_modes).sum()
    return {"modes": int((hist > 0).sum()), "kl": float(kl)}


def joint_labels(channel_labels: Tensor) -> Tensor:
    """Per-channel digits [N, C] -> one mode per image, e.g. 100 d_R + 10 d_G + d_B."""
    c = channel_labels.shape[1]
    weights = 10 ** torch.arange(c - 1, -1, -1, device=channel_labels.device)
    return (channel_labels.long() * weights).sum(1)
