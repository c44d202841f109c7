"""Mode-collapse metrics on the 2-D Gaussian mixtures (the PacGAN definitions).

* a sample is *high quality* when it lies within 3 standard deviations of its nearest mode;
* a mode is *covered* when at least one high-quality sample has it as its nearest mode;
* ``kl`` is KL(histogram of high-quality samples over the modes || uniform), in nats.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gankit.data.toy import mixture
from gankit.errors import DataError

HQ_STDS = 3.0


def _samples(samples: Tensor | np.ndarray) -> Tensor:
    x = torch.as_tensor(samples).detach().to(torch.float64).cpu()
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise DataError(f"toy metrics need 2-D points [N, 2], got {tuple(x.shape)}")
    return x


def nearest_modes(samples: Tensor | np.ndarray, mixture_name: str) -> tuple[Tensor, Tensor]:
    """``(index of the nearest mode, whether the sample is high quality)`` per sample."""
    means, std = mixture(mixture_name)
    dist = torch.cdist(_samples(samples), means.to(torch.float64))
    nearest = dist.min(1)
    return nearest.indices, nearest.values <= HQ_STDS * std


def toy_metrics(samples: Tensor | np.ndarray, mixture_name: str) -> dict[str, float]:
    """``modes`` covered, share of ``high_quality`` samples (0..1), and ``kl`` to uniform.

    ``kl`` is infinite when no sample is high quality (the histogram is then undefined).
    """
    idx, hq = nearest_modes(samples, mixture_name)
    k = len(mixture(mixture_name)[0])
    if not bool(hq.any()):
        return {"modes": 0, "high_quality": 0.0, "kl": float("inf")}
    hist = torch.bincount(idx[hq], minlength=k).to(torch.float64)
    p = hist / hist.sum()
    kl = torch.special.xlogy(p, p * k).sum()
    return {"modes": int((hist > 0).sum()), "high_quality": float(hq.double().mean()),
            "kl": float(kl)}


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
    ax.scatter(x[~hq, 0], x[~hq, 1], s=2, c="0.6", alpha=0.5, label="low quality")
    ax.scatter(x[hq, 0], x[hq, 1], s=2, c="tab:blue", alpha=0.5, label="high quality")
    for mx, my in means.numpy():
        ax.add_patch(plt.Circle((mx, my), HQ_STDS * std, fill=False, color="red", lw=0.8, zorder=0))
    ax.scatter(means[:, 0], means[:, 1], s=12, c="red", marker="x", label="true modes", zorder=0)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title or mixture_name)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
