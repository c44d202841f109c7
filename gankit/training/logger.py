"""Loss bookkeeping without a host-device sync per step, written to JSONL and TensorBoard."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from gankit import distributed
from gankit.files import append_line, reason


class _Rows:
    """One group's logged rows since the last read: written into a preallocated float32
    buffer ``[capacity, keys]`` while every value is a 0-dim tensor on the buffer's device
    (one ``stack`` per phase, no allocation that outlives the step), else kept as tensors."""

    def __init__(self, n_keys: int, device: torch.device):
        self.n_keys, self.device = n_keys, device
        self.buffer = torch.empty(0, n_keys, dtype=torch.float32, device=device)
        self.views: tuple[torch.Tensor, ...] = ()
        self.count = 0
        self.kept: list[list[torch.Tensor]] | None = None  # the general path
        self.first_device = device  # of the first value added since the last read

    def add(self, row: list[torch.Tensor]) -> None:
        if self.count == 0:
            self.first_device = row[0].device
        if self.kept is None and all(v.dim() == 0 and v.device == self.device for v in row):
            if self.count == len(self.views):
                self._grow()
            torch.stack(row, out=self.views[self.count])
        else:
            if self.kept is None:  # from now on until the read: the rows themselves
                self.kept = [[r] for r in self.views[:self.count]]
            self.kept.append(row)
        self.count += 1

    def _grow(self) -> None:
        bigger = torch.empty(max(32, 2 * len(self.views)), self.n_keys, dtype=torch.float32,
                             device=self.device)
        bigger[:self.count].copy_(self.buffer[:self.count])
        self.buffer, self.views = bigger, bigger.unbind(0)

    def sums(self, device: torch.device, keys: tuple[str, ...]) -> torch.Tensor:
        """Column sums, on ``device``, as a sum over the rows stacked there in order."""
        if self.kept is None:
            return self.buffer[:self.count].to(device).sum(0)
        flat = torch.cat([t.to(device).reshape(-1) for row in self.kept for t in row]).to(torch.float32)
        if flat.numel() != self.count * len(keys):
            raise ValueError(f"train_phase must log scalar tensors; {', '.join(keys)} "
                             "are not all scalars")
        return flat.view(self.count, len(keys)).sum(0)

    def finite(self, device: torch.device) -> torch.Tensor:
        """A bool on ``device``: every value of these rows is finite."""
        if self.kept is None:
            return torch.isfinite(self.buffer[:self.count]).all().to(device)
        return torch.isfinite(torch.cat([t.to(device).reshape(-1) for row in self.kept for t in row])).all()

    def reset(self) -> None:
        self.count, self.kept = 0, None


class RunningMeans:
    """Logged scalar tensors kept on the device and reduced (one sync) only at a log tick.

    A phase's logs cost one small device op in the inner loop: its scalars are written into a
    row of a buffer kept from one log period to the next, and the rows are summed (in the
    order they came, as one ``[rows, keys]`` float32 sum per group) when they are read.
    Keeping the tensors themselves until the tick left thousands of small allocations
    between each step's large temporaries: the heap fragmented and grew by tens of pages per
    step until the first tick. Values that are not 0-dim tensors on the group's device are
    kept as they are (and must then be fresh tensors, ``loss.detach()``, not views of state
    that changes in place later)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, ...], _Rows] = {}  # every group seen, buffers kept
        self._order: list[tuple[str, ...]] = []  # the groups added to since the last read

    def add(self, values: dict[str, torch.Tensor]) -> None:
        if not values:
            return
        keys = tuple(values)
        # detached: stack(out=) refuses a graph, and a kept graph would hold activations
        row = [v.detach() if v.requires_grad else v for v in values.values()]
        rows = self._rows.get(keys)
        if rows is None:
            rows = self._rows[keys] = _Rows(len(keys), row[0].device)
        if rows.count == 0:
            self._order.append(keys)
        rows.add(row)

    def pending(self) -> bool:
        """Whether anything was added since the last read."""
        return bool(self._order)

    def _sums(self) -> torch.Tensor:
        """Per group, the column sums of its rows, concatenated in the order the groups were
        first added to since the last read, on the device of the first."""
        device = self._rows[self._order[0]].first_device
        return torch.cat([self._rows[keys].sums(device, keys) for keys in self._order])

    def values_finite(self) -> torch.Tensor:
        """A device bool: every value added since the last read is finite, each one checked,
        not only their sums (true when nothing is pending)."""
        if not self._order:
            return torch.tensor(True)
        device = self._rows[self._order[0]].first_device
        if len(self._order) == 1:
            return self._rows[self._order[0]].finite(device)
        return torch.stack([self._rows[keys].finite(device) for keys in self._order]).all()

    def read(self) -> dict[str, float]:
        """Means since the last read (over all ranks under torchrun), then reset."""
        if not self._order:
            return {}
        # every rank logs the same keys in the same order: one all-reduce for all of them
        sums = distributed.all_reduce_mean(self._sums()).tolist()
        totals: dict[str, list[float]] = {}
        i = 0
        for keys in self._order:
            count = self._rows[keys].count
            for k in keys:
                total = totals.setdefault(k, [0.0, 0])
                total[0] += sums[i]
                total[1] += count
                i += 1
        self._reset()
        # sorted: the groups' order depends on the phase a run (re)started in, the keys' must not
        return {k: totals[k][0] / totals[k][1] for k in sorted(totals)}

    def _reset(self) -> None:
        for keys in self._order:
            self._rows[keys].reset()
        self._order = []


