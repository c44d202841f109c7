"""Whole-process speed: ``gankit train`` against a bare hand-written loop, each its own process.

    python benchmarks/whole_process.py                                  # main, toy; 1 thread
    python benchmarks/whole_process.py --configs main --steps 400 --rounds 3 --threads 2
    python benchmarks/whole_process.py --configs main --set train.compile=true   # gankit only
    python benchmarks/whole_process.py --variants gankit,gankit-nomallopt,bare,bare-default

The in-process benchmark (``throughput.py``) runs both loops in one process, so they share one
allocator state and one warm-up; a user runs ``gankit train`` as a process of its own. Here each
run is a fresh process, timed from outside as a user would time it: wall clock, user and kernel
CPU time and minor page faults, read from ``os.wait4`` (the child's own ``rusage``).

Start-up (imports, data loading, building the nets, the final checkpoint and sample grid) is
measured by a short run of ``--short-steps`` steps and subtracted: a per-step figure is
``(long - short) / (steps - short_steps)``, taken per round. Within a round the variants run in
turns, the order reversed every round, so that drifting load on a shared machine hits all.

Variants:

* ``gankit``: ``python -m gankit train PRESET`` with its own allocator settings
  (:func:`gankit.runtime.tune_allocator`), no ``MALLOC_*`` variables in its environment;
* ``gankit-nomallopt``: the same with ``GANKIT_NO_MALLOPT=1`` (glibc's adaptive thresholds);
* ``bare``: the hand-written loop below, given glibc's thresholds through the environment
  (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``): the fastest the bare loop gets;
* ``bare-default``: the hand-written loop with glibc's defaults.

The bare loops use gankit's network builders and data loaders (same nets, same data), the same
optimizer (fused Adam), the same EMA update, learning-rate schedule and penalty, and read the
losses every ``log_every`` steps; nothing else of gankit (no trainer, model class or logger).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import write_json  # noqa: E402

# name -> (preset, overrides shared by gankit and the bare loop)
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "main": ("mnist_dcgan", []),
    "toy": ("toy_ring8", []),
    "cgan": ("mnist_cgan", []),
}
QUIET = ["train.progress=false", "train.sample_every=0", "train.ckpt_every=0", "train.device=cpu"]
TUNED_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}
VARIANTS = ("gankit", "gankit-nomallopt", "bare", "bare-default")


# ---- the bare loops (run in the child process: --bare NAME) ----------------------------------
def bare_config(name: str, steps: int):
    from gankit.config import load_config

    preset, overrides = CONFIGS[name]
    return load_config(preset, overrides + QUIET + [f"train.steps={steps}"])


def adam(params, lr: float, o) -> torch.optim.Adam:
    return torch.optim.Adam(list(params), lr=lr, betas=(o.beta1, o.beta2), fused=True)


class Batches:
    """A resident data set served in per-epoch random orders, as a hand-written loop does."""

    def __init__(self, tensors: dict[str, torch.Tensor], batch: int):
        self.tensors, self.batch = tensors, batch
        self.n = len(tensors["x"])
        self.perm, self.pos = torch.randperm(self.n), self.n

    def next(self) -> dict[str, torch.Tensor]:
        if self.pos + self.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return {k: v[idx] for k, v in self.tensors.items()}


def decay_lrs(opts: dict[str, tuple[torch.optim.Optimizer, float]], step: int, cfg) -> None:
    """Linear decay over the last ``1 - optim.decay_start`` of the run."""
    steps, start = cfg.train.steps, int(round(cfg.optim.decay_start * cfg.train.steps))
    if step >= start and steps > start:
        for opt, lr in opts.values():
            opt.param_groups[0]["lr"] = lr * (1.0 - (step - start) / (steps - start))


def ema_update(ema: torch.nn.Module, live: torch.nn.Module, step: int, cfg) -> None:
    with torch.no_grad():
        decay = cfg.train.ema if step >= cfg.train.ema_start else 0.0
        torch._foreach_lerp_(list(ema.parameters()), list(live.parameters()), 1.0 - decay)
        buffers = list(ema.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(live.buffers()))


def bare_gan(cfg) -> None:
    """A GAN written by hand: nonsaturating loss, optional R1, EMA of G, linear lr decay; with
    ``data.condition=label`` one-hot labels into G and a projection D, matching-aware."""
    from gankit.data import load_tensors
    from gankit.nets import build_discriminator, build_generator

    t, o, z_dim = cfg.train, cfg.optim, cfg.model.z_dim
    torch.manual_seed(t.seed)
    tensors, _, info = load_tensors(cfg.data, t.seed)
    k = info.num_classes if cfg.data.condition == "label" else 0
    G = build_generator(cfg.G, info, z_dim, k)
    D = build_discriminator(cfg.D, info, k, cfg.model.cond_mode)
    ema = copy.deepcopy(G).eval().requires_grad_(False)
    opts = {"G": (adam(G.parameters(), o.lr_g, o), o.lr_g), "D": (adam(D.parameters(), o.lr_d, o), o.lr_d)}
    data, b, w = Batches({"x": tensors["x"], "y": tensors["y"]} if k else {"x": tensors["x"]},
                         cfg.data.batch_size), cfg.data.batch_size, cfg.model.mismatch_weight
    for step in range(t.steps):
        decay_lrs(opts, step, cfg)
        batch = data.next()
        real, c = batch["x"], F.one_hot(batch["y"], k).float() if k else None
        D.requires_grad_(True)
        G.requires_grad_(False)
        with torch.no_grad():
            fake = G(torch.randn(b, z_dim), c)
        real_out = D(real, c)
        loss_d = F.softplus(-real_out).mean() + F.softplus(D(fake, c)).mean()
        if k:  # matching-aware: real digits with another item's (different) label count as fake
            same = batch["y"][:, None] == batch["y"][None, :]
            partners = torch.rand(b, b).masked_fill(same, -1.0).argmax(1)
            loss_d = (1 - w) * loss_d + w * (F.softplus(-real_out).mean()
                                             + F.softplus(D(real, c[partners])).mean())
        if cfg.loss.penalty == "r1":  # on a second forward of the real batch, as gankit does
            x_r = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_r, c).sum(), x_r, create_graph=True)
            loss_d = loss_d + 0.5 * cfg.loss.penalty_weight * grad.square().flatten(1).sum(1).mean()
        step_opt(opts["D"][0], loss_d)
        G.requires_grad_(True)
        D.requires_grad_(False)
        c_g = F.one_hot(data.next()["y"], k).float() if k else None  # G's phase draws a batch too
        loss_g = F.softplus(-D(G(torch.randn(b, z_dim), c_g), c_g)).mean()
        step_opt(opts["G"][0], loss_g)
        ema_update(ema, G, step + 1, cfg)
        if (step + 1) % t.log_every == 0:
            print(step + 1, loss_d.item(), loss_g.item())
    torch.save({"G": G.state_dict(), "D": D.state_dict(), "ema": ema.state_dict()}, os.devnull)


def step_opt(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


BARE_LOOPS = {"main": bare_gan, "toy": bare_gan, "cgan": bare_gan}


def run_bare(name: str, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    BARE_LOOPS[name](bare_config(name, steps))


# ---- the parent: commands, timing, table ------------------------------------------------------
def command(variant: str, name: str, steps: int, threads: int, out: Path,
            extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of one run."""
    env = {k: v for k, v in os.environ.items()
           if k not in TUNED_ENV and k != "GANKIT_NO_MALLOPT"}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    if variant.startswith("gankit"):
        preset, overrides = CONFIGS[name]
        argv = [sys.executable, "-m", "gankit", "train", preset, *overrides, *QUIET,
                f"train.steps={steps}", f"train.threads={threads}", *extra, "--out", str(out)]
        if variant == "gankit-nomallopt":
            env["GANKIT_NO_MALLOPT"] = "1"
    else:
        argv = [sys.executable, str(Path(__file__).resolve()), "--bare", name,
                "--steps", str(steps), "--threads", str(threads)]
        if variant == "bare":
            env.update(TUNED_ENV)
    return argv, env


