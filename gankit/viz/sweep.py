"""``gankit sweep``: a grid of settings times seeds, trained as processes on this machine, then
a table of mean +- std per setting and a comparison report.

Each run is a plain ``gankit train`` subprocess (one torch thread unless told otherwise) in
``OUT/<setting>/seed<k>``, its terminal output in ``train.out`` beside it. A sweep started
again skips finished runs and resumes stopped ones, so an interrupted sweep costs no rerun.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gankit.errors import GankitError
from gankit.metrics.describe import format_mean_std
from gankit.viz.report import metric_summary, write_report
from gankit.viz.runs import read_run


@dataclass
class SweepRun:
    setting: str  # "loss.name=hinge optim.lr_d=0.001" (empty without grid keys)
    seed: int
    overrides: list[str]
    path: Path


def parse_grid(items: list[str]) -> tuple[list[list[str]], list[str]]:
    """``key=a,b`` items -> (one list of ``key=value`` choices per grid key, fixed overrides).

    A value in brackets (``eval.metrics=[toy,fid]``) is one value, not a grid."""
    axes, fixed = [], []
    for item in items:
        if "=" not in item:
            raise GankitError(f"'{item}' is not key=value or key=a,b,c")
        key, raw = item.split("=", 1)
        values = [raw] if raw.startswith("[") else [v for v in raw.split(",") if v != ""]
        if not values:
            raise GankitError(f"'{item}' gives no value")
        if len(values) == 1:
            fixed.append(f"{key}={values[0]}")
        else:
            axes.append([f"{key}={v}" for v in values])
    return axes, fixed


def _slug(overrides: tuple[str, ...]) -> str:
    return ",".join(overrides).replace("/", "_").replace(" ", "") or "default"


def plan_sweep(items: list[str], seeds: int, out: Path, first_seed: int = 0) -> list[SweepRun]:
    """Every (setting, seed) of the grid, with its overrides and run folder."""
    if seeds < 1:
        raise GankitError(f"--seeds must be at least 1, got {seeds}")
    axes, fixed = parse_grid(items)
    if any(o.startswith("train.seed=") for o in fixed) or any(a[0].startswith("train.seed=") for a in axes):
        raise GankitError("the sweep sets train.seed itself; use --seeds N (and --first-seed)")
    runs = []
    for combo in itertools.product(*axes) if axes else [()]:
        for k in range(first_seed, first_seed + seeds):
            overrides = fixed + list(combo) + [f"train.seed={k}"]
            runs.append(SweepRun(" ".join(combo), k, overrides, out / _slug(combo) / f"seed{k}"))
    return runs


def _command(preset: str, run: SweepRun) -> list[str]:
    cmd = [sys.executable, "-m", "gankit", "train"]
    if (run.path / "checkpoints" / "last.pt").exists():
        return cmd + ["--resume", str(run.path), "train.progress=false"]
    defaults = [] if any(o.startswith("train.threads=") for o in run.overrides) else ["train.threads=1"]
    return cmd + [preset, "--out", str(run.path), "train.progress=false", *defaults, *run.overrides]


def _finished(run: SweepRun) -> bool:
    try:
        return (run.path / "checkpoints" / "last.pt").exists() and read_run(run.path).state == "finished"
    except GankitError:
        return False


def execute(preset: str, runs: list[SweepRun], jobs: int, echo=print) -> list[SweepRun]:
    """Train the runs, ``jobs`` at a time; returns the runs whose process failed."""
    if jobs < 1:
        raise GankitError(f"--jobs must be at least 1, got {jobs}")
    todo = [r for r in runs if not _finished(r)]
    echo(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already finished, {jobs} at a time")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    active: list[tuple[SweepRun, subprocess.Popen]] = []
    failed = []
    while todo or active:
        while todo and len(active) < jobs:
            run = todo.pop(0)
            run.path.mkdir(parents=True, exist_ok=True)
            with open(run.path / "train.out", "ab") as log:
                proc = subprocess.Popen(_command(preset, run), stdout=log, stderr=subprocess.STDOUT, env=env)
            active.append((run, proc))
        time.sleep(0.2)
        for run, proc in list(active):
            if proc.poll() is not None:
                active.remove((run, proc))
                ok = proc.returncode == 0
                echo(f"  {'done' if ok else 'FAILED'}: {run.path}" + ("" if ok else f" (see {run.path / 'train.out'})"))
                if not ok:
                    failed.append(run)
    return failed


def summary_table(runs: list[SweepRun]) -> str:
    """Markdown table: one row per setting, mean +- sample std of each final metric over seeds."""
    groups: dict[str, list] = {}
    for run in runs:
        if (run.path / "config.yaml").exists():
            groups.setdefault(run.setting or "default", []).append(read_run(run.path))
    summary = metric_summary(groups)
    metrics = list(summary)
    lines = ["| setting | seeds | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for setting, members in groups.items():
        cells = []
        for m in metrics:
            mean, std, n = summary[m].get(setting, (float("nan"), 0.0, 0))
            cells.append(format_mean_std(mean, std if n > 1 else None) if n else "-")
        lines.append(f"| {setting} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_sweep(preset: str, items: list[str], seeds: int, jobs: int, out: Path,
              first_seed: int = 0, echo=print) -> int:
    """Plan, train, summarise; writes ``OUT/summary.md`` and ``OUT/report.html``. Returns the
    exit code: 0, or 1 when a run failed (the others are still summarised)."""
    from gankit.config import load_config

    runs = plan_sweep(items, seeds, out, first_seed)
    for run in runs[:: seeds]:  # a bad key fails here, once, before any process starts
        load_config(preset, run.overrides)
    failed = execute(preset, runs, jobs, echo)
    table = summary_table(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table + "\n")
    done = [r.path for r in runs if (r.path / "config.yaml").exists()]
    if done:
        # many runs: pictures shrunk to thumbnails keep the page light enough to mail
        write_report(done, out / "report.html", title=f"sweep of {preset}", thumb=240)
    echo(table)
    echo(f"wrote {out / 'summary.md'} and {out / 'report.html'}")
    return 1 if failed else 0
