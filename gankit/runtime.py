"""Process-wide settings that make a training process as fast as a bare loop.

glibc's malloc adapts its mmap and trim thresholds to the first large frees it sees. Loading a
data set (float64 arrays converted to uint8, then to float, the temporaries freed) leaves those
thresholds low, and from then on every training step returns heap memory to the kernel and
faults it back in: thousands of fresh page faults and some 18 ``brk`` calls per step, a third
of the step time on a DCGAN-28 (issue 16). Fixing both thresholds before the first large
allocation keeps freed blocks in the heap. The C library is asked only where it is glibc; on
macOS, Windows or musl nothing changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024   # blocks below this come from the heap, never a fresh mmap
TRIM_THRESHOLD = 256 * 1024 * 1024  # free heap top kept before it is given back to the kernel

_done = False


def tune_allocator() -> bool:
    """Fix glibc's mmap/trim thresholds once per process; True when they were set.

    Environment settings win: a user who exports ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` (or ``GANKIT_NO_MALLOPT=1``) keeps the allocator as they chose.
    """
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or os.environ.get("GANKIT_NO_MALLOPT"):
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok


def resolve_device(name: str, option: str = "train.device", fix: str = "train.device=cpu",
                   index: int | None = None):
    """The ``torch.device`` a setting names: ``auto`` (CUDA when there is a GPU, else the CPU),
    ``cpu``, ``cuda`` or ``cuda:N``. ``index`` numbers a bare ``cuda`` (this process's local
    rank under torchrun); ``option`` and ``fix`` name the setting in the ConfigError for a
    device that is not one, or CUDA asked for without a GPU."""
    import torch

    from gankit.errors import ConfigError

    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", index) if index is not None else torch.device("cuda")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{option} '{name}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option} {name} asks for CUDA but no GPU is available; use {fix}")
    if device.type == "cuda" and device.index is None and index is not None:
        device = torch.device("cuda", index)
    return device
