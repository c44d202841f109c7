"""What every explain topic shares: the registry, the two sizes, the figure and JSON writers.

A topic is one small experiment run with gankit's own objectives, nets and metrics. It
returns a dict of the numbers behind its claim; :func:`run_topic` times it and writes
``<topic>.json`` and ``<topic>.png`` into the output folder.
"""
from __future__ import annotations

import json
import math
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from gankit.errors import GankitError
from gankit.registry import Registry

SIZES = ("quick", "full")  # quick: a few seconds, used by the tests; full: the gallery


@dataclass(frozen=True)
class Topic:
    """One lecture claim: ``run(size, seed) -> (numbers, draw)``, where ``draw(path)``
    writes the figure from those numbers. ``explanation`` is printed after the run and may
    refer to the numbers by ``{name}``."""

    name: str
    title: str
    run: Callable[[str, int], tuple[dict[str, Any], Callable[[Path], None]]]
    explanation: str


TOPICS: Registry[Topic] = Registry("explain topic")


def register(topic: Topic) -> Topic:
    """Add ``topic`` to :data:`TOPICS` under its name."""
    return TOPICS.add(topic.name, topic)


def check_size(size: str) -> None:
    if size not in SIZES:
        raise GankitError(f"size must be one of {', '.join(SIZES)}, got '{size}'")


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, palette: bool = False) -> None:
    """Write a small PNG (the gallery keeps every figure well under 150 kB). ``palette``
    stores it with 256 colours, which a big figure of flat plots needs to stay small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    pyplot().close(fig)
    if palette:
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(256)
        small.save(path, optimize=True)


def _clean(value: Any) -> Any:
    """JSON-safe copy: tensors and numpy numbers become floats and lists; inf stays a string."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _clean(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def run_topic(name: str, out: Path, size: str = "full", seed: int = 0) -> dict[str, Any]:
    """Run topic ``name`` at ``size``; write ``<name>.json`` and ``<name>.png`` into ``out``.

    Runs on one thread, so other jobs on the machine are not crowded out; the record keeps
    the wall-clock and CPU seconds of the experiment (the figure not included). Returns the
    numbers written to the JSON.
    """
    topic = TOPICS.get(name)
    check_size(size)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GankitError(f"--out '{out}' is a file; give a folder for the figure and the JSON")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        start, cpu = time.perf_counter(), time.process_time()
        numbers, draw = topic.run(size, seed)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)
    record = {"topic": name, "title": topic.title, "size": size, "seed": seed,
              "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), **numbers}
    out.mkdir(parents=True, exist_ok=True)
    draw(out / f"{name}.png")
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(_clean(record), indent=1) + "\n")
    tmp.replace(out / f"{name}.json")
    return record


def explanation(name: str, record: dict[str, Any]) -> str:
    """The topic's explanation with its ``{placeholders}`` filled from ``record``."""
    text = TOPICS.get(name).explanation.strip()
    filled = text.format(**{k: _fmt(v) for k, v in record.items()})
    return "\n\n".join(textwrap.fill(" ".join(p.split()), 88) for p in filled.split("\n\n"))


def _fmt(value: Any) -> Any:
    return f"{value:.3g}" if isinstance(value, float) else value


def critic(dim: int, width: int = 64, depth: int = 2, seed: int = 0) -> torch.nn.Module:
    """gankit's MLP discriminator for ``dim``-D points (LeakyReLU, no normalisation), with
    weights drawn from ``seed`` so that each experiment starts from the same critic."""
    from gankit.config import NetConfig
    from gankit.data.info import DataInfo
    from gankit.nets import build_discriminator

    torch.manual_seed(seed)
    return build_discriminator(NetConfig(name="mlp", width=width, depth=depth, norm="none"),
                               DataInfo("vector", (dim,)))


def generator(dim: int, z_dim: int, width: int = 64, depth: int = 2, seed: int = 0) -> torch.nn.Module:
    """gankit's MLP generator of ``dim``-D points from ``z_dim``-D noise."""
    from gankit.config import NetConfig
    from gankit.data.info import DataInfo
    from gankit.nets import build_generator

    torch.manual_seed(seed)
    return build_generator(NetConfig(name="mlp", width=width, depth=depth, norm="none"),
                           DataInfo("vector", (dim,)), z_dim)
