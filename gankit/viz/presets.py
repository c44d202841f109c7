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
    timing: Timing | None = None  # the estimated time of the whole run, when measured


@dataclass
class Timing:
    """A whole run's time estimated from a warm rate: ``train.steps / rate``."""

    seconds: float
    rate: float  # steps per second, wall clock, one thread, after the warm-up
    steps: int  # steps the rate was measured over
    warmup: int  # steps run first and not timed

    @property
    def how(self) -> str:
        return f"{self.rate:.3g} steps/s over {self.steps} steps after {self.warmup} warm-up"


def summary_of(path: Path, limit: int = 70) -> str:
    """The preset's leading comment up to its first full stop (cut between words, before
    ``limit`` characters)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = re.search(r"(?<!\bal)\.(\s|$)", text)  # "et al." ends no sentence
    if end:
        text = text[:end.start() + 1]
    if len(text) <= limit:
        return text
    cut = text[:limit - 2]
    cut = cut[:cut.rfind(" ")] if " " in cut else cut  # the last whole word that fits
    return cut.rstrip(" ,;:-(") + "..."


def list_presets() -> list[PresetLine]:
    """Every built-in preset with what it trains and its default number of steps."""
    out = []
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        cfg = load_config(path.stem)
        kind = cfg.model.kind
        what = f"{kind} {cfg.loss.name}" if kind == "gan" else kind
        out.append(PresetLine(path.stem, f"{what} on {cfg.data.source}", cfg.train.steps, summary_of(path)))
    return out


WARMUP_STEPS = 10  # first-call allocations, lazy set-up, the allocator and caches settling
MEASURE_SECONDS = 3.0  # time at least this long (and at least MIN_TIMED steps) for the rate
MIN_TIMED = 5


def time_preset(name: str, warmup: int = WARMUP_STEPS, seconds: float = MEASURE_SECONDS) -> Timing:
    """The preset's whole run estimated from a warm rate: ``warmup`` steps untimed, then steps
    until ``seconds`` of wall clock (one thread, CPU) have passed, ``train.steps`` over that
    rate. Periodic samples, checkpoints and evaluations are left out (they fall at their own
    steps). Raises GankitError when the preset's data are not on this machine."""
    import tempfile

    from gankit.training.trainer import Trainer

    cfg = load_config(name, ["train.threads=1", "train.progress=false", "train.device=cpu"])
    total = cfg.train.steps
    warmup = min(warmup, max(total - MIN_TIMED, 0))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        try:
            trainer.run_steps(warmup)
            timed, start = 0, time.perf_counter()
            while warmup + timed < total and (timed < MIN_TIMED or time.perf_counter() - start < seconds):
                trainer.run_steps(1)
                timed += 1
            elapsed = time.perf_counter() - start
        finally:
            trainer.logger.close()
    rate = timed / elapsed if elapsed > 0 else float("inf")
    return Timing(total / rate, rate, timed, warmup)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def format_presets(lines: list[PresetLine], timed: bool = False) -> str:
    """An aligned table, one preset a line; with ``timed``, each run's estimated time and the
    rate it comes from, and a last line saying how that was measured."""
    head = ("preset", "trains", "steps") + (("time", "measured") if timed else ()) + ("",)
    rows = [head]
    for p in lines:
        t = p.timing
        cells = (_duration(t.seconds if t else None), t.how if t else "data not here") if timed else ()
        rows.append((p.name, p.what, str(p.steps)) + cells + (p.summary,))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)
    if timed:
        table += ("\ntime: train.steps / a warm rate (wall clock, one CPU thread, this machine), "
                  "without the periodic samples, checkpoints and evaluations")
    return table


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
                p.timing = time_preset(p.name)
            except GankitError:  # its data are not here (a folder, a text package)
                p.timing = None
    return format_presets(lines, timed)
