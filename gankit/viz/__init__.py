"""Pictures of samples: image grids with Pillow, scatter plots for vector data."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> Image.Image:
    """Tile a [-1, 1] NCHW batch into one picture, ``nrow`` images per row."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    arr = to_uint8(images)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y:y + h, x:x + w] = arr[i]
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow).save(path)
    return path


def save_scatter(points: torch.Tensor, path: Path, reference: torch.Tensor | None = None,
                 title: str = "") -> Path:
    """Scatter of the first two coordinates, over ``reference`` points (e.g. true modes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    p = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(p[:, 0], p[:, 1] if p.shape[1] > 1 else np.zeros(len(p)), s=3, alpha=0.5, label="samples")
    if reference is not None:
        r = reference.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=40, c="red", marker="x", label="true modes")
        ax.legend(loc="upper right")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_samples(samples: torch.Tensor, info, path: Path) -> Path:
    """A grid for images, a scatter (over the true modes of a toy mixture) for vectors."""
    if samples.dim() == 4:
        return save_grid(samples, path)
    if info.kind == "sequence":  # sentences, not points
        from gankit.data.text import write_sentences

        return write_sentences(samples, info.vocab, Path(path).with_suffix(".txt"))
    reference = None
    from gankit.data.toy import MIXTURES

    if info.name in MIXTURES:
        reference = MIXTURES[info.name][0]
    return save_scatter(samples, path, reference, title=info.name)
