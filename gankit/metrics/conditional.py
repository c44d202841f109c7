"""Metrics of conditional and image-to-image models.

* conditional GAN: the share of samples a classifier assigns to the class they were asked
  for (gankit's digit classifier on MNIST-5k), overall and per class, the intra-class FID
  (the FID between the samples and the real images of each class, averaged over classes),
  and the within-class diversity (mean pairwise feature distance of a class's samples over
  that of its real images), which catches a class collapsed onto one glyph;
* pix2pix: L1, PSNR and SSIM between translations and targets of held-out pairs;
* CycleGAN: the cycle reconstruction error, FID in each target domain, and, given labels,
  the share of translated images that keep their class.

Images are in [-1, 1]; PSNR and SSIM are computed on [0, 1] (data range 1). SSIM is Wang et
al.'s (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over
the valid window positions and the channels.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import ConfigError, DataError
from gankit.metrics.extractors import Extractor
from gankit.metrics.frechet import frechet_distance
from gankit.metrics.stats import FeatureStats

BATCH = 500
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


# ---- helpers ---------------------------------------------------------------------------------
def _chunks(x: Tensor, size: int = BATCH) -> Iterable[Tensor]:
    for start in range(0, len(x), size):
        yield x[start:start + size]


def extract(extractor: Extractor, images: Tensor) -> tuple[Tensor, Tensor | None]:
    """Features ``[N, F]`` and class probabilities ``[N, K]`` (or None) of ``images``."""
    feats, probs = [], []
    for chunk in _chunks(images):
        out = extractor(chunk)
        feats.append(out.features)
        if out.probs is not None:
            probs.append(out.probs)
    return torch.cat(feats), (torch.cat(probs) if probs else None)


def fid_of_features(a: Tensor, b: Tensor) -> float:
    """The Frechet distance between the Gaussians fitted to two feature sets."""
    sa, sb = FeatureStats(), FeatureStats()
    sa.update(a)
    sb.update(b)
    return frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov)


def translate_all(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``fn`` over ``x`` in chunks, gathered on the CPU."""
    return torch.cat([fn(chunk).float().cpu() for chunk in _chunks(x)])


# ---- class agreement and intra-class FID -----------------------------------------------------
def class_agreement(probs: Tensor, labels: Tensor) -> float:
    """The share of items whose most probable class is their label."""
    if len(probs) != len(labels) or len(labels) == 0:
        raise DataError(f"need one label per item, got {len(probs)} items and {len(labels)} labels")
    return float((probs.argmax(1) == labels.to(probs.device)).float().mean())


def intra_class_fid(fake_feats: Tensor, fake_y: Tensor, real_feats: Tensor, real_y: Tensor,
                    class_names: list[str]) -> dict[str, float]:
    """``{intra_fid: mean over classes, intra_fid/<name>: per class}``."""
    out: dict[str, float] = {}
    for k, name in enumerate(class_names):
        fake_k, real_k = fake_feats[fake_y == k], real_feats[real_y == k]
        if len(fake_k) < 2 or len(real_k) < 2:
            raise DataError(f"class '{name}' has {len(fake_k)} samples and {len(real_k)} real "
                            "images; intra-class FID needs at least 2 of each")
        out[f"intra_fid/{name}"] = fid_of_features(fake_k, real_k)
    out["intra_fid"] = float(np.mean([out[f"intra_fid/{n}"] for n in class_names]))
    return out


def mean_pairwise_distance(feats: Tensor) -> float:
    """The mean Euclidean distance between two different items of ``feats`` [N, F]."""
    if len(feats) < 2:
        raise DataError(f"a pairwise distance needs at least 2 items, got {len(feats)}")
    return float(torch.pdist(feats.double()).mean())


def per_class_scores(probs: Tensor, fake_feats: Tensor, fake_y: Tensor, real_feats: Tensor,
                     real_y: Tensor, class_names: list[str]) -> dict[str, float]:
    """Per class: ``class_accuracy/<name>`` and ``within_class_diversity/<name>``, the
    samples' mean pairwise distance in the classifier's feature space over that of the real
    items of the class (real = 1.0; a class whose samples repeat one glyph scores near 0);
    ``within_class_diversity`` and ``within_class_diversity_min`` summarise the classes."""
    out: dict[str, float] = {}
    for k, name in enumerate(class_names):
        mine = fake_y == k
        out[f"class_accuracy/{name}"] = class_agreement(probs[mine], fake_y[mine])
        real_spread = mean_pairwise_distance(real_feats[real_y == k])
        out[f"within_class_diversity/{name}"] = mean_pairwise_distance(fake_feats[mine]) / real_spread
    spreads = [out[f"within_class_diversity/{n}"] for n in class_names]
    out["within_class_diversity"] = float(np.mean(spreads))
    out["within_class_diversity_min"] = float(min(spreads))
    return out