def measure(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds, user and kernel CPU seconds and minor page faults of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
            "cpu": usage.ru_utime + usage.ru_stime, "minflt": float(usage.ru_minflt)}


def bench(name: str, args: argparse.Namespace, tmp: Path) -> dict:
    """Per-step figures of every variant for one configuration, one list entry per round."""
    variants = args.variants.split(",")
    per_step: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    startup: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    runs = 0
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        got: dict[str, dict[int, dict[str, float]]] = {v: {} for v in variants}
        for steps in (args.steps, args.short_steps):
            for v in order:
                runs += 1
                argv, env = command(v, name, steps, args.threads, tmp / f"{name}-run{runs}", args.set)
                got[v][steps] = measure(argv, env)
        span = args.steps - args.short_steps
        for v in variants:
            long, short = got[v][args.steps], got[v][args.short_steps]
            per_step[v].append({k: (long[k] - short[k]) / span for k in long})
            startup[v].append(short)
        print(f"  {name} round {r + 1}: " + ", ".join(
            f"{v} {1e3 * per_step[v][-1]['wall']:.1f} ms/step (cpu {1e3 * per_step[v][-1]['cpu']:.1f}, "
            f"sys {1e3 * per_step[v][-1]['sys']:.2f}, {per_step[v][-1]['minflt']:.0f} faults)"
            for v in variants), flush=True)
    return {"config": name, "preset": CONFIGS[name][0], "per_step": per_step, "startup": startup}


