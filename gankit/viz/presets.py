"""``gankit presets``: the built-in presets, one line each, optionally with a measured CPU time."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from gankit.config import PRESET_DIR, load_config
from gankit.errors import GankitError


@dataclass
class PresetLine:
    name: str
    what: str  # model kind (and objective) on its data
    steps: int
    summary: str  # the first sentence of the preset's leading comment
    seconds: float | None = None  # estimated CPU time of the whole run, when measured


def summary_of(path: Path, limit: int = 70) -> str:
    """The preset's leading comment up to its first full stop (cut at ``limit`` characters)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = re.search(r"(?<!\bal)\.(\s|$)", text)  # "et al." ends no sentence
    if end:
        text = text[:end.start() + 1]
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def list_presets() -> list[PresetLine]:
    """Every built-in preset with what it trains and its default number of steps."""
    out = []
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        cfg = load_config(path.stem)
        kind = cfg.model.kind
        what = f"{kind} {cfg.loss.name}" if kind == "gan" else kind
        out.append(PresetLine(path.stem, f"{what} on {cfg.data.source}", cfg.train.steps, summary_of(path)))
    return out


def time_preset(name: str, steps: int = 5) -> float:
    """Seconds (process CPU time, one thread) per step after one warm-up step, times the
    preset's ``train.steps``: a rough estimate of the whole run. Raises GankitError when the
    preset's data are not on this machine."""
    import tempfile

    from gankit.training.trainer import Trainer

    cfg = load_config(name, ["train.threads=1", "train.progress=false", "train.device=cpu"])
    total = cfg.train.steps
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        trainer.run_steps(1)  # warm-up: first-call allocations and lazy set-up
        start = time.process_time()
        trainer.run_steps(steps)
        per_step = (time.process_time() - start) / steps
        trainer.logger.close()
    return per_step * total


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def format_presets(lines: list[PresetLine]) -> str:
    """An aligned table, one preset a line."""
    timed = any(p.seconds is not None for p in lines)
    rows = [("preset", "trains", "steps") + (("CPU time",) if timed else ()) + ("",)]
    for p in lines:
        rows.append((p.name, p.what, str(p.steps)) + ((_duration(p.seconds),) if timed else ()) + (p.summary,))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def presets_table(timed: bool = False, only: list[str] | None = None) -> str:
    """``gankit presets [--time] [NAME ...]``."""
    lines = list_presets()
    if only:
        unknown = sorted(set(only) - {p.name for p in lines})
        if unknown:
            raise GankitError(f"unknown preset {', '.join(unknown)}; gankit presets lists them")
        lines = [p for p in lines if p.name in only]
    if timed:
        for p in lines:
            try:
                p.seconds = time_preset(p.name)
            except GankitError:  # its data are not here (a folder, a text package)
                p.seconds = None
    return format_presets(lines)
