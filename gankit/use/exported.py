"""Reading a generator exported by ``gankit export --format safetensors``: the model rebuilt
from the file's metadata with gankit's own code (nothing in the file is executed or
unpickled, no run folder needed). The writing side is :mod:`gankit.export`; reading sits
here, below the commands, so that :func:`gankit.api.load_run` takes an exported file like a
run folder without the library front and the exporter importing each other."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import CheckpointError, ConfigError, GankitError

FORMAT = "gankit-generator"  # the metadata's "format": what a loader checks first
VERSION = "1"


def require(*modules: str) -> None:
    """A one-line error naming the extra to install when an optional package is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise GankitError(f"gankit export needs {', '.join(missing)}: pip install 'gankit[export]'")


def read_exported(path: str | Path, device: str | torch.device = "cpu"):
    """``(model, cfg, info, step)`` rebuilt from a safetensors export (no run folder);
    :func:`gankit.api.load_run` wraps them like a run's."""
    from gankit.config import config_from_dict
    from gankit.data.info import DataInfo
    from gankit.models import MODELS

    path = Path(path)
    metadata, tensors = _read_safetensors(path)
    try:
        cfg = config_from_dict(json.loads(metadata["config"]))
        info_d = json.loads(metadata["info"])
        info = DataInfo(**{**info_d, "shape": tuple(info_d["shape"])})
        names = json.loads(metadata["nets"])
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"'{path}' has unreadable gankit metadata ({type(e).__name__}: {e})") from None
    model = MODELS.get(cfg.model.kind)(cfg, info)
    for name in names:  # the exported weights go into the live nets; sampling falls back to them
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            getattr(model, name).load_state_dict(state, strict=True)
        except (AttributeError, RuntimeError) as e:
            raise CheckpointError(f"'{path}' does not match the net its config builds "
                                  f"({str(e).splitlines()[0][:120]})") from None
    model.to(device).eval()
    return model, cfg, info, int(metadata.get("step", 0))


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    require("safetensors")
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"'{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{path}' is not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is a safetensors file but not a gankit export (no "
                              f"'format: {FORMAT}' metadata); export one with gankit export RUN")
    if metadata.get("version") != VERSION:
        raise CheckpointError(f"'{path}' is export version {metadata.get('version')}; this gankit "
                              f"reads version {VERSION}")
    return metadata, tensors
