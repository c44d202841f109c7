"""Memorisation: how close generated samples come to their nearest training images.

Distances are root-mean-square pixel differences in [-1, 1] units (0 = identical; two
unrelated MNIST digits are about 0.6 apart). A sample is flagged as a *near-copy* when its
nearest training image is much closer than its typical close neighbours: the ratio of the
nearest distance to the mean of the ``neighbours`` nearest distances is below ``ratio``.
A scale-free test works on any data set without a tuned absolute threshold: a genuinely
new sample sits about as far from its nearest training image as from its 50th nearest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import Tensor

from gankit import files
from gankit.errors import DataError


class NearestTracker:
    """The ``neighbours`` smallest distances of each fake sample, and its closest image."""

    def __init__(self, fake: Tensor, neighbours: int):
        self.fake = fake.reshape(fake.shape[0], -1).float()
        self.dims = self.fake.shape[1]
        self.neighbours = neighbours
        # Starts with one column of inf so that the first batch is "closer" everywhere.
        self.dists = torch.full((fake.shape[0], 1), float("inf"))
        self.best = torch.zeros_like(fake)
        self.seen = 0

    def update(self, batch: Tensor) -> None:
        flat = batch.reshape(batch.shape[0], -1).float()
        if flat.shape[1] != self.dims:
            raise DataError(f"training images of shape {tuple(batch.shape[1:])} cannot be compared "
                            f"with samples of shape {tuple(self.best.shape[1:])}")
        d = torch.cdist(self.fake, flat) / self.dims ** 0.5
        batch_min = d.min(1)
        closer = batch_min.values < self.dists[:, 0]
        self.best[closer] = batch[batch_min.indices[closer]].to(self.best.dtype)
        merged = torch.cat([self.dists, d], 1)
        k = min(self.neighbours, merged.shape[1])
        self.dists = merged.topk(k, dim=1, largest=False).values
        self.seen += batch.shape[0]

    def nearest(self) -> Tensor:
        """[N, min(seen, neighbours)] sorted distances to the closest training images.

        The matrix-product distances lose precision near zero (an exact copy can come out
        at 1e-3), so the nearest one is recomputed directly from the kept closest image.
        """
        dists = self.dists[:, :min(self.seen, self.neighbours)].clone()
        diff = self.fake.double() - self.best.reshape(self.best.shape[0], -1).double()
        dists[:, 0] = diff.pow(2).mean(1).sqrt().float()
        return dists


def memorisation(fake: Tensor, train: Iterable[Tensor] | Tensor, *, neighbours: int = 50,
                 ratio: float = 1 / 3, out_path: str | Path | None = None,
                 n_pairs: int = 16) -> dict[str, float]:
    """Nearest-training-image distances of ``fake`` [N, ...]; flags near-copies.

    ``train`` is a tensor or an iterable of batches (streamed: it is read once). Returns
    ``nn_min`` and ``nn_median`` (RMS distances), ``near_copies`` (count) and
    ``near_copy_fraction``. With ``out_path``, writes a PNG whose top row holds the
    ``n_pairs`` samples closest to the training set and whose bottom row their nearest
    training images.
    """
    if fake.ndim < 2 or fake.shape[0] == 0:
        raise DataError(f"memorisation needs a non-empty batch of samples, got {tuple(fake.shape)}")
    tracker = NearestTracker(fake.detach().cpu(), neighbours)
    for batch in ([train] if isinstance(train, Tensor) else train):
        tracker.update(batch.detach().cpu())
    return summarise(fake, tracker, ratio, out_path, n_pairs)


def summarise(fake: Tensor, tracker: NearestTracker, ratio: float = 1 / 3,
              out_path: str | Path | None = None, n_pairs: int = 16) -> dict[str, float]:
    """The scores of :func:`memorisation` from a tracker that has seen the training set."""
    dists = tracker.nearest()
    if dists.shape[1] < 2:
        raise DataError("memorisation needs at least 2 training images")
    nearest = dists[:, 0]
    flagged = nearest < ratio * dists.mean(1)
    if out_path is not None:
        save_pairs(fake, tracker.best, nearest, out_path, n_pairs)
    return {"nn_min": float(nearest.min()), "nn_median": float(nearest.median()),
            "near_copies": int(flagged.sum()), "near_copy_fraction": float(flagged.double().mean())}


def save_pairs(fake: Tensor, nearest_train: Tensor, dists: Tensor, path: str | Path,
               n_pairs: int = 16) -> Path:
    """PNG: the ``n_pairs`` closest samples (top row) over their nearest training images."""
    from gankit.viz import save_grid

    if fake.ndim != 4:
        raise DataError("a picture of the closest pairs needs image samples [N, C, H, W]")
    order = dists.argsort()[:n_pairs]
    grid = torch.cat([fake.detach().cpu()[order], nearest_train[order]])
    path = Path(path)
    with files.written(path, suffix=True) as tmp:  # whole or not at all
        save_grid(grid, tmp, nrow=len(order))
    return path
