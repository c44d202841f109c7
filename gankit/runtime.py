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


def passive_openmp() -> bool:
    """Ask the OpenMP runtime to sleep, not spin, between parallel regions, unless the user
    chose (``OMP_WAIT_POLICY`` set); True when this set it. Must run before torch is imported:
    libgomp reads the variable once, when it loads.

    By default each of torch's intra-op threads spins for ~300,000 iterations after every
    parallel op, waiting for the next one. Alone on the machine that spin is free; beside
    another process using the same cores it takes the cycles the other process's threads
    need, and both slow down far below half speed (issue 28: a default-threads training beside
    another ran at 2.7 steps/s against 45 alone; BENCHMARKS.md, "Two trainings on one machine")."""
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


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


# CPU flags that give bf16 matrix products at native speed: without them oneDNN emulates bf16
# with conversions around fp32 arithmetic, slower than plain fp32 (BENCHMARKS.md, "bf16 on
# the CPU")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The first processor's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU multiplies bf16 natively (AMX or AVX512-BF16); ``flags`` injects the
    processor's flags (tests, or a machine without ``/proc/cpuinfo``, which counts as no)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_amp(amp: str, device, flags: frozenset[str] | None = None,
                cuda_bf16: bool | None = None) -> str:
    """The precision ``train.amp`` stands for on ``device``: ``none``, ``bf16`` or ``fp16``.

    ``auto`` is bf16 on a CPU with AMX or AVX512-BF16 and on a CUDA GPU that supports bf16,
    fp32 (``none``) elsewhere. ``flags`` and ``cuda_bf16`` inject the hardware's answers."""
    if amp != "auto":
        return amp
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
        return "bf16" if supported else "none"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16(flags) else "none"
    return "none"


def describe_amp(amp: str, resolved: str, device_type: str = "cpu") -> str:
    """One line for the log and ``--dry-run``: the precision a run trains in, and why."""
    names = {"none": "fp32", "bf16": "bf16 autocast (fp32 weights, optimiser state and penalties)",
             "fp16": "fp16 autocast with loss scaling"}
    if amp != "auto":
        return f"precision: {names[resolved]} (train.amp={amp})"
    if device_type == "cuda":
        why = "the GPU " + ("supports" if resolved == "bf16" else "lacks") + " bf16"
    elif resolved == "bf16":
        why = "the CPU has " + "/".join(f for f in BF16_CPU_FLAGS if f in cpu_flags())
    else:
        why = f"the CPU has neither {' nor '.join(BF16_CPU_FLAGS)}"
    return f"precision: {names[resolved]} (train.amp=auto: {why})"
