"""Checkpoints: one dict with everything an exact resume needs, written atomically.

Read back with ``torch.load(weights_only=True)``, so a checkpoint can hold tensors, numbers,
strings, lists, tuples and dicts only: RNG states are stored as tensors and tuples.
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gankit
from gankit.checkpoint_format import FORMAT, REQUIRED, load_checkpoint  # noqa: F401  (read side, re-exported)
from gankit.errors import CheckpointError
from gankit.files import remove_stale_temporaries, replacing, translated  # noqa: F401  (re-exported)


SLOW_SAVE_ENV = "GANKIT_TEST_SLOW_SAVE"  # test-only: seconds to sleep per write call


class _SlowWriter:
    """Test-only file wrapper that sleeps before each write, so that a kill -9 can land
    while a checkpoint is half written (see benchmarks/kill9.py)."""

    def __init__(self, f, delay: float):
        self.f, self.delay = f, delay

    def write(self, data) -> int:
        time.sleep(self.delay)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


class _ErrorKeeper:
    """Passes writes through and keeps the first OSError: torch's zip writer reacts to a
    failed write by failing again in its cleanup, and that RuntimeError hides the disk's
    own error (ENOSPC, EIO) that the user needs to see."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self) -> None:
        self.f.flush()


def _writer(f):
    """The object ``torch.save`` writes to: the file itself, or the slow test wrapper."""
    delay = float(os.environ.get(SLOW_SAVE_ENV) or 0)
    return _SlowWriter(f, delay) if delay > 0 else f


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`gankit.files.replacing`: whatever happens
    meanwhile (kill -9, a full disk), ``path`` holds either the old or the new checkpoint,
    never a mix; a failed write removes its temporary file and re-raises the disk's error."""
    with replacing(Path(path)) as tmp, open(tmp, "wb") as f:
        out = _ErrorKeeper(_writer(f))
        try:
            torch.save(obj, out)
        except Exception:
            if out.error is not None:
                raise out.error from None
            raise


def save_checkpoint(ckpt: dict[str, Any], path: Path, run_dir: Path, saved_step: int | None) -> None:
    """:func:`atomic_save` whose failures (disk full, I/O error) are one-line errors that say
    which checkpoint survives and how to continue."""
    if saved_step is not None:
        then = f"the previous checkpoint (step {saved_step}) is intact; free space or fix the " \
               f"disk, then continue with: gankit train --resume {run_dir}"
    else:
        then = "no earlier checkpoint exists; free space or fix the disk and train again"
    with translated(path, then, "checkpoint ", CheckpointError):
        atomic_save(ckpt, path)


def resume_point(run_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(last checkpoint, stored config)`` of the run ``--resume`` continues. A run stopped
    before its first checkpoint (killed) has its ``config.yaml`` alone: ``(None, config)``,
    and it starts again from step 0. Every failure is a one-line :class:`CheckpointError`."""
    import yaml

    path, config_file = run_dir / "checkpoints" / "last.pt", run_dir / "config.yaml"
    if path.exists() or not config_file.is_file():
        ckpt = load_checkpoint(path)  # the one-line error of a missing folder or checkpoint
        return ckpt, ckpt["config"]
    try:
        stored = yaml.safe_load(config_file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        stored = f"unreadable ({str(e).splitlines()[0][:120]})"
    if not isinstance(stored, dict):
        raise CheckpointError(f"'{run_dir}' has no checkpoint and its config.yaml is not a run's "
                              f"config ({stored if isinstance(stored, str) else 'not a mapping'}); "
                              "train it again with gankit train PRESET --out ...")
    return None, stored


def seed_rngs(seed: int) -> None:
    """Seed every generator a run may draw from: torch's (CPU and CUDA), numpy's global one
    and Python's ``random``. A training step draws from torch's only; the other two are
    seeded, and saved in checkpoints by :func:`rng_state`, so that code drawing from them
    stays reproducible and resumes exactly."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers without compile or DDP prefixes."""
    return {k.replace("_orig_mod.", ""): v for k, v in model.state_dict().items()}


def make_checkpoint(model, source, step: int, phase: int, extra: dict[str, Any] | None = None) -> dict:
    ckpt = {
        "format": FORMAT,
        "version": gankit.__version__,
        "kind": model.kind,
        "config": model.cfg.to_dict(),
        "model": model_state(model),
        "optimizers": {k: o.state_dict() for k, o in model.optimizers.items()},
        "scalers": {name: s.state_dict() for name, s in model.scalers.items()},
        "step": step,
        "phase": phase,
        "rng": rng_state(),
        "data": source.state_dict() if source is not None else None,
    }
    ckpt.update(extra or {})
    return ckpt


def restore(model, source, ckpt: dict[str, Any], path: str | Path = "checkpoint") -> None:
    """Load weights, optimizer, scaler and data-order state saved by :func:`make_checkpoint`."""
    if ckpt["kind"] != model.kind:
        raise CheckpointError(
            f"'{path}' holds a '{ckpt['kind']}' model but the config builds '{model.kind}'; "
            "set model.kind to match or pick the right run folder"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"'{path}' does not fit this model's networks ({str(e).splitlines()[0][:160]}); "
            "the architecture options must match the run that wrote it"
        ) from None
    for name, opt in model.optimizers.items():
        if name in ckpt["optimizers"]:
            opt.load_state_dict(ckpt["optimizers"][name])
    for name, scaler in model.scalers.items():
        # checkpoints before per-optimizer scalers held one shared 'scaler'
        state = ckpt.get("scalers", {}).get(name) or ckpt.get("scaler")
        if state:
            scaler.load_state_dict(state)
    if source is not None and ckpt.get("data") is not None:
        source.load_state_dict(ckpt["data"])
