"""Time from starting `gankit train` to the end of its first training step, and peak memory.

Each measurement is a fresh process (imports included) training the anime64 preset for one
step on one thread: ``python benchmarks/data_start.py DATA [DATA ...] --runs 2`` prints one
line per (data, run) with the seconds to the first step (wall clock, and the CPU time of the
process: on a shared machine the wall clock includes other processes' turns), the peak
resident memory, and the machine's load average.
DATA is an image folder or a packed zip (gankit data pack FOLDER --out DATA.zip).
"""
from __future__ import annotations

import time

START = time.perf_counter()  # before torch and gankit are imported, as a command's start

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402


def one(data: str, preset: str) -> dict:
    """Build the run on ``data`` and train one step, in this process."""
    from gankit.config import load_config
    from gankit.training.trainer import Trainer

    cfg = load_config(preset, [f"data.source={data}", "train.threads=1", "train.steps=1",
                               "train.sample_every=0", "eval.every=0", "train.progress=false",
                               "data.workers=0", "train.ckpt_every=0"])
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, os.path.join(run, "r"))
        trainer.run_steps(1)
        seconds = time.perf_counter() - START
        items = trainer.source.info.size
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds too: on a shared machine the wall clock also counts other processes' turns
    return {"data": data, "seconds_to_first_step": round(seconds, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "items": items,
            "load_avg_1min": round(os.getloadavg()[0], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="+")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--preset", default="anime64")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.data[0], args.preset)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for data in args.data:
        for run in range(1, args.runs + 1):
            out = subprocess.run([sys.executable, __file__, data, "--one", "--preset", args.preset],
                                 env=env, capture_output=True, text=True, check=True)
            print(json.dumps({"run": run, **json.loads(out.stdout.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
