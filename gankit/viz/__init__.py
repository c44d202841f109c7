"""Pictures of samples: image grids with Pillow, scatter plots for vector data."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gankit.data.folders import to_uint8  # noqa: F401  ([-1, 1] NCHW -> uint8 NHWC)


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1,
               columns: list[str] | None = None, panels: list[str] | None = None) -> Image.Image:
    """Tile a [-1, 1] NCHW batch into one picture, ``nrow`` images per row, each pixel drawn
    as ``scale`` x ``scale``. ``columns`` names the grid's columns (one per column: the class
    of a conditional grid); ``panels`` names the side-by-side panels inside every item
    (pix2pix's input | output | target). Labels go in a header row; the grid is enlarged as
    far as 4x when the labels would not fit over their pictures."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    arr = to_uint8(images)
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y:y + h, x:x + w] = arr[i]
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    labels = columns or panels
    if labels:
        slot = w if columns else w / len(panels)
        widest = max(_FONT.getbbox(t)[2] for t in labels) + 4
        scale = max(scale, min(4, math.ceil(widest / slot)))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    if not labels:
        return image
    # (centre x, text) of every label: one per column, or one per panel of every column
    spots = [((pad + col * (w + pad)) * scale + (k + 0.5) * slot * scale, text)
             for col in range(nrow) for k, text in
             ([(0, columns[col])] if columns and col < len(columns) else
              list(enumerate(panels or [])))]
    return _with_header(image, spots)


_FONT = ImageFont.load_default(size=11)


def _with_header(image: Image.Image, spots: list[tuple[float, str]], height: int = 16) -> Image.Image:
    """``image`` under a white band holding each text centred at its x."""
    out = Image.new(image.mode, (image.width, image.height + height), 255 if image.mode == "L" else (255,) * 3)
    out.paste(image, (0, height))
    draw = ImageDraw.Draw(out)
    for x, text in spots:
        draw.text((x, height / 2), text, fill=0 if image.mode == "L" else (0, 0, 0), font=_FONT, anchor="mm")
    return out


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None, **labels) -> Path:
    """Write :func:`image_grid` (``scale``, ``columns``, ``panels`` pass through) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow, **labels).save(path)
    return path


def grid_layout(model) -> dict:
    """How a model's samples are laid out: a conditional model's grid has one column per
    class (its samples cycle through the classes), a translation model names its panels."""
    space = getattr(model, "space", None)
    if space is not None and space.num_classes > 0:
        return {"nrow": space.num_classes, "columns": [str(c) for c in space.class_names]}
    panels = getattr(model, "panels", ())
    return {"panels": list(panels)} if panels else {}


def write_sample_grid(samples: torch.Tensor, model, out: Path, scale: int = 1,
                      same_condition: bool = False) -> Path:
    """``gankit sample --grid``: one grid picture at ``out`` (a .png path, or a folder that gets
    grid.png), class-aligned for a conditional model unless every sample has one condition."""
    from gankit.errors import GankitError

    if samples.dim() != 4:
        raise GankitError("--grid and --scale draw images; this run's samples are not images (drop them)")
    if not 1 <= scale <= 16:
        raise GankitError(f"--scale must be between 1 and 16, got {scale}")
    layout = grid_layout(model)
    if same_condition:
        layout.pop("nrow", None), layout.pop("columns", None)
    out = Path(out)
    path = out if out.suffix.lower() == ".png" else out / "grid.png"
    return save_grid(samples, path, scale=scale, **layout)


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
    ax.scatter(p[:, 0], p[:, 1] if p.shape[1] > 1 else np.zeros(len(p)), s=3, alpha=0.5,
               label=f"{len(p)} samples")
    if reference is not None:  # drawn last, so the modes stay visible over dense samples
        r = reference.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=40, c="red", marker="x", label="true modes", zorder=3)
    # below the axes: a legend inside would hide the samples under it
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, frameon=False)
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def sample_suffix(info) -> str:
    """The suffix of the file :func:`save_samples` writes for this data: sentences are text,
    everything else a picture."""
    return ".txt" if info.kind == "sequence" else ".png"


def save_samples(samples: torch.Tensor, info, path: Path, **layout) -> Path:
    """A grid for images (``layout`` from :func:`grid_layout`), a scatter (over the true
    modes of a toy mixture) for vectors, sentences for sequences (``path`` takes
    :func:`sample_suffix`)."""
    if samples.dim() == 4:
        return save_grid(samples, path, **layout)
    if info.kind == "sequence":  # sentences, not points
        from gankit.data.text import write_sentences

        return write_sentences(samples, info.vocab, Path(path).with_suffix(sample_suffix(info)))
    reference = None
    from gankit.data.toy import MIXTURES

    if info.name in MIXTURES:
        reference = MIXTURES[info.name][0]
    return save_scatter(samples, path, reference, title=info.name)
