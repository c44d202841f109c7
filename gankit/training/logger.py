"""Loss bookkeeping without a host-device sync per step, written to JSONL and TensorBoard."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit.training import distributed


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
        return {k: s / c for k, (s, c) in totals.items()}


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
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


class Progress:
    """A one-line progress display: step, steps/s and the latest losses."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.tty = sys.stderr.isatty()
        self._t0, self._s0 = time.perf_counter(), 0

    def start(self, step: int) -> None:
        self._t0, self._s0 = time.perf_counter(), step

    def rate(self, step: int) -> float:
        dt = time.perf_counter() - self._t0
        return (step - self._s0) / dt if dt > 0 else 0.0

    def update(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items() if k.startswith("loss/"))
        line = f"step {step}/{self.total} | {self.rate(step):.1f} steps/s | {shown}"
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(150))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