def conditional_scores(model, real_x: Tensor, real_y: Tensor, extractor: Extractor,
                       n_per_class: int = 500, seed: int = 0, use_ema: bool = True) -> dict[str, float]:
    """Class agreement and intra-class FID of a conditional GAN on labelled real data.

    The extractor's class k must be the data's class k (gankit's digit classifier and
    MNIST-5k's classes 'zero'..'nine')."""
    space = getattr(model, "space", None)
    if space is None:
        raise ConfigError("this model is unconditional; conditional metrics need data.condition")
    if extractor.num_classes != space.num_classes:
        raise ConfigError(f"the '{extractor.name}' classifier has {extractor.num_classes} classes "
                          f"but the data has {space.num_classes}; use a classifier of the data's classes")
    labels = torch.arange(space.num_classes).repeat_interleave(n_per_class)
    g = torch.Generator().manual_seed(seed)
    fake = model.generate(len(labels), generator=g, c=space.from_labels(labels.to(model.device)),
                          use_ema=use_ema)
    fake_feats, probs = extract(extractor, fake)
    real_feats, _ = extract(extractor, real_x)
    scores = {"class_accuracy": class_agreement(probs, labels)}
    scores.update(intra_class_fid(fake_feats, labels, real_feats, real_y, space.class_names))
    scores.update(per_class_scores(probs, fake_feats, labels, real_feats, real_y, space.class_names))
    return scores


# ---- paired translation: L1, PSNR, SSIM ------------------------------------------------------
def _unit(x: Tensor) -> Tensor:
    return (x.float() + 1.0) / 2.0


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB of [-1, 1] images measured on [0, 1] (``inf`` for equal images)."""
    mse = (_unit(pred) - _unit(target)).square().flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """The normalised 2-D Gaussian window ``[size, size]`` (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM of [-1, 1] images ``[N, C, H, W]`` (H, W >= 11) measured on [0, 1]."""
    if pred.shape != target.shape or pred.dim() != 4:
        raise DataError(f"SSIM needs two image batches of one shape, got {tuple(pred.shape)} and "
                        f"{tuple(target.shape)}")
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise DataError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px")
    n, c = pred.shape[:2]
    x = _unit(pred).double().reshape(n * c, 1, *pred.shape[-2:])
    y = _unit(target).double().reshape(n * c, 1, *pred.shape[-2:])
    w = gaussian_window()[None, None]
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mx * mx
    syy = F.conv2d(y * y, w) - my * my
    sxy = F.conv2d(x * y, w) - mx * my
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    index = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return index.reshape(n, c, -1).mean(dim=(1, 2)).float()


def paired_scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean L1 (on [-1, 1]), PSNR and SSIM of translations against their targets."""
    return {"l1": float((pred.float() - target.float()).abs().mean()),
            "psnr": float(psnr(pred, target).mean()),
            "ssim": float(ssim(pred, target).mean())}


def pix2pix_scores(model, a: Tensor, b: Tensor, use_ema: bool = True) -> dict[str, float]:
    """:func:`paired_scores` of a pix2pix model's translations of held-out inputs ``a``."""
    pred = translate_all(lambda x: model.translate(x, use_ema), a)
    return paired_scores(pred, b)


# ---- unpaired translation ----------------------------------------------------------------------
def cyclegan_scores(model, a: Tensor, b: Tensor, extractor: Extractor | None = None,
                    y: Tensor | None = None, use_ema: bool = True) -> dict[str, float]:
    """Cycle reconstruction L1 of both sides; with an extractor, FID of the translations in
    their target domain; with labels ``y`` of the items of ``a`` and ``b`` too, the share of
    translations the classifier gives the item's class (``keep_class/*``)."""
    fake_b = translate_all(lambda x: model.translate(x, True, use_ema), a)
    fake_a = translate_all(lambda x: model.translate(x, False, use_ema), b)
    rec_a = translate_all(lambda x: model.translate(x, False, use_ema), fake_b)
    rec_b = translate_all(lambda x: model.translate(x, True, use_ema), fake_a)
    scores = {"cycle_l1/A": float((rec_a - a.float()).abs().mean()),
              "cycle_l1/B": float((rec_b - b.float()).abs().mean())}
    if extractor is None:
        return scores
    feats = {k: extract(extractor, v) for k, v in
             {"a": a, "b": b, "fake_a": fake_a, "fake_b": fake_b}.items()}
    fid = extractor.fid_key  # named by its features: fid_digits on the built-in digits
    scores[f"{fid}/AtoB"] = fid_of_features(feats["fake_b"][0], feats["b"][0])
    scores[f"{fid}/BtoA"] = fid_of_features(feats["fake_a"][0], feats["a"][0])
    if y is not None and feats["a"][1] is not None:
        for name in ("a", "b", "fake_a", "fake_b"):
            label = {"a": "real_A", "b": "real_B", "fake_a": "BtoA", "fake_b": "AtoB"}[name]
            scores[f"keep_class/{label}"] = class_agreement(feats[name][1], y)
    return scores
