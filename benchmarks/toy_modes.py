"""Mode coverage on 2-D Gaussian mixtures: the toy presets, a user's own cloud, and PacGAN.

Rows (each trained once per seed in its own ``gankit train`` process on one thread, two at a
time, then 2,500 samples of the generator that ``gankit sample`` uses are counted, as in
PacGAN):

* ``ring8`` / ``grid25``: the presets ``toy_ring8`` / ``toy_grid25`` (one row per objective
  with ``--objectives``; the preset's own objective by default);
* ``cloud``: a point cloud a user might bring, 12 Gaussians of std 0.8 on a circle of radius
  40 around (100, -30), saved as ``.npy`` and trained with the ``toy_ring8`` preset
  unchanged (``--data cloud.npy``): the preset's quality must carry over to any scale;
* ``--pacgan``: PacGAN's published 2-D experiment (``toy_ring8_pacgan``/``toy_grid25_pacgan``)
  with packing m = 1..4, beside the paper's Table 1.

Columns: modes covered (PacGAN: one high-quality sample), modes holding at least a quarter of
their fair share (``modes_fair``), share of high-quality samples (within 3 std of the nearest
mode), KL(mode histogram || uniform), CPU seconds of the whole training process; mean ± std
over seeds.

    python benchmarks/toy_modes.py                          # presets + cloud, 5 seeds
    python benchmarks/toy_modes.py --pacgan --seeds 5       # the reproduction table
    python benchmarks/toy_modes.py --rows ring8 --seeds 1 --no-write --set train.steps=500
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import BENCHMARKS_MD, mean_std, train_runs, write_json, write_section

from gankit.api import load_run
from gankit.metrics.toy import toy_metrics

PRESETS = {"ring8": "toy_ring8", "grid25": "toy_grid25", "cloud": "toy_ring8"}
PACGAN = {"ring8": "toy_ring8_pacgan", "grid25": "toy_grid25_pacgan"}
N_SAMPLES = 2500
# A user's cloud: far from the origin, large, and with its own number of modes and std.
CLOUD_MODES, CLOUD_RADIUS, CLOUD_CENTRE, CLOUD_STD, CLOUD_N = 12, 40.0, (100.0, -30.0), 0.8, 20_000
# PacGAN Table 1 (modes, high quality %), 2-D experiments
PUBLISHED = {("ring8", 1): (6.3, 98.2), ("ring8", 2): (7.9, 95.6), ("ring8", 3): (7.8, 97.7),
             ("ring8", 4): (7.8, 95.9), ("grid25", 1): (17.3, 94.8), ("grid25", 2): (23.8, 91.3),
             ("grid25", 3): (24.6, 94.2), ("grid25", 4): (24.8, 93.8)}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="ring8,grid25,cloud", help="ring8, grid25, cloud")
    p.add_argument("--objectives", default="", help="comma-separated loss.name per row "
                   "(default: each preset's own)")
    p.add_argument("--pacgan", action="store_true", help="PacGAN's experiment, packing 1..4")
    p.add_argument("--packs", default="1,2,3,4")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra override for every run (repeatable)")
    p.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument("--evaluate-only", action="store_true", help="count the runs already in --work")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args()


def cloud(work: Path) -> tuple[Path, tuple[torch.Tensor, float]]:
    """The user's cloud as a .npy file, and its (means, std) for counting."""
    angles = torch.arange(CLOUD_MODES, dtype=torch.float64) * (2 * math.pi / CLOUD_MODES)
    means = CLOUD_RADIUS * torch.stack([angles.cos(), angles.sin()], 1) + torch.tensor(CLOUD_CENTRE)
    gen = torch.Generator().manual_seed(123)
    idx = torch.randint(CLOUD_MODES, (CLOUD_N,), generator=gen)
    points = means[idx] + CLOUD_STD * torch.randn(CLOUD_N, 2, generator=gen, dtype=torch.float64)
    path = work / "cloud.npy"
    np.save(path, points.numpy())
    return path, (means, CLOUD_STD)


