"""Loss bookkeeping without a host-device sync per step, written to JSONL and TensorBoard."""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from gankit import distributed


class RunningMeans:
    """Logged scalar tensors kept on the device and reduced (one sync) only at a log tick.

    A phase's logs cost no device work in the inner loop: the tensors are only kept, at most
    ``log_every`` steps of them, and are stacked and summed when they are read. So they must be
    fresh tensors (``loss.detach()``), not views of state that changes in place later."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, ...], list[list[torch.Tensor]]] = {}  # keys -> rows

    def add(self, values: dict[str, torch.Tensor]) -> None:
        if not values:
            return
        # detached by contract; a kept graph would hold a step's activations until the tick
        row = [v.detach() if v.requires_grad else v for v in values.values()]
        rows = self._groups.get(tuple(values))
        if rows is None:
            self._groups[tuple(values)] = [row]
        else:
            rows.append(row)

    def pending(self) -> bool:
        """Whether anything was added since the last read."""
        return bool(self._groups)

    def _sums(self) -> torch.Tensor:
        """Per group, the column sums of its rows, concatenated in insertion order."""
        device = next(iter(self._groups.values()))[0][0].device
        sums = []
        for keys, rows in self._groups.items():
            # a model may log a CPU scalar beside device ones: moved here, at the tick
            flat = torch.cat([t.to(device).reshape(-1) for row in rows for t in row]).to(torch.float32)
            if flat.numel() != len(rows) * len(keys):
                raise ValueError(f"train_phase must log scalar tensors; {', '.join(keys)} "
                                 "are not all scalars")
            sums.append(flat.view(len(rows), len(keys)).sum(0))
        return torch.cat(sums)

    def all_finite(self) -> torch.Tensor:
        """A device bool: every pending value is finite (true when nothing is pending)."""
        if not self._groups:
            return torch.tensor(True)
        return torch.isfinite(self._sums()).all()

    def read(self) -> dict[str, float]:
        """Means since the last read (over all ranks under torchrun), then reset."""
        if not self._groups:
            return {}
        # every rank logs the same keys in the same order: one all-reduce for all of them
        sums = distributed.all_reduce_mean(self._sums()).tolist()
        totals: dict[str, list[float]] = {}
        i = 0
        for keys, rows in self._groups.items():
            for k in keys:
                total = totals.setdefault(k, [0.0, 0])
                total[0] += sums[i]
                total[1] += len(rows)
                i += 1
        self._groups = {}
        # sorted: the groups' order depends on the phase a run (re)started in, the keys' must not
        return {k: totals[k][0] / totals[k][1] for k in sorted(totals)}


def non_finite(values: dict[str, float]) -> list[str]:
    return [k for k, v in values.items() if not math.isfinite(v)]


class RunLogger:
    """Appends records to ``log.jsonl`` / ``metrics.jsonl`` and mirrors them to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.run_dir, self.enabled = run_dir, enabled
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard is optional: JSONL is the record of truth
                self._tb = None

    def write(self, record: dict[str, Any], file: str = "log.jsonl") -> None:
        if not self.enabled:
            return
        with open(self.run_dir / file, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            step = record.get("step", 0)
            for k, v in record.items():
                if k not in NOT_SCALARS and _is_number(v) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def image(self, tag: str, path: Path, step: int) -> None:
        """Mirror a picture written to ``path`` (a sample grid) to TensorBoard's images tab."""
        if self._tb is None:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        self._tb.add_image(tag, arr, step, dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


# bookkeeping fields of a record: kept in the JSONL, not charted in TensorBoard
NOT_SCALARS = frozenset({"step", "time", "final"})


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _duration(seconds: float) -> str:
    """3725 -> '1:02:05', 65 -> '1:05'."""
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A one-line progress display: step, current rate, elapsed time, ETA and the losses.

    The rate is over the last log interval, not since the start: a stall or a slow start-up
    would otherwise be averaged into every later reading. On a terminal the line is redrawn
    in place and cut to the terminal's width; into a file it is one line per update."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start(0)

    def start(self, step: int) -> None:
        self._t0 = self._t_mark = time.perf_counter()
        self._s_mark = step

    def rate(self, step: int) -> float:
        """Steps per second since the last :meth:`update` (or :meth:`start`)."""
        dt = time.perf_counter() - self._t_mark
        return (step - self._s_mark) / dt if dt > 0 else 0.0

    def line(self, step: int, values: dict[str, float], rate: float, elapsed: float) -> str:
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        losses = " ".join(f"{k[5:]} {v:.4g}" for k, v in sorted(values.items()) if k.startswith("loss/"))
        return (f"step {step}/{self.total} | {rate:.1f} steps/s | {_duration(elapsed)} elapsed, "
                f"ETA {_duration(eta)} | loss {losses}")

    def update(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        line = self.line(step, values, self.rate(step), now - self._t0)
        self._t_mark, self._s_mark = now, step
        if self.tty:
            width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)  # the last column wraps
            self.stream.write("\r" + line[:width].ljust(width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