def non_finite(values: dict[str, float]) -> list[str]:
    return [k for k, v in values.items() if not math.isfinite(v)]


class RunLogger:
    """Appends records to ``log.jsonl`` / ``metrics.jsonl`` and mirrors them to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True,
                 from_step: int = 0):
        """``from_step``: the step this run starts from. A killed run's TensorBoard events
        after it are hidden (a resumed run writes those steps again), as its JSONL records
        after it are dropped: TensorBoard shows one curve, not two overlapping ones."""
        self.run_dir, self.enabled = run_dir, enabled
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # purge_step: readers drop the events of the folder's earlier files from that
                # step on (a session-start event); a new folder needs none
                earlier = (run_dir / "tb").is_dir() and any((run_dir / "tb").iterdir())
                self._tb = SummaryWriter(str(run_dir / "tb"),
                                         purge_step=from_step + 1 if earlier else None)
            except ImportError:  # tensorboard is optional: JSONL is the record of truth
                self._tb = None
            except OSError as e:  # its folder cannot be made: the run goes on without it
                print(f"note: no TensorBoard mirror in '{run_dir / 'tb'}' ({reason(e)})", file=sys.stderr)

    def write(self, record: dict[str, Any], file: str = "log.jsonl") -> None:
        if not self.enabled:
            return
        append_line(self.run_dir / file, json.dumps(record))  # whole records only
        if self._tb is not None:
            step = record.get("step", 0)
            scalars = [(k, v) for k, v in record.items()
                       if k not in NOT_SCALARS and _is_number(v) and math.isfinite(v)]
            self._mirror(lambda tb: [tb.add_scalar(k, v, step) for k, v in scalars])

    def image(self, tag: str, path: Path, step: int) -> None:
        """Mirror a picture written to ``path`` (a sample grid) to TensorBoard's images tab."""
        if self._tb is None:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        self._mirror(lambda tb: tb.add_image(tag, arr, step, dataformats="HWC"))

    def _mirror(self, write) -> None:
        """A TensorBoard write. It is a mirror of the JSONL: if its folder fails (a full disk,
        seen by its writer thread and raised at a later call) it stops with a note, and the
        JSONL and checkpoints, whose own writes report the disk, go on."""
        try:
            write(self._tb)
        except OSError as e:
            self._tb = None  # closing it would raise the same error again
            print(f"note: the TensorBoard mirror in '{self.run_dir / 'tb'}' stopped ({reason(e)}); "
                  "log.jsonl and metrics.jsonl go on", file=sys.stderr)

    def close(self) -> None:
        if self._tb is not None:
            self._mirror(lambda tb: tb.close())


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


class _Smoothed:
    """An exponential moving average with the start-up bias removed (tqdm's ``EMA``, the
    same ``smoothing`` meaning: the weight of the newest value)."""

    def __init__(self, smoothing: float = 0.3):
        self.alpha, self.last, self.calls = smoothing, 0.0, 0

    def add(self, x: float) -> None:
        self.last = self.alpha * x + (1 - self.alpha) * self.last
        self.calls += 1

    def value(self) -> float:
        return self.last / (1 - (1 - self.alpha) ** self.calls) if self.calls else 0.0


