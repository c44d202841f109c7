"""Training steps per second in fp32, bf16 autocast and bf16 + channels-last, side by side.

    OMP_NUM_THREADS=1 python benchmarks/bf16_cpu.py            # writes '## bf16 on the CPU'
    python benchmarks/bf16_cpu.py --configs main --steps 20 --no-write

One Trainer per precision is built for each configuration (the same seed, so the same
weights and data), and their steps alternate one by one in one process (the order turning
each step), each step timed by this process's CPU time: load from other jobs on a shared
machine then falls on every variant alike. The rate is the median over ``--rounds`` rounds.

Configurations (the presets as users run them, built-in data only):

* ``main``: the main job, ``mnist_dcgan`` (DCGAN-28, width 32, batch 64, reuse_fake);
* ``dcgan64``: the ``anime64`` preset (DCGAN-64, width 64, batch 64) on the built-in faces
  at 64 px (``data.source=faces2000 data.image_size=64``);
* ``faces32``: the ``faces32`` preset (StyleGAN2-style G and D at 32 px, R1, DiffAugment);
  ``faces64``: the same nets at 64 px (``data.image_size=64``);
* ``resnet32`` / ``resnet64``: the ResNet-SN of ``benchmarks/faces.py`` (the faces32 preset with
  ResNet G and D, spectral norm, hinge loss) at 32 and 64 px;
* ``pix2pix``: the ``mnist_pix2pix`` preset (U-Net and PatchGAN, 28 px, batch 32);
* ``cyclegan``: the ``cyclegan_digits`` preset (two ResNet translators, two PatchGANs, 28 px,
  batch 8).

Variants: ``fp32``, ``fp32+cl`` (channels-last), ``bf16`` (autocast), ``bf16+cl``.

Whether bf16 pays depends on the processor: with AMX or AVX512-BF16, oneDNN multiplies bf16
natively; without (AVX2 only) it converts to fp32 around every product. The processor's flags
and torch's CPU capability are printed with the table.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import write_section  # noqa: E402

from gankit.config import load_config  # noqa: E402
from gankit.runtime import BF16_CPU_FLAGS, cpu_flags  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402

SECTION = "## bf16 on the CPU"
ROOT = Path(__file__).resolve().parents[1]
# the ResNet-SN of the faces benchmark (benchmarks/faces.py): the faces32 preset, its nets swapped
RESNET_SN = ["G.name=resnet", "D.name=resnet", "G.width=32", "D.width=32", "G.norm=batch",
             "D.spectral_norm=true", "loss.name=hinge", "loss.penalty=none", "model.style_mixing=0",
             "model.reg_every=1", "optim.lr_g=0.0002", "optim.lr_d=0.0002", "optim.beta1=0.0",
             "optim.beta2=0.9"]
CONFIGS = {
    "main": ("mnist_dcgan", []),
    "dcgan64": ("anime64", ["data.source=faces2000", "data.image_size=64", "data.workers=0"]),
    "faces32": ("faces32", []),
    "faces64": ("faces32", ["data.image_size=64"]),
    "resnet32": ("faces32", RESNET_SN),
    "resnet64": ("faces32", RESNET_SN + ["data.image_size=64"]),
    "pix2pix": ("mnist_pix2pix", []),
    "cyclegan": ("cyclegan_digits", []),
}
VARIANTS = {
    "fp32": ["train.amp=none"],
    "fp32+cl": ["train.amp=none", "train.channels_last=true"],
    "bf16": ["train.amp=bf16"],
    "bf16+cl": ["train.amp=bf16", "train.channels_last=true"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="main,dcgan64,faces32")
    p.add_argument("--variants", default="fp32,bf16,bf16+cl")
    p.add_argument("--steps", type=int, default=6, help="steps of each variant per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each variant first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args(argv)


def make_trainer(config: str, variant: str, workdir: Path) -> Trainer:
    preset, overrides = CONFIGS[config]
    items = overrides + VARIANTS[variant] + [
        "train.device=cpu", "train.progress=false", "train.sample_every=0", "train.ckpt_every=0",
        "train.steps=100000000", "eval.every=0", "eval.metrics=[]", "eval.best="]
    return Trainer(load_config(preset, items), workdir / f"{config}-{variant}")


def bench(config: str, variants: list[str], args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Median CPU-time steps/s of each variant, the steps interleaved one by one."""
    trainers = {v: make_trainer(config, v, workdir) for v in variants}
    for trainer in trainers.values():
        trainer.run_steps(args.warmup)  # warm-up: first-call allocations, oneDNN kernel choice
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        cpu = {v: 0.0 for v in variants}
        for i in range(args.steps):
            order = variants if (i + r) % 2 == 0 else variants[::-1]
            for v in order:
                c = time.process_time()
                trainers[v].run_steps(1)
                cpu[v] += time.process_time() - c
        for v in variants:
            rates[v].append(args.steps / cpu[v])
        print(f"  {config} round {r + 1}: " + ", ".join(f"{v} {rates[v][-1]:.3f}" for v in variants),
              flush=True)
    return {v: statistics.median(rates[v]) for v in variants}


def machine() -> str:
    flags = cpu_flags()
    native = [f for f in BF16_CPU_FLAGS if f in flags] or ["none of " + "/".join(BF16_CPU_FLAGS)]
    return (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, capability "
            f"{torch.backends.cpu.get_cpu_capability()}, native bf16 flags: {', '.join(native)}, "
            f"{torch.get_num_threads()} thread(s)")


def table(results: dict[str, dict[str, float]], variants: list[str]) -> str:
    head = "| configuration | " + " | ".join(f"{v} steps/s" for v in variants) + " | " + \
           " | ".join(f"{v} / fp32" for v in variants if v != "fp32") + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(variants) - 1)]
    for name, rates in results.items():
        ratios = [f"{rates[v] / rates['fp32']:.2f}x" for v in variants if v != "fp32"]
        lines.append(f"| {name} | " + " | ".join(f"{rates[v]:.3f}" for v in variants) + " | " +
                     " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",")]
    if "fp32" not in variants:
        raise SystemExit("--variants must include fp32 (the ratios are against it)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            results[config] = bench(config.strip(), variants, args, Path(tmp))
    text = table(results, variants)
    print(machine())
    print(text)
    if not args.no_write:
        write_section(args.out, f"{SECTION}\n\n{machine()}; `{' '.join(['python'] + sys.argv)}`\n\n{text}\n")
    return results


if __name__ == "__main__":
    main()
