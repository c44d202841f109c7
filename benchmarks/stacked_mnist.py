"""Mode collapse on Stacked MNIST: DCGANs with different objectives, with and without packing.

Stacked MNIST puts three MNIST-5k digits in the R, G and B channels, so the data has 1,000
modes (000 ... 999). Each run trains a DCGAN preset (``configs/stacked_mnist.yaml``) in its
own ``gankit train`` process on one thread, up to two processes at a time. Then 26,000
samples of the EMA generator are read channel by channel by gankit's digit classifier, and
the benchmark reports the modes hit and KL(mode histogram || uniform), as in the VEEGAN and
PacGAN papers. The data row passes 26,000 real Stacked MNIST images through the same count:
the floor set by the classifier and by sampling 26,000 items from 1,000 modes.

CPU minutes are the user + system time of each whole training process (start-up included),
read from the operating system when it exits.

    python benchmarks/stacked_mnist.py                      # the full table (about an hour)
    python benchmarks/stacked_mnist.py --runs dcgan --steps 500 --no-write    # a quick look
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from report import BENCHMARKS_MD, mean_std, train_runs, write_section

from gankit.api import load_run
from gankit.data.builtin import stacked_mnist
from gankit.data.info import DataInfo
from gankit.metrics.compute import compute_metrics

SECTION = "## Stacked MNIST"
FIGURE = BENCHMARKS_MD.parent / "benchmarks" / "figures" / "stacked_mnist.png"
N_SAMPLES = 26_000
TARGET_MODES, TARGET_KL, TARGET_CPU_MIN = 1000, 0.10, 60.0
# name -> (objective, pack, extra overrides[, preset]); a run starts from the stacked_mnist preset
# unless it names another
RUNS = {
    "dcgan": ("nonsaturating", 1, []),
    "pacdcgan2": ("nonsaturating", 2, []),
    "pacdcgan2-hinge": ("hinge", 2, []),
    "pacdcgan2-lsgan": ("lsgan", 2, []),
    "pacdcgan3": ("nonsaturating", 3, ["data.batch_size=63"]),
    # the paper's recipe, pack 2 and two G updates per D update, at the paper's lr 2e-4 / 6,000 steps
    "pacdcgan2-2g": ("nonsaturating", 2, ["train.n_gen=2"]),
    # the preset stacked_mnist_pacgan as it is (lr 5e-4, 15,000 steps, decay over the second half)
    "pacgan-preset": ("nonsaturating", 2, [], "stacked_mnist_pacgan"),
    # the same at the paper's lr 2e-4
    "pacgan-preset-lr2e-4": ("nonsaturating", 2, ["optim.lr_g=0.0002", "optim.lr_d=0.0002"],
                             "stacked_mnist_pacgan"),
}
DEFAULT_RUNS = "pacgan-preset,pacgan-preset-lr2e-4"
PUBLISHED = [
    ("DCGAN (VEEGAN paper)", "99", "3.40"),
    ("DCGAN (PacGAN paper)", "78.9", "-"),
    ("PacDCGAN2 (PacGAN paper)", "1000", "0.06"),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=DEFAULT_RUNS, help=f"comma-separated, from: {', '.join(RUNS)}")
    p.add_argument("--steps", type=int, default=0, help="override the preset's train.steps")
    p.add_argument("--jobs", type=int, default=2, help="training processes at a time")
    p.add_argument("--samples", type=int, default=N_SAMPLES)
    p.add_argument("--seeds", default="0", help="comma-separated train.seed values; a row per run "
                   "gives mean +- std over them (seed 0 keeps the run's plain name)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override for every run (repeatable)")
    p.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--evaluate-only", action="store_true",
                   help="count the modes of the runs already in --work (CPU minutes from its cpu_minutes.json)")
    args = p.parse_args()
    if args.evaluate_only and args.work is None:
        p.error("--evaluate-only needs --work, the folder of an earlier run")
    unknown = [r for r in args.runs.split(",") if r not in RUNS]
    if unknown:
        p.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    return args


def seeded(name: str, seed: int) -> str:
    """The folder name of one seed of a run (seed 0 keeps the plain name of earlier tables)."""
    return name if seed == 0 else f"{name}-s{seed}"


def command(name: str, seed: int, run_dir: Path, args: argparse.Namespace) -> list[str]:
    objective, pack, extra, *preset = RUNS[name]
    overrides = [f"loss.name={objective}", f"model.pack={pack}", "train.threads=1",
                 "train.progress=false", "train.sample_every=0", f"train.seed={seed}", *extra, *args.set]
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    return [sys.executable, "-m", "gankit", "train", *(preset or ["stacked_mnist"]), *overrides, "--out", str(run_dir)]


def count_modes(batches, n: int) -> dict[str, float]:
    info = DataInfo("image", (3, 28, 28), name="stacked_mnist", num_classes=1000)
    scores = compute_metrics(["modes", "quality"], batches, None, info, extractor="digits", use_cache=False)
    return {"modes": scores["modes"], "kl": scores["mode_kl"], "confidence": scores["confidence"], "n": n}


def generated(run, n: int):
    """``n`` samples of a loaded run's EMA generator, 500 at a time, from seed 1."""
    gen = torch.Generator().manual_seed(1)
    for start in range(0, n, 500):
        yield run.model.generate(min(500, n - start), generator=gen)


