"""Memory of training: the main job's peak resident set, and no growth over 10,000 steps.

    python benchmarks/memory.py                          # both parts
    python benchmarks/memory.py --main-steps 3000        # the main job at full length
    python benchmarks/memory.py --skip-main --growth-steps 10000 --json out.json

* **Peak of the main job**: ``gankit train --out DIR`` (the default preset, ``mnist_dcgan``) as
  a child process for ``--main-steps`` steps; its resident set is sampled from ``/proc`` while
  it runs and its peak read from the kernel (``ru_maxrss``) when it ends.
* **Growth**: the ``toy_ring8`` preset for ``--growth-steps`` steps in this process, with its
  logs every 250 steps, sample plots and checkpoints every 1,000, through
  :meth:`Trainer.run_steps`. Every ``--every`` steps the resident set and the number of live
  tensors are recorded. It passes when, after ``--warmup`` steps, the median resident set of
  the last third of the readings exceeds that of the first third by less than
  ``--tolerance-mb`` and the live tensors do not grow at all: no retained graphs, no
  accumulating logs.
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import write_json

from gankit.config import load_config  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--main-steps", type=int, default=3000,
                   help="steps of the main job (its preset: 3000)")
    p.add_argument("--skip-main", action="store_true")
    p.add_argument("--growth-steps", type=int, default=10_000)
    p.add_argument("--skip-growth", action="store_true")
    p.add_argument("--every", type=int, default=500, help="record memory every this many steps")
    p.add_argument("--warmup", type=int, default=2000, help="steps before growth is measured")
    p.add_argument("--tolerance-mb", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def rss_mb(pid: int | str = "self") -> float:
    """Resident set of a process, in MiB."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def main_job_peak(steps: int, threads: int) -> dict:
    """Run ``gankit train`` (the default preset) and measure its resident memory."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gankit", "train", "--out", str(Path(tmp) / "run"),
               "train.progress=false", f"train.steps={steps}", f"train.threads={threads}"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples = []
        while proc.poll() is None:
            try:
                rss = rss_mb(proc.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                rss = 0.0
            if rss > 0:  # 0 once the process has exited but not yet been reaped
                samples.append((time.perf_counter() - start, rss))
            time.sleep(0.5)
        err = proc.stderr.read().decode()
        if proc.returncode != 0:
            raise SystemExit(f"gankit train failed ({proc.returncode}):\n{err[-2000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB on Linux
        seconds = time.perf_counter() - start
    return {"command": f"gankit train --out DIR train.progress=false train.steps={steps} "
                       f"train.threads={threads}",
            "steps": steps, "seconds": seconds, "peak_rss_mb": peak,
            "rss_last_sample_mb": samples[-1][1] if samples else None,
            "rss_second_half_median_mb": statistics.median(r for _, r in samples[len(samples) // 2:])
            if samples else None,
            "rss_samples": samples[:: max(1, len(samples) // 50)]}


def live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on lazy torch modules warns of deprecations
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def growth(args: argparse.Namespace) -> dict:
    """Train the toy preset in this process and record memory every ``args.every`` steps."""
    cfg = load_config("toy_ring8", ["train.progress=false", f"train.steps={args.growth_steps}",
                                    "train.device=cpu"])
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        start = time.perf_counter()
        while trainer.step < args.growth_steps:
            trainer.run_steps(min(args.every, args.growth_steps - trainer.step))
            records.append({"step": trainer.step, "rss_mb": rss_mb(), "tensors": live_tensors(),
                            "seconds": time.perf_counter() - start})
            print(f"  step {trainer.step}: {records[-1]['rss_mb']:.1f} MiB, "
                  f"{records[-1]['tensors']} live tensors", flush=True)
        log_lines = len((Path(tmp) / "run" / "log.jsonl").read_text().splitlines())
    after = [r for r in records if r["step"] >= args.warmup]
    third = max(1, len(after) // 3)
    # the allocator's free lists make single readings wobble by a few MiB: compare the medians
    # of the first and last thirds after the warm-up, which a steady leak would still separate
    rss_growth = (statistics.median(r["rss_mb"] for r in after[-third:])
                  - statistics.median(r["rss_mb"] for r in after[:third]))
    tensor_growth = after[-1]["tensors"] - after[0]["tensors"]
    return {"steps": args.growth_steps, "warmup": args.warmup, "records": records,
            "log_lines": log_lines, "rss_growth_mb": rss_growth, "tensor_growth": tensor_growth,
            "rss_range_after_warmup_mb": [min(r["rss_mb"] for r in after),
                                          max(r["rss_mb"] for r in after)],
            "passed": rss_growth < args.tolerance_mb and tensor_growth <= 0,
            "tolerance_mb": args.tolerance_mb}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if not args.skip_main:
        out["main_job"] = main_job_peak(args.main_steps, args.threads)
        m = out["main_job"]
        print(f"main job ({m['steps']} steps, {m['seconds']:.0f} s): "
              f"peak RSS {m['peak_rss_mb']:.0f} MiB, "
              f"{m['rss_second_half_median_mb']:.0f} MiB over the second half of the run")
    if not args.skip_growth:
        out["growth"] = g = growth(args)
        verdict = "PASS" if g["passed"] else "FAIL"
        lo, hi = g["rss_range_after_warmup_mb"]
        print(f"growth over steps {g['warmup']}-{g['steps']}: RSS {g['rss_growth_mb']:+.2f} MiB "
              f"(readings {lo:.1f}-{hi:.1f} MiB), live tensors {g['tensor_growth']:+d}: {verdict}")
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
