"""AFD: the share of generated images in which an anime face is detected.

Detection uses the ``animeface`` package (nagadomi's imager::AnimeFace, a C library with a
Pillow front end; ``pip install animeface``). It is optional: without it the metric raises a
DataError that says how to install it.

Why we do not call ``animeface.detect``: its C extension (``_nvxs``) is handed
``im.getdata()`` and reads Pillow's private C struct behind that object, the
``ImagingMemoryInstance``, with the layout of Pillow <= 11 (``char mode[7]``, then ints
``type, depth, bands, xsize, ysize`` at byte offsets 8..24, and the row pointers ``image8`` at
40 and ``image`` at 56). Pillow 12 replaced ``char mode[7]`` by a 4-byte ``ModeID`` enum, which
moves every later field 4 or 8 bytes down: the extension then reads ``ysize`` as the width and
the (null) palette pointer as the height, scans a 0-row image and finds no face in anything.
So we hand ``_nvxs.detect`` our own struct in the old layout over our own RGBX buffer: a
ctypes structure instance, whose object header is followed by the pointer to its memory, the
very place where Pillow's ``ImagingObject`` keeps its ``Imaging`` pointer. Nothing of Pillow's
is read, so Pillow upgrades cannot break it again; the self-check below catches anything else.

The detector's rate depends strongly on the input size (on real 96-px crops: 0.88 at 128 px,
0.12 at 64 px), so every image is resized to one protocol size with one filter before
detection, and the protocol is stored with the score. The default size was chosen by
measurement (BENCHMARKS.md, "AFD: detector input size").
"""
from __future__ import annotations

import ctypes
import functools
from typing import Any, Callable, Iterable

import numpy as np
from PIL import Image
from torch import Tensor

from gankit.errors import DataError

DEFAULT_SIZE = 128  # where both real crops and drawn faces score highest (see module doc)
FILTER = "bicubic"
_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "lanczos": Image.LANCZOS}

Detector = Callable[[Image.Image], list]


class _OldImaging(ctypes.Structure):
    """``struct ImagingMemoryInstance`` as Pillow <= 11 laid it out (the fields ``_nvxs`` reads)."""

    _fields_ = [("mode", ctypes.c_char * 7), ("type", ctypes.c_int), ("depth", ctypes.c_int),
                ("bands", ctypes.c_int), ("xsize", ctypes.c_int), ("ysize", ctypes.c_int),
                ("palette", ctypes.c_void_p), ("image8", ctypes.c_void_p),
                ("image32", ctypes.c_void_p), ("image", ctypes.c_void_p)]


def _ctypes_points_at_its_memory() -> bool:
    """True when a ctypes instance keeps the address of its memory right after the object
    header (CPython's ``CDataObject.b_ptr``), where ``_nvxs`` looks for the Imaging pointer."""
    probe = _OldImaging()
    header = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # refcount, type
    return ctypes.c_void_p.from_address(id(probe) + header).value == ctypes.addressof(probe)


def detect_rgb(nvxs_detect: Callable[[Any], list], rgb: np.ndarray) -> list[dict]:
    """Run ``_nvxs.detect`` on a ``uint8 [H, W, 3]`` array; the raw result dicts."""
    h, w = rgb.shape[:2]
    rgbx = np.zeros((h, w, 4), dtype=np.uint8)  # Pillow's RGB pixels are 4 bytes (RGBX)
    rgbx[..., :3] = rgb
    base = rgbx.ctypes.data
    rows = (ctypes.c_void_p * h)(*(base + 4 * w * y for y in range(h)))
    core = _OldImaging(b"RGB", 0, 8, 3, w, h, None, None, ctypes.addressof(rows),
                       ctypes.addressof(rows))
    return nvxs_detect(core)  # rgbx, rows and core stay alive until the call returns


class FaceDetector:
    """The animeface detector at a fixed protocol: each image is resized to ``size`` px with
    ``filter`` before detection. Call it on a Pillow image for the list of faces."""

    def __init__(self, nvxs_detect: Callable[[Any], list], size: int = DEFAULT_SIZE,
                 filter: str = FILTER, version: str = "?"):
        if filter not in _FILTERS:
            raise DataError(f"unknown AFD resize filter '{filter}'; known: {', '.join(_FILTERS)}")
        self._detect, self.size, self.filter, self.version = nvxs_detect, size, filter, version

    def protocol(self) -> dict[str, Any]:
        return {"detector": f"animeface-{self.version}", "size": self.size,
                "resize": f"pil-{self.filter}"}

    def resize(self, im: Image.Image) -> Image.Image:
        im = im.convert("RGB")
        if im.size != (self.size, self.size):
            im = im.resize((self.size, self.size), _FILTERS[self.filter])
        return im

    def __call__(self, im: Image.Image) -> list:
        return detect_rgb(self._detect, np.asarray(self.resize(im)))


def known_positives(n: int = 8) -> list[Image.Image]:
    """The first ``n`` built-in drawn faces, drawn at 64 px as the training faces are."""
    from gankit.data.faces import draw_faces

    return [Image.fromarray(a) for a in draw_faces(n)[0]]


@functools.lru_cache(maxsize=8)
def load_detector(size: int = DEFAULT_SIZE, filter: str = FILTER) -> FaceDetector:
    """The animeface detector at ``size``/``filter``, after a self-check: it must find the face
    in a known positive, or AFD refuses (a DataError) instead of reporting a silent 0."""
    try:
        import animeface
        from animeface import _nvxs
    except ImportError:
        raise DataError("the 'afd' metric needs the animeface package; install it with: "
                        "pip install animeface") from None
    if not _ctypes_points_at_its_memory():
        raise DataError("the anime face detector cannot be called on this Python (ctypes "
                        "layout); AFD is unavailable")
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("animeface")
    except PackageNotFoundError:
        ver = getattr(animeface, "__version__", "?")
    detector = FaceDetector(_nvxs.detect, size, filter, ver)
    # at 64 px the detector finds about 4 in 10 drawn faces, at 128 px all: one of 8 is a
    # loose bar that only a broken detector (or a size where AFD means nothing) fails
    if not any(detector(im) for im in known_positives()):
        raise DataError(f"the anime face detector (animeface {ver}) finds no face in 8 known "
                        f"positives (built-in drawn faces) at {size} px; it is broken here or the "
                        "size is too small, so AFD is refused")
    return detector


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


def detector_protocol(detector: Detector) -> dict[str, Any]:
    """How ``detector`` was run (an injected callable: its name only)."""
    if isinstance(detector, FaceDetector):
        return detector.protocol()
    return {"detector": getattr(detector, "__name__", type(detector).__name__)}


# Scores a degenerate generator can max out, so never reported without FID: a collapsed
# generator repeating one face-like pattern scores AFD 1.0 (``gankit explain
# evaluation-pitfalls``), and the digit classifier reads uniform noise as a digit with
# p >= 0.9 every time (readable 1.0 against 0.95 for real digits; digit FID 185 against 0).
NEVER_WITHOUT_FID = ("afd", "readable")


def with_fid(names: Iterable[str]) -> list[str]:
    """``names`` with ``fid`` added after the first of :data:`NEVER_WITHOUT_FID` when it is
    missing, so the commands never report those scores without the FID that exposes them."""
    out = [n.strip().lower() for n in names if n.strip()]
    first = next((n for n in out if n in NEVER_WITHOUT_FID), None)
    if first is not None and "fid" not in out:
        out.insert(out.index(first) + 1, "fid")
    return out
