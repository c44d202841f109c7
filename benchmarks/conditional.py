"""Conditional generation and image-to-image translation on the built-in MNIST-5k tasks, at
CPU size, with the issue's targets.

    python benchmarks/conditional.py               # 3 seeds, ~30 min on 2 shared cores; writes BENCHMARKS.md
    python benchmarks/conditional.py --quick --no-write --seeds 0,1   # a smoke run of the pipeline

Each task trains from its preset exactly as ``gankit train PRESET`` would (one torch thread:
the cores are shared), then is measured by :func:`gankit.metrics.runs.evaluate_run`:

* ``mnist_cgan``: class-conditional DCGAN; share of 5,000 samples (500 per asked digit) that
  gankit's digit classifier assigns to the asked digit (target >= 95%), intra-class FID
  (digit-classifier features, against the 500 training digits of each class);
* ``mnist_pix2pix``: outline -> digit; L1, PSNR, SSIM on the 500 held-out pairs;
* ``cyclegan_digits``: plain <-> bold digits from disjoint halves; on the 500 held-out digits
  (given in both styles): cycle L1, FID of the translations against the real images of the
  target style, and the share of translations that keep their digit (target >= 90% for
  bold -> plain, the direction whose outputs the classifier was trained on; plain -> bold
  is reported with the classifier's accuracy on real bold digits for reference).

Only the '## Conditional generation' section of BENCHMARKS.md is rewritten.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import torch

from report import write_section

from gankit.api import load_run
from gankit.config import load_config
from gankit.metrics.runs import evaluate_run
from gankit.training.trainer import Trainer

SECTION = "## Conditional generation"
ROOT = Path(__file__).resolve().parent.parent
# task -> (preset, overrides); the semantic row adds CyCADA's semantic-consistency loss
TASKS = {"mnist_cgan": ("mnist_cgan", []), "mnist_pix2pix": ("mnist_pix2pix", []),
         "cyclegan_digits": ("cyclegan_digits", []),
         "cyclegan_digits+semantic": ("cyclegan_digits", ["model.lambda_semantic=1.0"])}
# (task, metric, target): the targets (higher is better); diversity 1.0 = real digits
TARGETS = [("mnist_cgan", "class_accuracy", 0.97), ("mnist_cgan", "within_class_diversity_min", 0.9),
           ("cyclegan_digits", "keep_class/AtoB", 0.90), ("cyclegan_digits", "keep_class/BtoA", 0.90),
           ("cyclegan_digits+semantic", "keep_class/AtoB", 0.90),
           ("cyclegan_digits+semantic", "keep_class/BtoA", 0.90)]
QUICK = ["train.steps=20", "train.ema_start=10", "train.sample_every=0", "train.ckpt_every=0"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench_conditional",
                   help="where the run folders go (replaced)")
    p.add_argument("--quick", action="store_true", help="20 steps per task: checks the pipeline only")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--n-per-class", type=int, default=500, help="cGAN samples per digit")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated train.seed values; every score "
                   "is reported as mean +- std over them")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override for every task (repeatable)")
    return p.parse_args()


def run_task(task: str, run_dir: Path, quick: bool, n_per_class: int, seed: int = 0,
             extra_set: tuple[str, ...] = ()) -> dict:
    """Train the task's preset into ``run_dir``, then measure it; returns timings and scores."""
    preset, extra = TASKS[task]
    overrides = ["train.progress=false", "train.threads=1", f"train.seed={seed}", *extra,
                 *extra_set] + (QUICK if quick else [])
    cfg = load_config(preset, overrides)
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.time()
    Trainer(cfg, run_dir).fit()
    train_s = time.time() - start
    start = time.time()
    scores = evaluate_run(load_run(run_dir), n_per_class=n_per_class)
    return {"preset": " ".join([preset, *extra, *extra_set]), "steps": cfg.train.steps,
            "batch": cfg.data.batch_size, "train_s": train_s, "eval_s": time.time() - start,
            "scores": scores}


