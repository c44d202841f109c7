"""AFD: the share of generated images in which an anime face is detected.

Detection uses the ``animeface`` package (nagadomi's imager::AnimeFace, a pure C library
with a Pillow front end; ``pip install animeface``). It is optional: without it the metric
raises a DataError that says how to install it.
"""
from __future__ import annotations

from typing import Callable, Iterable

from PIL import Image
from torch import Tensor

from gankit.errors import DataError

Detector = Callable[[Image.Image], list]


def load_detector() -> Detector:
    """``animeface.detect``, or a DataError saying how to install it."""
    try:
        import animeface
    except ImportError:
        raise DataError("the 'afd' metric needs the animeface package; install it with: "
                        "pip install animeface") from None
    return animeface.detect


def to_pil(images: Tensor) -> list[Image.Image]:
    """[-1, 1] NCHW (1 or 3 channels) -> RGB Pillow images."""
    from gankit.data.folders import to_uint8

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"AFD needs images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    arr = to_uint8(images)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).convert("RGB") for a in arr]


def count_faces(images: Tensor, detector: Detector | None = None) -> int:
    """How many images of the batch hold at least one detected face."""
    detect = detector or load_detector()
    return sum(1 for im in to_pil(images) if len(detect(im)) > 0)


def anime_face_rate(images: Tensor | Iterable[Tensor], detector: Detector | None = None) -> float:
    """Share (0..1) of images with at least one anime face; takes a batch or an iterable."""
    detect = detector or load_detector()
    batches = [images] if isinstance(images, Tensor) else images
    hits = total = 0
    for batch in batches:
        hits += count_faces(batch, detect)
        total += batch.shape[0]
    if total == 0:
        raise DataError("AFD needs at least one image")
    return hits / total
