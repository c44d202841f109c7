"""Likelihoods of the non-adversarial families (the VAE and the flow, whose models sit beside
this module), and the bookkeeping that keeps them honest.

Images arrive in [-1, 1] (8-bit pixels ``p`` stored as ``p * 2/255 - 1``). Three ways of
putting a probability on them, each with its own unit and data variant:

* **discrete** (VAE decoders): a real probability mass over the 256 pixel values, from a
  discretised logistic (mixture) or, on binarised data, a Bernoulli;
* **dequantised** (flows): uniform noise turns pixels into ``y = (p + u) / 256`` in [0, 1);
  a density on ``y`` gives ``-log p(p) <= -E_u log p_y(y) + D log 256``, reported as bits/dim;
* **continuous** (vector data): a plain density, reported in nats.

Every function here works on per-element tensors and leaves the summing to the caller, so
the tests can check each one against hand-computed values.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.folders import PIXEL_BINS, to_pixels  # noqa: F401
from gankit.errors import ConfigError

LOG2 = math.log(2.0)
LOG_2PI = math.log(2.0 * math.pi)

# data variants: how a likelihood number was measured (part of every metric's name)
VARIANTS = {
    "8bit": "8-bit pixels, discrete likelihood",
    "8bit_dequantised": "8-bit pixels, uniform dequantisation (continuous density on [0, 256))",
    "binarised": "binarised pixels (threshold 0.5), Bernoulli likelihood",
    "continuous": "continuous vectors, density",
}
UNITS = {"bpd": "bits/dim", "nats": "nats per item"}

Measured = tuple[dict[str, float], dict[str, Any]]  # (values, how they were measured)


class HeldOutLikelihood:
    """What a model with a likelihood (VAE, flow) gives ``gankit eval``: its
    :meth:`measure_likelihood` of held-out data, a list of ``(values, protocol)`` groups
    (:func:`gankit.metrics.compute.likelihood_scores` reads them as scores)."""

    def measure_likelihood(self, batches, *args, **kwargs) -> list[Measured]:
        raise NotImplementedError


def metric_name(estimator: str, unit: str, variant: str) -> str:
    """``nll_<estimator>_<unit>_<variant>``, e.g. ``nll_iwae_bpd_8bit``: a likelihood number
    always carries its unit and data variant, so two of them are never mixed up."""
    if unit not in UNITS:
        raise ConfigError(f"unknown likelihood unit '{unit}'; use one of {', '.join(UNITS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown data variant '{variant}'; use one of {', '.join(VARIANTS)}")
    return "_".join(p for p in ("nll", estimator, unit, variant) if p)


# ---- pixels ------------------------------------------------------------------------------
# to_pixels ([-1, 1] -> integer pixel values) and to_uint8 live beside the image loading in
# gankit/data/folders.py; imported here for the likelihoods above the pixels.


def binarised_targets(x: Tensor) -> Tensor:
    """Binarised images stored as {-1, 1} -> Bernoulli targets {0, 1} (above mid-grey = 1)."""
    return (x > 0).to(x.dtype if x.is_floating_point() else torch.float32)


# ---- densities ---------------------------------------------------------------------------
def standard_normal_log_prob(z: Tensor) -> Tensor:
    """Element-wise log N(z; 0, 1)."""
    return -0.5 * (z * z + LOG_2PI)


def gaussian_log_prob(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """Element-wise log N(x; mean, exp(log_std)^2)."""
    return -0.5 * (((x - mean) * torch.exp(-log_std)) ** 2 + LOG_2PI) - log_std


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """Element-wise KL(N(mean, exp(logvar)) || N(0, 1)) in nats."""
    return 0.5 * (mean * mean + logvar.exp() - 1.0 - logvar)


def bernoulli_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    """Element-wise log Bernoulli(target in {0, 1}; sigmoid(logits))."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def _log_sigmoid_difference(upper: Tensor, lower: Tensor) -> Tensor:
    """log(sigmoid(upper) - sigmoid(lower)) for upper > lower, stable in both tails.

    sigmoid(a) - sigmoid(b) = e^a (1 - e^(b-a)) / ((1 + e^a)(1 + e^b)), so its log is
    -softplus(-a) - softplus(b) + log(-expm1(b - a)); no difference of two near-equal
    probabilities is ever formed."""
    return -F.softplus(-upper) - F.softplus(lower) + torch.log(-torch.expm1(lower - upper))