def over_seeds(per_seed: list[dict]) -> dict:
    """One task's results over seeds: times summed, every score as (mean, std) over seeds."""
    first = per_seed[0]
    scores = {k: (statistics.mean(r["scores"][k] for r in per_seed),
                  statistics.stdev(r["scores"][k] for r in per_seed) if len(per_seed) > 1 else 0.0)
              for k in first["scores"]}
    return {**first, "train_s": sum(r["train_s"] for r in per_seed),
            "eval_s": sum(r["eval_s"] for r in per_seed), "scores": scores, "seeds": len(per_seed)}


def fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def fmt_spread(mean_std: tuple[float, float], percent: bool = False) -> str:
    mean, std = mean_std
    if percent:
        return f"{mean:.1%} ± {std:.1%}"
    return f"{fmt(mean)} ± {fmt(std)}"


def verdicts(results: dict) -> list[str]:
    rows = []
    for task, metric, target in TARGETS:
        if task not in results:
            continue
        value = results[task]["scores"][metric]
        status = "met" if value[0] >= target else "**missed**"
        rows.append(f"| {task} | {metric} | >= {target:.0%} | {fmt_spread(value, percent=True)} | {status} |")
    return rows


def section(results: dict, quick: bool, total_s: float, command: str, seeds: str) -> str:
    lines = [SECTION, "",
             f"Command: `{command}` (each task is `gankit train PRESET train.threads=1 "
             "train.seed=S`, then `gankit.metrics.runs.evaluate_run`).",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, "
             f"torch {torch.__version__}, one torch thread; "
             f"total {total_s / 60:.1f} min. Every score: mean ± std over seeds {seeds}; train and "
             "eval times summed over them." + (" QUICK smoke run, not a measurement." if quick else ""),
             "", "| task | metric | target | measured | |", "|---|---|---|---|---|"]
    lines += verdicts(results)
    lines += ["", "| preset | steps x batch | train | eval | scores |", "|---|---|---|---|---|"]
    for task, r in results.items():
        shown = {k: v for k, v in r["scores"].items() if "/" not in k or k.startswith(("keep_class", "cycle", "fid"))}
        text = ", ".join(f"{k} {fmt_spread(v)}" for k, v in shown.items())
        lines.append(f"| `{r['preset']}` | {r['steps']} x {r['batch']} | {r['train_s'] / 60:.1f} min | "
                     f"{r['eval_s']:.0f} s | {text} |")
    if "mnist_cgan" in results:
        cgan = results["mnist_cgan"]["scores"]
        lines += ["", "mnist_cgan per digit, means over seeds (accuracy / intra-class FID / "
                  "diversity, real = 1.0): "
                  + ", ".join(f"{k.split('/', 1)[1]} {cgan[k][0]:.1%} / "
                              f"{cgan['intra_fid/' + k.split('/', 1)[1]][0]:.2f} / "
                              f"{cgan['within_class_diversity/' + k.split('/', 1)[1]][0]:.2f}"
                              for k in cgan if k.startswith("class_accuracy/")) + "."]
    lines += ["", "Reading: L1 is on the [-1, 1] pixel scale; PSNR (dB) and SSIM on [0, 1]. "
              "`keep_class/real_B` is the digit classifier's accuracy on real bold digits, the "
              "ceiling for `keep_class/AtoB`. FIDs use the digit classifier's 128-d features, "
              "so they are not comparable with Inception FIDs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    start, results = time.time(), {}
    for task in args.tasks.split(","):
        per_seed = []
        for seed in map(int, args.seeds.split(",")):
            r = run_task(task, args.runs / f"{task}-s{seed}", args.quick, args.n_per_class, seed,
                         tuple(args.set))
            per_seed.append(r)
            print(f"{task} seed {seed}: {r['steps']} steps in {r['train_s'] / 60:.1f} min; "
                  + ", ".join(f"{k} {fmt(v)}" for k, v in r["scores"].items() if "/" not in k),
                  flush=True)
        results[task] = over_seeds(per_seed)
    command = "python benchmarks/conditional.py" + "".join(f" --set {item}" for item in args.set)
    command += f" --seeds {args.seeds}" if args.seeds != "0,1,2" else ""
    text = section(results, args.quick, time.time() - start, command, args.seeds)
    print(text)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", text)
        print(f"wrote the '{SECTION}' section of {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