def med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def table(results: list[dict], args: argparse.Namespace) -> str:
    """Markdown: per-step medians of each variant and its ratio to the bare loop, per round."""
    variants = args.variants.split(",")
    base = "bare" if "bare" in variants else variants[-1]
    lines = ["| config | variant | ms/step wall | ms/step CPU | ms/step kernel | minor faults/step "
             f"| start-up s | wall / {base} (median, min-max) | CPU / {base} |",
             "|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        ps, st = res["per_step"], res["startup"]
        for v in variants:
            ratios = [a["wall"] / b["wall"] for a, b in zip(ps[v], ps[base])]
            cpu = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(ps[v], ps[base]))
            lines.append(
                f"| {res['config']} | {v} | {1e3 * med(ps[v], 'wall'):.2f} | {1e3 * med(ps[v], 'cpu'):.2f} "
                f"| {1e3 * med(ps[v], 'sys'):.2f} | {med(ps[v], 'minflt'):.0f} | {med(st[v], 'wall'):.2f} "
                f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | {cpu:.3f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="main,toy", help=f"comma-separated: {', '.join(CONFIGS)}")
    p.add_argument("--variants", default="gankit,bare", help=f"comma-separated: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=400, help="steps of the long run")
    p.add_argument("--short-steps", type=int, default=10, help="steps of the start-up run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for the gankit runs only (e.g. train.compile=true)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--bare", metavar="NAME", help=argparse.SUPPRESS)  # the child: run one bare loop
    args = p.parse_args(argv)
    bad = [v for v in args.variants.split(",") if v not in VARIANTS]
    bad += [c for c in args.configs.split(",") if c not in CONFIGS]
    if bad:
        p.error(f"unknown config or variant: {', '.join(bad)}")
    if not args.bare and not 0 <= args.short_steps < args.steps:
        p.error("--short-steps must be at least 0 and below --steps")
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.bare:
        run_bare(args.bare, args.steps, args.threads)
        return None
    print(f"{args.steps} vs {args.short_steps} steps, {args.rounds} rounds, {args.threads} thread(s); "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            results.append(bench(name, args, Path(tmp)))
            text = table(results, args)
            out = {"torch": torch.__version__, "threads": args.threads, "steps": args.steps,
                   "short_steps": args.short_steps, "rounds": args.rounds, "set": args.set,
                   "load_after": os.getloadavg(), "results": results, "table": text}
            write_json(args.json, out)  # after every configuration: a failure keeps the rest
    print(text)
    return out


if __name__ == "__main__":
    main()
