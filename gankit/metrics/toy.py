"""Mode-collapse metrics on the 2-D Gaussian mixtures (the PacGAN definitions).

* a sample is *high quality* when it lies within 3 standard deviations of its nearest mode;
* a mode is *covered* when at least one high-quality sample has it as its nearest mode;
* ``kl`` is KL(histogram of high-quality samples over the modes || uniform), in nats.

PacGAN's count is generous: a generator spread almost uniformly over the square still lands
one sample near most modes. ``modes_fair`` is stricter and reported beside it: the modes that
hold at least a quarter of their fair share (``n / K``) of all samples as high-quality ones.
The distance histogram (``within_1std``, ``high_quality`` = within 3, ``beyond_10std``) tells
too-wide clusters (mass between 3 and 10 std) from bridges between modes (beyond 10).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import Tensor

from gankit import files
from gankit.data.toy import mixture
from gankit.errors import DataError

HQ_STDS = 3.0
FAIR_SHARE = 0.25  # a mode counts for modes_fair with at least this share of n / K samples


def _samples(samples: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(samples).detach().to(torch.float64).cpu()
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise DataError(f"toy metrics need 2-D points [N, 2], got {tuple(x.shape)}")
    return x


Target = Union[str, tuple[Tensor, float]]  # a named mixture, or (means [K, D], std) of any cloud


def _modes_of(target: Target) -> tuple[Tensor, float]:
    return mixture(target) if isinstance(target, str) else (torch.as_tensor(target[0]), float(target[1]))


def nearest_distances(samples: Tensor | np.ndarray, target: Target) -> tuple[Tensor, Tensor]:
    """``(index of the nearest mode, distance to it in std units)`` per sample."""
    means, std = _modes_of(target)
    x = torch.as_tensor(samples).detach().to(torch.float64).cpu()
    if isinstance(target, str):
        x = _samples(x)
    dist = torch.cdist(x, means.to(torch.float64))
    nearest = dist.min(1)
    return nearest.indices, nearest.values / std


def nearest_modes(samples: Tensor | np.ndarray, target: Target) -> tuple[Tensor, Tensor]:
    """``(index of the nearest mode, whether the sample is high quality)`` per sample."""
    idx, dist = nearest_distances(samples, target)
    return idx, dist <= HQ_STDS


def toy_metrics(samples: Tensor | np.ndarray, target: Target) -> dict[str, float]:
    """``modes`` covered (PacGAN), ``modes_fair`` (at least a quarter of the fair share),
    the share of ``high_quality`` samples (0..1), ``kl`` to uniform, and the distance
    histogram shares ``within_1std`` and ``beyond_10std``.

    ``target`` is a mixture name or ``(means, std)``. ``kl`` is infinite when no sample is
    high quality (the histogram is then undefined).
    """
    idx, dist = nearest_distances(samples, target)
    hq = dist <= HQ_STDS
    k = len(_modes_of(target)[0])
    spread = {"within_1std": float((dist <= 1).double().mean()),
              "beyond_10std": float((dist > 10).double().mean())}
    if not bool(hq.any()):
        return {"modes": 0, "modes_fair": 0, "high_quality": 0.0, "kl": float("inf"), **spread}
    hist = torch.bincount(idx[hq], minlength=k).to(torch.float64)
    p = hist / hist.sum()
    kl = torch.special.xlogy(p, p * k).sum()
    fair = int((hist >= FAIR_SHARE * len(idx) / k).sum())
    return {"modes": int((hist > 0).sum()), "modes_fair": fair,
            "high_quality": float(hq.double().mean()), "kl": float(kl), **spread}


def plot_toy(samples: Tensor | np.ndarray, mixture_name: str, path: str | Path,
             title: str = "") -> Path:
    """Scatter the samples (high quality in blue, others in grey) over the true modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means, std = mixture(mixture_name)
    x = _samples(samples).numpy()
    _, hq = nearest_modes(x, mixture_name)
    hq = hq.numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    # every evaluated sample, small and translucent so that density shows; modes on top
    ax.scatter(x[~hq, 0], x[~hq, 1], s=1, c="0.55", alpha=0.3, lw=0,
               label=f"low quality ({(~hq).mean():.1%})")
    ax.scatter(x[hq, 0], x[hq, 1], s=1, c="tab:blue", alpha=0.3, lw=0,
               label=f"high quality ({hq.mean():.1%})")
    for mx, my in means.numpy():
        ax.add_patch(plt.Circle((mx, my), HQ_STDS * std, fill=False, color="red", lw=0.8, zorder=3))
    ax.scatter(means[:, 0], means[:, 1], s=14, c="red", marker="x", label="true modes", zorder=4)
    ax.set_aspect("equal")
    # the legend sits below the axes, so it never hides samples
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, fontsize=7,
                       frameon=False)
    handles = getattr(legend, "legend_handles", None) or legend.legendHandles
    for handle in handles[:2]:  # the sample dots, drawn tiny and faint, shown readable here
        handle.set_sizes([20])
        handle.set_alpha(1.0)
    ax.set_title(title or mixture_name)
    try:  # whole or not at all: a full disk keeps the previous picture
        with files.written(path, suffix=True) as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
