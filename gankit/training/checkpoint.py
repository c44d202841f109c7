"""Checkpoints: one dict with everything an exact resume needs, written atomically.

Read back with ``torch.load(weights_only=True)``, so a checkpoint can hold tensors, numbers,
strings, lists, tuples and dicts only: RNG states are stored as tensors and tuples.
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gankit
from gankit.errors import CheckpointError

FORMAT = "gankit-checkpoint"


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and sanity-check a checkpoint; every failure is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; train first or give the right run folder")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt or not a gankit checkpoint ({first}); "
            "use another checkpoint or retrain"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a gankit checkpoint (no '{FORMAT}' marker)")
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
