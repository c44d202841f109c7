"""The image resize of the reference (TensorFlow) FID: TF1 ``resize_bilinear``.

TF1's bilinear resize (``align_corners=False`` without half-pixel centres) samples output
pixel ``i`` at input coordinate ``i * in / out``, computed in float32, and clamps the
neighbour below the border. It differs from ``torch.nn.functional.interpolate`` (which
uses half-pixel centres) by up to a whole input pixel of shift, enough to move FID by
several points on small images, so it is reimplemented here.

Bilinear interpolation is separable and linear, so the resize is two small matrix
products with fixed interpolation matrices: rows, then columns.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor


@functools.lru_cache(maxsize=32)
def tf_bilinear_matrix(n_in: int, n_out: int) -> Tensor:
    """[n_out, n_in] weights: output pixel i blends input pixels floor(s) and floor(s) + 1,
    where s = i * (n_in / n_out) in float32, as TF1 computes it."""
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    src = torch.arange(n_out, dtype=torch.float32) * scale
    lo = src.floor().long().clamp_(max=n_in - 1)
    hi = (lo + 1).clamp_(max=n_in - 1)
    frac = (src - lo.float()).double()
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    weights.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    weights.index_put_((rows, hi), frac, accumulate=True)
    return weights


def tf_bilinear_resize(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize NCHW ``x`` to ``size`` exactly as TF1 ``resize_bilinear`` does (float result)."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    h, w = x.shape[-2:]
    if (h, w) == (out_h, out_w):
        return x.float()
    rows = tf_bilinear_matrix(h, out_h).to(device=x.device, dtype=torch.float32)
    cols = tf_bilinear_matrix(w, out_w).to(device=x.device, dtype=torch.float32)
    return rows @ x.float() @ cols.T
