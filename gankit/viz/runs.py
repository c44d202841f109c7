"""Read run folders back: config, logs, metrics, pictures and state, for reports and listings.

A run folder is what the trainer writes (``config.yaml``, ``log.jsonl``, ``metrics.jsonl``,
``samples/``, ``eval/``, ``checkpoints/``). Its progress and state come from the logs, and
from ``checkpoints/last.pt`` where the logs do not show the run finished (a run shorter than
``train.log_every`` logs nothing): only then is torch imported, to read the checkpoint's step,
so listing a hundred logged runs stays quick. A run whose lock holds a live pid is running.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError
from gankit.metrics.describe import format_mean_std

# in log.jsonl: bookkeeping, not a curve worth drawing
NOT_CURVES = frozenset({"step", "time", "event", "final", "source", "n", "protocol"})
STEP_FILE = re.compile(r"step_(\d+)\.(png|txt)$")


@dataclass
class Run:
    """One run folder, read once."""

    path: Path
    config: dict[str, Any]
    logs: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def total_steps(self) -> int:
        return int(self.config.get("train", {}).get("steps", 0))

    @property
    def logged_steps(self) -> int:
        """The last step the logs and metrics record."""
        steps = [int(r["step"]) for r in self.logs + self.metrics if "step" in r]
        return max(steps, default=0)

    @cached_property
    def checkpoint_step(self) -> int | None:
        """The step of ``checkpoints/last.pt``; None without a readable one."""
        path = self.path / "checkpoints" / "last.pt"
        if not path.is_file():
            return None
        from gankit.checkpoint_format import load_checkpoint  # torch: only for this file
        from gankit.errors import CheckpointError

        try:
            return int(load_checkpoint(path)["step"])
        except (CheckpointError, KeyError, TypeError, ValueError):
            return None

    @property
    def steps_done(self) -> int:
        """The last step trained: logged, or saved in the last checkpoint (read only when
        the logs fall short of ``train.steps``)."""
        logged = self.logged_steps
        if self.total_steps and logged >= self.total_steps:
            return logged
        return max(logged, self.checkpoint_step or 0)

    @property
    def running(self) -> bool:
        """Whether a live trainer holds this run folder's lock."""
        from gankit.training.lock import live_holder

        return live_holder(self.path) > 0

    @property
    def state(self) -> str:
        """running, diverged, finished, stopped or new (nothing trained yet)."""
        if self.running:
            return "running"
        if any(r.get("event") == "diverged" for r in self.logs):
            return "diverged"
        if self.total_steps and self.steps_done >= self.total_steps:
            return "finished"
        return "stopped" if self.steps_done else "new"

    def final_sample(self, suffix: str = ".png") -> Path | None:
        """``samples/final.png`` (``.txt`` for sequence models), written when training ends."""
        path = self.path / "samples" / f"final{suffix}"
        return path if path.is_file() else None

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """Every logged scalar and metric as (step, value) points; non-finite ones dropped."""
        out: dict[str, list[tuple[int, float]]] = {}
        # training's evaluations only: a later `gankit eval` (with its own sample count) is
        # another measurement, not a point of the curve. The final evaluation is the last
        # step's point; runs of older versions also evaluated that step periodically, and
        # their final record repeats it
        during = [m for m in self.metrics if "source" not in m]
        periodic = {m.get("step") for m in during if not m.get("final")}
        # (a run evaluated only at the end has one point per metric: no curve, the table shows it)
        during = [m for m in during if periodic and (not m.get("final") or m.get("step") not in periodic)]
        for record in self.logs + during:
            for key, value in record.items():
                if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):
                    out.setdefault(key, []).append((int(record.get("step", 0)), float(value)))
        for points in out.values():
            points.sort(key=lambda p: p[0])
        return out

    def final_metrics(self) -> dict[str, float]:
        """The last value of every metric (``metrics/`` prefix dropped)."""
        out: dict[str, float] = {}
        for record in self.metrics:
            for key, value in record.items():
                if key.startswith("metrics/") and isinstance(value, (int, float)):
                    out[key[len("metrics/"):]] = float(value)
        return out

    def protocols(self) -> dict[str, Any]:
        """Per metric group, how it was measured (written by ``gankit eval``)."""
        out: dict[str, Any] = {}
        for record in self.metrics:
            out.update(record.get("protocol") or {})
        return out

    def measured_by(self, metric: str) -> str:
        """Where the final value of ``metric`` comes from: training's evaluation or gankit eval."""
        for record in reversed(self.metrics):
            if f"metrics/{metric}" in record:
                source = record.get("source", "training")
                return f"{source}, n={record['n']}" if "n" in record else source
        return "-"

    def timing(self) -> tuple[float, float] | None:
        """(seconds between the first and last log record, steps per second over them)."""
        timed = [r for r in self.logs if "time" in r and "step" in r]
        if len(timed) < 2:
            return None
        seconds = timed[-1]["time"] - timed[0]["time"]
        steps = timed[-1]["step"] - timed[0]["step"]
        return seconds, (steps / seconds if seconds > 0 else float("nan"))

    def sample_pictures(self, suffix: str = ".png") -> list[tuple[int, Path]]:
        """(step, path) of the samples written during training, in step order: grids
        (``.png``) or, for sequence models, sentences (``.txt``)."""
        found = []
        for p in (self.path / "samples").glob(f"step_*{suffix}"):
            m = STEP_FILE.search(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def eval_pictures(self) -> list[Path]:
        """Pictures written by evaluation (scatter, nearest neighbours) and interpolation."""
        pics = sorted((self.path / "eval").glob("*.png"))
        pics += [p for p in (self.path / "interpolation.png",) if p.exists()]
        return pics


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            # a run killed mid-write leaves a torn last line: keep what came before it
            if n == len(path.read_text().splitlines()):
                break
            raise GankitError(f"{path}:{n} is not JSON; fix or delete that line") from None
    return records


def read_run(path: str | Path) -> Run:
    """Read a run folder; a folder without ``config.yaml`` is an error naming it."""
    path = Path(path)
    cfg_file = path / "config.yaml"
    if not cfg_file.exists():
        raise GankitError(f"'{path}' is not a run folder (no config.yaml); give a folder "
                          "written by gankit train")
    try:
        config = yaml.safe_load(cfg_file.read_text()) or {}
    except yaml.YAMLError as e:
        raise GankitError(f"{cfg_file} is not valid YAML ({e.__class__.__name__}); fix or restore it") from None
    from gankit.metrics.describe import upgrade_record  # an older run's digit FID is fid_digits

    metrics = [upgrade_record(r) for r in _read_jsonl(path / "metrics.jsonl")]
    return Run(path, config, _read_jsonl(path / "log.jsonl"), metrics)


def find_runs(root: str | Path) -> list[Path]:
    """Run folders at or below ``root`` (any depth), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"'{root}' is not a folder; give the folder that holds your runs")
    return sorted(p.parent for p in root.rglob("config.yaml"))


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'train': {'steps': 5}}`` -> ``{'train.steps': 5}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted keys whose values are not the same in every config (missing counts as differing)."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]


# keys that change neither the model nor the numbers: runs differing only here are seeds of one setting
NOT_SETTINGS = ("train.seed", "train.progress", "train.threads", "data.workers")


def group_by_setting(runs: list[Run], ignore: tuple[str, ...] = NOT_SETTINGS) -> dict[str, list[Run]]:
    """Runs that differ only in ``ignore`` (seeds) form one group, labelled by their settings."""
    keys = [k for k in differing_keys([r.config for r in runs]) if k not in ignore]
    groups: dict[str, list[Run]] = {}
    for run in runs:
        flat = flatten(run.config)
        label = " ".join(f"{k}={flat.get(k)}" for k in keys) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def describe(config: dict[str, Any]) -> str:
    """'gan nonsaturating on ring8': what a config trains, in a few words."""
    kind = config.get("model", {}).get("kind", "?")
    loss = config.get("loss", {}).get("name", "") if kind == "gan" else ""
    source = config.get("data", {}).get("source", "?")
    return " ".join(w for w in (kind, loss, "on", str(source)) if w)


def format_runs_table(root: str | Path) -> str:
    """``gankit runs``: one line per run (preset, steps, state, last metrics)."""
    rows = [("run", "what", "steps", "state", "last metrics")]
    for path in find_runs(root):
        try:
            run = read_run(path)
        except GankitError as e:
            rows.append((str(path), "?", "?", "unreadable", str(e)[:60]))
            continue
        metrics = " ".join(f"{k} {format_mean_std(v)}" for k, v in sorted(run.final_metrics().items()))
        rows.append((str(path), describe(run.config),
                     f"{run.steps_done}/{run.total_steps}", run.state, metrics or "-"))
    if len(rows) == 1:
        return f"no runs under {root}"
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)