def save_figure(runs: list, per_run: int = 32) -> Path:
    """``per_run`` samples of each loaded run's EMA generator, two rows of 16 per run, in order."""
    from gankit.viz import save_grid

    samples = [run.generate(per_run, seed=2) for run in runs]
    return save_grid(torch.cat(samples), FIGURE, nrow=16)


def section(rows: list[dict], data_row: dict, args: argparse.Namespace) -> str:
    cmd = "python benchmarks/stacked_mnist.py" + (f" --runs {args.runs}" if args.runs != DEFAULT_RUNS else "")
    cmd += f" --steps {args.steps}" if args.steps else ""
    cmd += "".join(f" --set {item}" for item in args.set)
    cmd += f" --seeds {args.seeds}" if args.seeds != "0" else ""
    lines = [SECTION, "",
             f"Command: `{cmd}` (run on {time.strftime('%Y-%m-%d')}, 2-core CPU machine, "
             f"{args.jobs} runs at a time on one thread each). {args.samples:,} samples of the EMA "
             "generator; every channel read by gankit's digit classifier; KL(mode histogram "
             "|| uniform) in nats. Data set: 25,600 Stacked MNIST images built from MNIST-5k "
             "(not the full MNIST of the papers).", "",
             "| run | objective | pack | G steps | seeds | CPU min | modes | KL | confidence | target met |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = (statistics.mean(r["modes"]) >= TARGET_MODES and statistics.mean(r["kl"]) <= TARGET_KL
               and statistics.mean(r["cpu_min"]) <= TARGET_CPU_MIN)
        lines.append(f"| {r['name']} | {r['objective']} | {r['pack']} | {r['steps']} | {args.seeds} | "
                     f"{mean_std(r['cpu_min'])} | {mean_std(r['modes'], '.0f')} | {mean_std(r['kl'], '.3f')} | "
                     f"{mean_std(r['confidence'], '.3f')} | {'yes' if met else 'no'} |")
    lines.append(f"| real data ({data_row['n']:,} images) | | | | | | {data_row['modes']} | "
                 f"{data_row['kl']:.3f} | {data_row['confidence']:.3f} | |")
    for label, modes, kl in PUBLISHED:
        lines.append(f"| {label}, published | | | | | | {modes} | {kl} | | |")
    lines += ["", "Confidence: the mean over samples of the classifier's largest joint probability "
              "p(d_R, d_G, d_B | x) (the product over channels), a measure of how readable the "
              "three digits are; the real row is its ceiling.",
              "", f"Target: {TARGET_MODES} modes with KL <= {TARGET_KL} in at most "
              f"{TARGET_CPU_MIN:.0f} CPU-minutes of training.", "",
              f"Samples, two rows per run in the table's order: "
              f"![Stacked MNIST samples](benchmarks/figures/{FIGURE.name})"]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    names, seeds = args.runs.split(","), [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.evaluate_only:
            cpu = json.loads((work / "cpu_minutes.json").read_text())
        else:
            cpu = train_runs({seeded(n, s): command(n, s, work / seeded(n, s), args)
                              for n in names for s in seeds}, work, args.jobs)
        rows, first = [], []
        for name in names:
            objective, pack = RUNS[name][:2]
            row = {"name": name, "objective": objective, "pack": pack, "cpu_min": [], "modes": [],
                   "kl": [], "confidence": []}
            for seed in seeds:
                run = load_run(work / seeded(name, seed))
                counts = count_modes(generated(run, args.samples), args.samples)
                row["steps"] = run.cfg.train.steps
                row["cpu_min"].append(cpu[seeded(name, seed)])
                for key in ("modes", "kl", "confidence"):
                    row[key].append(counts[key])
                print(f"{name} seed {seed}: {counts['modes']} modes, KL {counts['kl']:.3f}, "
                      f"confidence {counts['confidence']:.3f}", flush=True)
            rows.append(row)
            first.append(load_run(work / seeded(name, seeds[0])))
        if not args.no_write:
            save_figure(first)
    x, _, _ = stacked_mnist(args.samples, seed=7)
    data_row = count_modes(torch.split(x, 500), args.samples)
    text = section(rows, data_row, args)
    print(text)
    if not args.no_write:
        write_section(BENCHMARKS_MD, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
