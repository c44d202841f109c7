"""What every benchmark script shares: rewriting its own section of BENCHMARKS.md.

The scripts run as ``python benchmarks/NAME.py`` from the repository root, so this module is
imported as ``report`` (the script's folder is first on ``sys.path``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Callable

from gankit.metrics.describe import format_mean_std

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def write_section(path: Path, text: str) -> None:
    """Replace the section that ``text`` starts (its first line, '## Title') up to the next
    '## ' heading, or append it; every other section of ``path`` is kept."""
    title = text.splitlines()[0]
    if not title.startswith("## "):
        raise ValueError(f"a section must start with a '## ' heading, got {title!r}")
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")


def mean_std(values: list[float], fmt: str = ".1f") -> str:
    """``mean ± std`` over seeds (the sample std) to the precision the std supports
    (:func:`gankit.metrics.describe.format_mean_std`, as reports show it), or the one value
    in ``fmt``."""
    if any(v != v for v in values):  # nan: not measured in this run (e.g. --digits-only)
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return format_mean_std(statistics.mean(values), statistics.stdev(values))


def write_json(path: Path | None, result: dict) -> None:
    """Save a benchmark's result as indented JSON at ``path`` (its folder made), if given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))


def train_runs(commands: dict[str, list[str]], work: Path, jobs: int) -> dict[str, float]:
    """Run each named training command, ``jobs`` processes at a time on one thread each, with
    its output in ``work/NAME.log``; returns CPU minutes (user + system, read from the OS when
    the process exits) per name, also kept in ``work/cpu_minutes.json`` for re-evaluation.
    Runs already finished in ``work`` (with their CPU time recorded) are not trained again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    record = work / "cpu_minutes.json"
    cpu = json.loads(record.read_text()) if record.exists() else {}
    # a rerun over the same --work trains only what is missing (finished runs are kept)
    cpu = {k: v for k, v in cpu.items() if k in commands and (work / k / "checkpoints" / "last.pt").exists()}
    waiting, running = [name for name in commands if name not in cpu], {}
    for name in waiting:  # started by an earlier, interrupted benchmark: start it again
        if (work / name).is_dir():
            shutil.rmtree(work / name)
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            log = open(work / f"{name}.log", "w")
            proc = subprocess.Popen(commands[name], stdout=log, stderr=subprocess.STDOUT, env=env)
            running[proc.pid] = (name, log)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        name, log = running.pop(pid)
        log.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"run {name} failed; see {work / (name + '.log')}")
        cpu[name] = (usage.ru_utime + usage.ru_stime) / 60
        print(f"trained {name} in {cpu[name]:.2f} CPU-min", flush=True)
        saved = json.loads(record.read_text()) if record.exists() else {}
        record.write_text(json.dumps({**saved, name: cpu[name]}, indent=1))
    return cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def train_for_cpu(cmd: list[str], run_dir: Path, cpu_min: float, env: dict,
                  marks: dict[float, Callable[[float], None]] | None = None) -> tuple[int, float]:
    """Run a ``gankit train`` command until it has used ``cpu_min`` CPU minutes, then stop it
    with Ctrl-C (the trainer saves its checkpoint); (steps reached, CPU minutes used).
    ``marks`` maps earlier CPU budgets (minutes) to a callback called once with the CPU minutes
    used when the budget is first passed (e.g. to keep the latest checkpoint as a snapshot)."""
    import signal
    import time

    pending = sorted((marks or {}).items())
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    used = 0.0
    while proc.poll() is None:
        time.sleep(1.0)
        try:
            used = cpu_seconds(proc.pid)
        except OSError:
            break
        while pending and used >= pending[0][0] * 60:
            pending.pop(0)[1](used / 60)
        if used >= cpu_min * 60:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate()
    if proc.returncode not in (0, 130):
        raise RuntimeError(f"training {run_dir} failed: {err.strip()[-400:]}")
    step = json.loads((run_dir / "log.jsonl").read_text().splitlines()[-1])["step"]
    return step, used / 60


def run_gankit(*args: str, env: dict | None = None) -> str:
    """``python -m gankit.cli ARGS`` in a subprocess; its stdout, or a RuntimeError with the
    end of its stderr."""
    import sys

    out = subprocess.run([sys.executable, "-m", "gankit.cli", *args], env=env, text=True,
                         capture_output=True)
    if out.returncode != 0:
        raise RuntimeError(f"gankit {' '.join(args)} failed: {out.stderr.strip()[-400:]}")
    return out.stdout


def sample_sheet(folders: list[Path], out: Path, per_row: int = 16) -> None:
    """One row of the first ``per_row`` PNGs of each folder, pixels doubled, saved as ``out``."""
    from PIL import Image

    tiles = [sorted(Path(f).glob("*.png"))[:per_row] for f in folders]
    size = Image.open(tiles[0][0]).size[0]
    sheet = Image.new("RGB", (per_row * (size + 2), len(folders) * (size + 2)), "white")
    for r, files in enumerate(tiles):
        for c, file in enumerate(files):
            sheet.paste(Image.open(file).convert("RGB"), (c * (size + 2), r * (size + 2)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(out)
