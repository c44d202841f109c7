"""What a gankit checkpoint file is, and reading one back: the format marker, the keys every
checkpoint holds, where a run keeps its checkpoints. Writing them (atomically, with the RNG
states an exact resume needs) is :mod:`gankit.training.checkpoint`'s; reading sits below
the models, which read another run's weights (a text GAN's ``model.init_from``).
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gankit.errors import CheckpointError

FORMAT = "gankit-checkpoint"
REQUIRED = ("kind", "config", "model", "optimizers", "step", "phase", "rng")


def checkpoint_file(run_dir: Path, which: str = "last") -> Path:
    """``run_dir/checkpoints/<which>.pt``, or ``run_dir`` itself when it is a file."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder '{run_dir}' does not exist")
    return run_dir / "checkpoints" / f"{which}.pt"


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
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint '{path}' is incomplete (no {', '.join(missing)}); "
                              "use another checkpoint or retrain")
    return ckpt