def discretized_logistic_log_prob(pixels: Tensor, mean: Tensor, log_scale: Tensor,
                                  bins: int = PIXEL_BINS) -> Tensor:
    """Element-wise log P(pixel) under a logistic(mean, exp(log_scale)) on the [-1, 1] scale,
    discretised into ``bins`` equal bins; the two end bins take the tails, so the
    probabilities of the ``bins`` values sum to exactly 1."""
    centre = pixels * (2.0 / (bins - 1)) - 1.0
    half = 1.0 / (bins - 1)
    inv_s = torch.exp(-log_scale)
    upper = (centre + half - mean) * inv_s
    lower = (centre - half - mean) * inv_s
    middle = _log_sigmoid_difference(upper, lower)
    first = -F.softplus(-upper)  # log sigmoid(upper): everything below the first bin's edge
    last = -F.softplus(lower)  # log(1 - sigmoid(lower)): everything above the last one's
    return torch.where(pixels < 0.5, first, torch.where(pixels > bins - 1.5, last, middle))


def discretized_logistic_mixture_log_prob(pixels: Tensor, logit_weights: Tensor, means: Tensor,
                                          log_scales: Tensor, bins: int = PIXEL_BINS) -> Tensor:
    """Element-wise log P(pixel) under a mixture of discretised logistics.

    ``pixels`` is [...]; the three parameter tensors are [K, ...] (component first)."""
    log_p = discretized_logistic_log_prob(pixels.unsqueeze(0), means, log_scales, bins)
    return torch.logsumexp(torch.log_softmax(logit_weights, dim=0) + log_p, dim=0)


def discretized_logistic_mixture_mean(logit_weights: Tensor, means: Tensor) -> Tensor:
    """The mixture's mean on the [-1, 1] scale (the tails folded into the end bins are
    ignored, which is what a picture of the mean shows anyway)."""
    return (torch.softmax(logit_weights, dim=0) * means.clamp(-1, 1)).sum(0)


# ---- importance weighting ----------------------------------------------------------------
def log_mean_exp(log_w: Tensor, dim: int = 0) -> Tensor:
    """log(mean(exp(log_w))) along ``dim``, without overflow."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def iwae_bound(log_weights: Tensor) -> Tensor:
    """The importance-weighted bound (Burda et al. 2016) from log weights [k, B]:
    log (1/k) sum_i p(x, z_i) / q(z_i | x). k = 1 is the one-sample ELBO; its expectation
    never decreases with k and tends to log p(x)."""
    if log_weights.dim() < 1 or log_weights.shape[0] < 1:
        raise ConfigError("the IWAE bound needs at least one importance sample")
    return log_mean_exp(log_weights, dim=0)


# ---- dequantisation and the logit transform ----------------------------------------------
def dequantize(pixels: Tensor, noise: Tensor, bins: int = PIXEL_BINS) -> Tensor:
    """``(pixels + noise) / bins``: integer pixels plus uniform ``noise`` in [0, 1) -> [0, 1).

    The density of ``y`` is ``bins^D`` times that of ``pixels + noise``; the bits/dim
    functions below add that ``D log bins`` back."""
    return (pixels + noise) / bins


def logit_transform(y: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """``z = logit(alpha + (1 - 2 alpha) y)`` and log|dz/dy| summed per item.

    ``alpha`` keeps the logit finite at y = 0 and 1 (RealNVP uses 0.05)."""
    if not 0.0 <= alpha < 0.5:
        raise ConfigError(f"the logit transform's alpha must be in [0, 0.5), got {alpha}")
    s = alpha + (1.0 - 2.0 * alpha) * y
    z = torch.log(s) - torch.log1p(-s)
    log_jac = math.log(1.0 - 2.0 * alpha) - torch.log(s) - torch.log1p(-s)
    return z, log_jac.flatten(1).sum(1)


def inverse_logit_transform(z: Tensor, alpha: float) -> Tensor:
    """The ``y`` in [0, 1] whose logit transform is ``z`` (clamped at the edges)."""
    return ((torch.sigmoid(z) - alpha) / (1.0 - 2.0 * alpha)).clamp(0.0, 1.0)


def bits_per_dim(nll_nats: Tensor, dims: int) -> Tensor:
    """Nats per item -> bits per dimension."""
    return nll_nats / (dims * LOG2)


def dequantized_nll(log_p_y: Tensor, dims: int, bins: int = PIXEL_BINS) -> Tensor:
    """NLL in nats of the pixels on the standard [0, bins) scale, from the log-density of
    their dequantised values ``y`` in [0, 1)^dims: ``-log p_y(y) + dims * log(bins)``."""
    return -log_p_y + dims * math.log(bins)


def dequantized_bits_per_dim(log_p_z: Tensor, log_det: Tensor, dims: int,
                             bins: int = PIXEL_BINS) -> Tensor:
    """Bits/dim the standard way (Dinh et al. 2017): ``log_p_z`` is the base density of the
    flow's output and ``log_det`` every log-Jacobian from ``y`` to it (the logit
    transform's included), both per item. A uniform model gives exactly log2(bins)."""
    return bits_per_dim(dequantized_nll(log_p_z + log_det, dims, bins), dims)
