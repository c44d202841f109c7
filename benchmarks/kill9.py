"""kill -9 at random moments, resume each time: the finished run must equal an uninterrupted one.

    python benchmarks/kill9.py                      # 20 kills, writes its BENCHMARKS.md section
    python benchmarks/kill9.py --kills 3 --steps 60 --no-write

1. An uninterrupted ``gankit train`` of the ``toy_ring8`` preset (``--steps`` steps, a
   checkpoint every ``--ckpt-every``, one thread) gives the reference weights and the run's
   wall time ``T``. Every run here has ``GANKIT_TEST_SLOW_SAVE`` set, a test-only writer that
   sleeps before each write call, so that a checkpoint write lasts long enough to be hit.
2. The same run is started in a second folder and killed with SIGKILL ``--kills`` times.
   Every other kill lands inside a checkpoint write: it waits for this start's first new
   checkpoint and for the next write to begin, then a random fraction of the write's length.
   The others are, by a coin toss, a "start-up" kill (a moment drawn uniformly from the time
   the reference needed to begin its first write: imports, data, model, the first steps) or
   a "training" kill (a moment drawn uniformly from one checkpoint interval after this
   start's first new checkpoint). Tying the moments to this start's own checkpoints keeps
   the run moving forward by at most about two checkpoints per kill, however fast or busy
   the machine is, so the kills are not spent before the run ends.
   After each kill the script checks that ``last.pt`` (if any) loads with
   ``weights_only=True``, and starts the run again: ``--resume`` when a checkpoint exists,
   the original command otherwise. A start that exits with an error counts as a failure.
3. Once the kills are spent the run is resumed to the end, and its final checkpoint is
   compared with the reference, tensor by tensor (model, EMA, optimizer state): equal
   bits, not close values.

A kill counts as passed when the checkpoint left on disk loads and the next start resumes
from it (or starts afresh when no checkpoint had been written yet) without an error.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_json, write_section  # noqa: E402

from gankit.errors import CheckpointError  # noqa: E402
from gankit.training.checkpoint import SLOW_SAVE_ENV, load_checkpoint  # noqa: E402

POLL_S = 0.002


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--ckpt-every", type=int, default=10)
    p.add_argument("--slow-save", type=float, default=0.0005,
                   help="seconds the test-only writer sleeps before each write call")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--work", type=Path, help="folder for the two runs (default: a temporary one)")
    p.add_argument("--json", type=Path)
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    return p.parse_args(argv)


def train_args(args: argparse.Namespace, run: Path) -> list[str]:
    return ["toy_ring8", "--out", str(run), f"train.steps={args.steps}",
            f"train.ckpt_every={args.ckpt_every}", "train.threads=1", "train.progress=false",
            "train.sample_every=0", "train.log_every=50"]


def start(args: argparse.Namespace, run: Path) -> subprocess.Popen:
    """The run's next start: a resume when a checkpoint exists, else the first command."""
    last = run / "checkpoints" / "last.pt"
    cmd = ["--resume", str(run)] if last.exists() else train_args(args, run)
    env = dict(os.environ, **{SLOW_SAVE_ENV: str(args.slow_save), "OMP_NUM_THREADS": "1"})
    return subprocess.Popen([sys.executable, "-m", "gankit", "train", *cmd], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def writing(run: Path) -> bool:
    """Whether a checkpoint's temporary file exists (a write is under way)."""
    folder = run / "checkpoints"
    return folder.is_dir() and any(folder.glob(".last.pt.*.tmp"))


def saved_at(run: Path) -> int:
    """When ``last.pt`` was last replaced (0 when there is none)."""
    last = run / "checkpoints" / "last.pt"
    return last.stat().st_mtime_ns if last.exists() else 0


def reference(args: argparse.Namespace, run: Path) -> tuple[float, float, float]:
    """Train without kills: (wall seconds, seconds to the first checkpoint write, median
    seconds a checkpoint write lasts)."""
    t0, windows, began, first = time.perf_counter(), [], None, None
    proc = start(args, run)
    while proc.poll() is None:
        now, busy = time.perf_counter(), writing(run)
        if busy and began is None:
            began = now
            first = first if first is not None else now - t0
        elif not busy and began is not None:
            windows.append(now - began)
            began = None
        time.sleep(POLL_S)
    if proc.returncode != 0:
        raise SystemExit(f"the reference run failed: {proc.stderr.read().strip()}")
    windows.sort()
    return time.perf_counter() - t0, first or 0.0, windows[len(windows) // 2] if windows else 0.0


def wait_until(proc: subprocess.Popen, condition) -> None:
    """Poll ``condition`` until it holds or the process ends."""
    while proc.poll() is None and not condition():
        time.sleep(POLL_S)


def kill_once(args: argparse.Namespace, run: Path, rng: random.Random, timing: tuple,
              in_write: bool) -> dict:
    """Start the run, kill it at a random moment, check what it left. Returns a record."""
    wall, first, window = timing
    interval = (wall - first) * args.ckpt_every / args.steps  # seconds between checkpoints
    before = saved_at(run)
    t0 = time.perf_counter()
    proc = start(args, run)
    own_checkpoint = lambda: saved_at(run) != before  # noqa: E731
    mode = "write" if in_write else rng.choice(["start-up", "training"])
    if mode == "start-up":  # anywhere in the time the reference took to its first write
        deadline = t0 + rng.uniform(0, first)
        wait_until(proc, lambda: time.perf_counter() >= deadline)
    elif mode == "training":  # within one checkpoint interval after this start's first one
        wait_until(proc, own_checkpoint)
        deadline = time.perf_counter() + rng.uniform(0, interval)
        wait_until(proc, lambda: time.perf_counter() >= deadline)
    else:  # a random fraction into the write after this start's first checkpoint
        wait_until(proc, own_checkpoint)
        wait_until(proc, lambda: writing(run))
        time.sleep(rng.uniform(0, 0.9 * window))
    if proc.poll() is not None:  # it finished or failed before the kill
        return {"killed": False, "rc": proc.returncode, "error": proc.stderr.read().strip()}
    proc.send_signal(signal.SIGKILL)
    at = time.perf_counter() - t0
    proc.wait()
    proc.stderr.close()
    # a write of this process was cut when its own temporary file is left behind
    cut = (run / "checkpoints" / f".last.pt.{proc.pid}.tmp").exists()
    record = {"killed": True, "mode": mode, "at_s": round(at, 2), "in_write": cut,
              "after_own_checkpoint": saved_at(run) != before, "step": None, "ok": True}
    last = run / "checkpoints" / "last.pt"
    if last.exists():
        try:
            record["step"] = int(load_checkpoint(last)["step"])
        except CheckpointError as e:
            record.update(ok=False, error=str(e))
    return record


def same_bits(a: object, b: object) -> bool:
    """Exact equality of nested checkpoint parts (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_bits(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b))
    return a == b


def run(args: argparse.Namespace, work: Path) -> dict:
    rng = random.Random(args.seed)
    timing = wall, first, window = reference(args, work / "whole")
    print(f"reference: {wall:.1f} s, first write after {first:.1f} s, checkpoint writes last "
          f"{window * 1000:.0f} ms", flush=True)
    victim, records = work / "killed", []
    for i in range(args.kills):
        record = kill_once(args, victim, rng, timing, in_write=i % 2 == 1)
        records.append(record)
        print(f"kill {i + 1}: {json.dumps(record)}", flush=True)
        if not record.get("killed") or not record.get("ok"):
            break
    proc = start(args, victim)  # the last start runs to the end
    _, err = proc.communicate()
    a = load_checkpoint(work / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(victim / "checkpoints" / "last.pt") if proc.returncode == 0 else None
    # numpy's and Python's generators are never seeded (training draws from torch only), so
    # their saved states differ between any two processes and are left out
    parts = ("model", "optimizers", "scaler", "step", "phase", "data", "info")
    identical = (b is not None and all(same_bits(a[k], b[k]) for k in parts)
                 and same_bits(a["rng"]["torch"], b["rng"]["torch"]))
    passed = sum(1 for r in records if r.get("killed") and r.get("ok")) if proc.returncode == 0 else 0
    killed = [r for r in records if r.get("killed")]
    return {"kills": args.kills, "passed": passed, "in_write": sum(r["in_write"] for r in killed),
            "before_own_checkpoint": sum(not r["in_write"] and not r["after_own_checkpoint"]
                                         for r in killed),
            "between_writes": sum(not r["in_write"] and r["after_own_checkpoint"] for r in killed),
            "before_first_checkpoint": sum(r["step"] is None for r in killed),
            "final_rc": proc.returncode, "final_error": err.strip()[-300:], "identical": identical,
            "reference_s": round(wall, 2), "first_write_s": round(first, 2),
            "write_ms": round(window * 1000, 1), "steps": args.steps,
            "ckpt_every": args.ckpt_every, "slow_save": args.slow_save, "seed": args.seed,
            "records": records}


def section(r: dict) -> str:
    verdict = "bit-identical" if r["identical"] else "NOT identical"
    return f"""## kill -9 and resume

`python benchmarks/kill9.py` (seed {r['seed']}): the `toy_ring8` preset for {r['steps']} steps
with a checkpoint every {r['ckpt_every']} steps (one thread), killed with SIGKILL at
{r['kills']} random moments and resumed after each; a test-only slow writer
(`GANKIT_TEST_SLOW_SAVE={r['slow_save']}` s per write call) stretches a checkpoint write to
about {r['write_ms']:.0f} ms so that kills can land inside one.

**{r['passed']}/{r['kills']}**: after every kill the checkpoint on disk loaded and the next start
resumed from it. {r['in_write']} kills landed inside a checkpoint write (each left its
half-written temporary file beside an intact `last.pt`), {r['between_writes']} during training
after that start had written a checkpoint, and {r['before_own_checkpoint']} during start-up or
the first steps of a start ({r['before_first_checkpoint']} before the run's first checkpoint
existed, when the next start begins afresh). The finished run's model, EMA, optimizer, torch RNG
and data-order state are **{verdict}** to an uninterrupted run's. (Wall times are those of a
shared, busy machine: the reference run took {r['reference_s']:.1f} s, {r['first_write_s']:.1f} s
of it before the first checkpoint.)
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gankit-kill9-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args, work)
    summary = {k: v for k, v in result.items() if k != "records"}
    print(json.dumps(summary, indent=1))
    print(f"{result['passed']}/{result['kills']} resumes, final weights "
          f"{'bit-identical' if result['identical'] else 'DIFFER'}")
    write_json(args.json, result)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", section(result))
    return 0 if result["passed"] == result["kills"] and result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