def plan(args: argparse.Namespace, work: Path) -> dict[str, dict]:
    """Run name -> {row, label, preset, overrides, target}."""
    runs = {}
    cloud_path, cloud_target = cloud(work)
    for row in args.rows.split(","):
        target = cloud_target if row == "cloud" else row
        data = [f"data.source={cloud_path}"] if row == "cloud" else []
        if args.pacgan:
            if row == "cloud":
                continue
            # the paper's batch is 100 packs of m samples each (G draws 100 m per step), and
            # gankit's data.batch_size counts samples: 100 m
            variants = [(f"pack{m}", PACGAN[row], [f"model.pack={m}", f"data.batch_size={100 * m}"])
                        for m in map(int, args.packs.split(","))]
        elif args.objectives:
            variants = [(o, PRESETS[row], [f"loss.name={o}"]) for o in args.objectives.split(",")]
        else:
            variants = [("preset", PRESETS[row], [])]
        for label, preset, overrides in variants:
            for seed in range(args.seeds):
                runs[f"{row}-{label}-seed{seed}"] = {
                    "row": row, "label": label, "preset": preset, "target": target,
                    "overrides": [*data, *overrides, *args.set, f"train.seed={seed}"]}
    return runs


def command(run: dict, out: Path) -> list[str]:
    return [sys.executable, "-m", "gankit", "train", run["preset"], *run["overrides"],
            "train.threads=1", "train.progress=false", "train.sample_every=0", "--out", str(out)]




def section(groups: dict[tuple[str, str], list[dict]], args: argparse.Namespace) -> str:
    title = "## Toy mixtures: PacGAN's 2-D experiment" if args.pacgan else "## Toy mixtures"
    cmd = "python benchmarks/toy_modes.py" + (" --pacgan" if args.pacgan else "")
    cmd += f" --packs {args.packs}" if args.pacgan and args.packs != "1,2,3,4" else ""
    cmd += f" --rows {args.rows}" if args.rows != "ring8,grid25,cloud" else ""
    cmd += f" --objectives {args.objectives}" if args.objectives else ""
    cmd += f" --seeds {args.seeds}" + "".join(f" --set {s}" for s in args.set)
    lines = [title, "", f"Command: `{cmd}` (run on {time.strftime('%Y-%m-%d')}, 2-core CPU machine, "
             f"{args.jobs} runs at a time on one thread each). {N_SAMPLES:,} samples per run; "
             "mean ± std over seeds. Modes (fair): modes holding at least a quarter of their fair "
             "share n/K of the samples. The cloud row: 12 Gaussians, std 0.8, on a circle of "
             "radius 40 around (100, -30), trained with the ring preset unchanged.", "",
             "| data | run | steps | modes | modes (fair) | high quality % | KL | CPU s |"
             + (" published modes | published HQ % |" if args.pacgan else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|---|" if args.pacgan else "")]
    for (row, label), rs in groups.items():
        col = lambda k: [r[k] for r in rs]  # noqa: E731
        line = (f"| {row} | {label} | {rs[0]['steps']} | {mean_std(col('modes'))} | "
                f"{mean_std(col('modes_fair'))} | {mean_std([100 * v for v in col('high_quality')])} | "
                f"{mean_std(col('kl'), '.3f')} | {mean_std(col('cpu_s'), '.0f')} |")
        if args.pacgan:
            pub = PUBLISHED.get((row, int(label[4:])), ("-", "-"))
            line += f" {pub[0]} | {pub[1]} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = plan(args, work)
        if args.evaluate_only:
            cpu = json.loads((work / "cpu_minutes.json").read_text())
        else:
            cpu = train_runs({name: command(r, work / name) for name, r in runs.items()}, work, args.jobs)
        groups: dict[tuple[str, str], list[dict]] = {}
        for name, r in runs.items():
            run = load_run(work / name)
            m = toy_metrics(run.generate(N_SAMPLES, seed=1), r["target"])
            result = {"run": name, "steps": run.cfg.train.steps, "cpu_s": 60 * cpu[name], **m}
            groups.setdefault((r["row"], r["label"]), []).append(result)
            print(json.dumps(result), flush=True)
    text = section(groups, args)
    print(text)
    write_json(args.json, {f"{k[0]}/{k[1]}": v for k, v in groups.items()})
    if not args.no_write:
        write_section(BENCHMARKS_MD, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
