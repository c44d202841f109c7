"""Mode coverage on the PacGAN toy mixtures (ring of 8, grid of 25) for several objectives.

For each (mixture, objective) it trains the preset in-process on one thread, then draws
2,500 samples from the EMA generator and counts modes, the share of high-quality samples
(within 3 std of the nearest mode) and KL(mode histogram || uniform). CPU seconds are the
process CPU time of the training alone. Results go to BENCHMARKS.md ('## Toy mixtures').

    python benchmarks/toy_modes.py                    # the full table
    python benchmarks/toy_modes.py --objectives nonsaturating --steps 2000   # quicker
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from report import write_section

from gankit.api import load_run
from gankit.config import load_config
from gankit.metrics.toy import toy_metrics
from gankit.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"ring8": "toy_ring8", "grid25": "toy_grid25"}


def run_one(mixture: str, objective: str, steps: int | None, seed: int, work: Path) -> dict:
    overrides = [f"loss.name={objective}", "train.progress=false", f"train.seed={seed}",
                 "train.sample_every=0", "train.threads=1"]
    if objective in ("wgan", "wgan-gp"):
        overrides += ["train.n_critic=5", "optim.beta1=0.5", "optim.beta2=0.9"]
    if steps:
        overrides.append(f"train.steps={steps}")
    cfg = load_config(PRESETS[mixture], overrides)
    run_dir = work / f"{mixture}-{objective}"
    trainer = Trainer(cfg, run_dir)
    t0 = time.process_time()
    trainer.fit()
    cpu = time.process_time() - t0
    samples = load_run(run_dir).generate(2500, seed=1)
    m = toy_metrics(samples, mixture)
    return {"mixture": mixture, "objective": objective, "steps": cfg.train.steps,
            "n_critic": cfg.train.n_critic, "modes": m["modes"], "hq": 100 * m["high_quality"],
            "kl": m["kl"], "cpu_s": cpu}


def table(rows: list[dict]) -> str:
    lines = ["| mixture | objective | G steps (n_critic) | modes | high quality % | KL | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mixture']} | {r['objective']} | {r['steps']} ({r['n_critic']}) | "
                     f"{r['modes']:.0f} | {r['hq']:.1f} | {r['kl']:.3f} | {r['cpu_s']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mixtures", default="ring8,grid25")
    p.add_argument("--objectives", default="nonsaturating,minimax,lsgan,hinge,wgan-gp,js")
    p.add_argument("--steps", type=int, default=0, help="override the presets' train.steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mixture in args.mixtures.split(","):
            for objective in args.objectives.split(","):
                rows.append(run_one(mixture, objective, args.steps or None, args.seed, Path(tmp)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    body = ("## Toy mixtures\n\n"
            "PacGAN definitions (ring: 8 modes, radius 1, std 0.01; grid: 25 modes, std 0.05); "
            "2,500 samples from the EMA generator; a sample is high quality within 3 std of its "
            "nearest mode. CPU seconds: process time of training on one thread.\n\n"
            f"Command: `python benchmarks/toy_modes.py` (run on {time.strftime('%Y-%m-%d')}, "
            "2-core CPU machine shared with other jobs).\n\n" + table(rows) + "\n")
    print(body)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