class _AboveBar:
    """``sys.stdout`` / ``sys.stderr`` while the bar is drawn on the same terminal: each whole
    line is written above the bar (cleared, then redrawn), so a warning or a note is never
    cut into by the bar."""

    def __init__(self, stream: TextIO, bar):
        self.stream, self.bar, self.pending = stream, bar, ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self.bar.clear()
            self.stream.write(lines + "\n")
            self.stream.flush()
            self.bar.refresh()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


class Progress:
    """Training progress, on rank 0: a tqdm bar on a terminal, one plain line per log tick
    into a file or a pipe (a log stays a list of lines).

    The rate, and so the ETA, is smoothed as tqdm smooths it: exponential averages of the
    steps and of the seconds between updates (``smoothing`` 0.3), so one slow interval (an
    evaluation, a checkpoint, a slow start) moves it part of the way, not all of it. While
    the bar is drawn, lines printed to stdout or stderr on the terminal (warnings, notes) go
    above it."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None,
                 smoothing: float = 0.3):
        self.total, self.enabled, self.smoothing = total, enabled, smoothing
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar, self._redirected = None, []
        self._mark(0)

    def _mark(self, step: int) -> None:
        self._t0 = self._t_mark = time.perf_counter()
        self._s_mark = step
        self._steps, self._seconds = _Smoothed(self.smoothing), _Smoothed(self.smoothing)

    def start(self, step: int) -> None:
        """Begin at ``step`` (a resumed run's): the clock starts, the bar is drawn."""
        self._mark(step)
        if self.enabled and self.tty and self.bar is None:
            from tqdm import tqdm

            # a terminal that reports no size (a bare pty) would get no bar: 80 x 24 then
            width = {"dynamic_ncols": True} if _columns(self.stream) > 0 else {"ncols": 80, "nrows": 24}
            self.bar = tqdm(total=self.total, initial=step, file=self.stream, desc="train", unit="step",
                            smoothing=self.smoothing, **width)
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if stream is self.stream or _isatty(stream):  # the bar's terminal
                    self._redirected.append((name, stream))
                    setattr(sys, name, _AboveBar(stream, self.bar))

    def advance(self, step: int) -> None:
        """Every step: the bar moves (tqdm redraws it at most ten times a second)."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def rate(self, step: int) -> float:
        """Steps per second since the last :meth:`update` (or :meth:`start`)."""
        dt = time.perf_counter() - self._t_mark
        return (step - self._s_mark) / dt if dt > 0 else 0.0

    def smoothed_rate(self) -> float:
        seconds = self._seconds.value()
        return self._steps.value() / seconds if seconds > 0 else 0.0

    def line(self, step: int, values: dict[str, float], rate: float, elapsed: float) -> str:
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        return (f"step {step}/{self.total} | {rate:.1f} steps/s | {_duration(elapsed)} elapsed, "
                f"ETA {_duration(eta)} | loss {_losses(values)}")

    def update(self, step: int, values: dict[str, float]) -> None:
        """A log tick: the losses on the bar, or a plain line with the smoothed rate."""
        if not self.enabled:
            return
        now = time.perf_counter()
        self._steps.add(step - self._s_mark)
        self._seconds.add(now - self._t_mark)
        self._t_mark, self._s_mark = now, step
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {_losses(values)}", refresh=False)
            self.advance(step)
            self.bar.refresh()
            return
        self.stream.write(self.line(step, values, self.smoothed_rate(), now - self._t0) + "\n")
        self.stream.flush()

    def close(self) -> None:
        for name, stream in reversed(self._redirected):
            current = getattr(sys, name)
            if isinstance(current, _AboveBar):  # not replaced again meanwhile
                current.finish()
                setattr(sys, name, stream)
        self._redirected = []
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _losses(values: dict[str, float]) -> str:
    return " ".join(f"{k[5:]} {v:.4g}" for k, v in sorted(values.items()) if k.startswith("loss/"))


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _columns(stream) -> int:
    """The width of the terminal ``stream`` writes to; 0 when it says none."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
