"""Whole-process speed: ``gankit train`` against a bare hand-written loop, each its own process.

    python benchmarks/whole_process.py                                  # main, toy; 1 thread
    python benchmarks/whole_process.py --configs main --steps 400 --rounds 3 --threads 2
    python benchmarks/whole_process.py --configs main --set train.compile=true   # gankit only
    python benchmarks/whole_process.py --variants gankit,gankit-nomallopt,bare,bare-default
    python benchmarks/whole_process.py --check --configs main,toy,cgan,cyclegan,vae,seqgan

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
* ``bare-fresh``: ``bare`` with ``model.reuse_fake=false`` whatever the preset says: the usual
  loop, which generates a new batch for G's step (the reference a preset that reuses D's batch
  has to beat);
* ``bare-default``: the hand-written loop with glibc's defaults.

The bare loops use gankit's network builders and data loaders (same nets, same data), the same
optimizer (fused Adam), the same EMA update, learning-rate schedule and penalty, and read the
losses every ``log_every`` steps; nothing else of gankit (no trainer, model class or logger;
the VAE's loop calls gankit's likelihood functions, the text GAN's its Gumbel noise formula).
Configs: ``main`` (mnist_dcgan), ``toy`` (toy_ring8), ``cgan`` (mnist_cgan), ``cyclegan``
(cyclegan_digits), ``vae`` (mnist_vae) and ``seqgan`` (gumbel_oracle with every step
adversarial: ``model.pretrain_steps=0``). ``--check`` runs a few steps of both in this process
and compares, per net, the parameters, the initial weights and the forward calls, and the
backward passes and optimizer steps per step.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

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
    "cyclegan": ("cyclegan_digits", []),
    "vae": ("mnist_vae", []),
    # all steps adversarial: the MLE pretraining is the MLE loop, timed by nothing else here
    "seqgan": ("gumbel_oracle", ["model.pretrain_steps=0"]),
}
QUIET = ["train.progress=false", "train.sample_every=0", "train.ckpt_every=0", "train.device=cpu"]
TUNED_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456"}
VARIANTS = ("gankit", "gankit-nomallopt", "bare", "bare-fresh", "bare-default")


# ---- the bare loops (run in the child process: --bare NAME) ----------------------------------
# --check sets this to see each bare loop's nets and optimizers (named as in gankit's model)
PROBE: Callable[[dict[str, torch.nn.Module], dict[str, torch.optim.Optimizer]], None] | None = None


def probe(nets: dict[str, torch.nn.Module], opts: dict[str, tuple[torch.optim.Optimizer, float]]) -> None:
    if PROBE is not None:
        PROBE(nets, {k: v[0] for k, v in opts.items()})


def set_grad(nets, flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)


def bare_config(name: str, steps: int, extra: list[str] = ()):
    from gankit.config import load_config

    preset, overrides = CONFIGS[name]
    return load_config(preset, overrides + QUIET + [f"train.steps={steps}", *extra])


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
    ``data.condition=label`` one-hot labels into G and a projection D, matching-aware, and
    MSGAN's mode-seeking term when ``model.mode_seeking`` is set; with ``model.reuse_fake``
    G's step takes the batch D judged."""
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
    reuse = cfg.model.reuse_fake
    data, b, w = Batches({"x": tensors["x"], "y": tensors["y"]} if k else {"x": tensors["x"]},
                         cfg.data.batch_size), cfg.data.batch_size, cfg.model.mismatch_weight
    probe({"G": G, "D": D}, opts)
    for step in range(t.steps):
        decay_lrs(opts, step, cfg)
        batch = data.next()
        real, c = batch["x"], F.one_hot(batch["y"], k).float() if k else None
        D.requires_grad_(True)
        G.requires_grad_(reuse)
        if reuse:  # model.reuse_fake: generated with its graph, G's step takes it
            kept = G(torch.randn(b, z_dim), c)
            fake = kept.detach()
        else:
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
        ms, h = cfg.model.mode_seeking, b // 2
        if reuse:
            fake, c_g = kept, c
        else:
            c_g = F.one_hot(data.next()["y"], k).float() if k else None  # G's phase draws a batch too
            if ms and k:  # MSGAN: the batch's second half repeats the first half's labels
                c_g = torch.cat([c_g[:h], c_g[:h]])
            z = torch.randn(len(c_g) if k else b, z_dim)
            fake = G(z, c_g)
        loss_g = F.softplus(-D(fake, c_g)).mean()
        if ms:
            ratio = (fake[:h] - fake[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
            loss_g = loss_g + ms / (ratio + 1e-5)
        step_opt(opts["G"][0], loss_g)
        ema_update(ema, G, step + 1, cfg)
        if (step + 1) % t.log_every == 0:
            print(step + 1, loss_d.item(), loss_g.item())
    torch.save({"G": G.state_dict(), "D": D.state_dict(), "ema": ema.state_dict()}, os.devnull)


def step_opt(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class HistoryPool:
    """The CycleGAN authors' image history, as a hand-written loop keeps it: while it fills,
    each generated image is stored and shown; then each is, with probability 1/2, swapped
    for a random stored one (shown instead) or else shown itself."""

    def __init__(self, size: int, seed: int):
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return x
        out = []
        for img in x:
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = img
            else:
                out.append(img)
        return torch.stack(out)


def bare_cyclegan(cfg) -> None:
    """CycleGAN written by hand: two ResNet translators, two PatchGANs, LSGAN losses (D's
    halved), cycle and identity L1, the image history, linear lr decay over the second half."""
    from gankit.data.paired import mnist_thick
    from gankit.nets.patchgan import build_patchgan
    from gankit.nets.resnet_translator import build_resnet_translator

    t, o, m = cfg.train, cfg.optim, cfg.model
    assert cfg.loss.name == "lsgan" and m.lambda_semantic == 0 and t.ema == 0
    torch.manual_seed(t.seed)
    a, b, _, _ = mnist_thick(cfg.data)
    ch, side = a.shape[1], a.shape[-1]
    G = {d: build_resnet_translator(cfg.G, ch, ch, side) for d in ("AB", "BA")}
    D = {d: build_patchgan(cfg.D, ch) for d in ("A", "B")}
    opts = {"G": (adam([p for g in G.values() for p in g.parameters()], o.lr_g, o), o.lr_g),
            "D": (adam([p for d in D.values() for p in d.parameters()], o.lr_d, o), o.lr_d)}
    pools = {d: HistoryPool(m.pool_size, t.seed + i) for i, d in enumerate("AB")}
    data_a, data_b = Batches({"x": a}, cfg.data.batch_size), Batches({"x": b}, cfg.data.batch_size)
    probe({"G.AB": G["AB"], "G.BA": G["BA"], "D.A": D["A"], "D.B": D["B"]}, opts)
    w_cycle, w_identity = m.lambda_cycle, m.lambda_identity * m.lambda_cycle
    for step in range(t.steps):
        decay_lrs(opts, step, cfg)
        real_a, real_b = data_a.next()["x"], data_b.next()["x"]
        set_grad(D.values(), True)
        set_grad(G.values(), False)
        with torch.no_grad():
            fake_b, fake_a = G["AB"](real_a), G["BA"](real_b)
        shown_a, shown_b = pools["A"].query(fake_a), pools["B"].query(fake_b)
        loss_d = 0.5 * (0.5 * (D["A"](real_a) - 1).square().mean() + 0.5 * D["A"](shown_a).square().mean()) \
            + 0.5 * (0.5 * (D["B"](real_b) - 1).square().mean() + 0.5 * D["B"](shown_b).square().mean())
        step_opt(opts["D"][0], loss_d)
        real_a, real_b = data_a.next()["x"], data_b.next()["x"]  # G's phase draws a batch too
        set_grad(G.values(), True)
        set_grad(D.values(), False)
        fake_b, fake_a = G["AB"](real_a), G["BA"](real_b)
        gan = 0.5 * (D["B"](fake_b) - 1).square().mean() + 0.5 * (D["A"](fake_a) - 1).square().mean()
        cycle = (G["BA"](fake_b) - real_a).abs().mean() + (G["AB"](fake_a) - real_b).abs().mean()
        identity = (G["AB"](real_b) - real_b).abs().mean() + (G["BA"](real_a) - real_a).abs().mean()
        loss_g = gan + w_cycle * cycle + w_identity * identity
        step_opt(opts["G"][0], loss_g)
        if (step + 1) % t.log_every == 0:
            print(step + 1, loss_d.item(), loss_g.item())
    torch.save({"G": {d: g.state_dict() for d, g in G.items()},
                "D": {d: n.state_dict() for d, n in D.items()}}, os.devnull)


def bare_vae(cfg) -> None:
    """A VAE written by hand: conv encoder and decoder, a discretised-logistic mixture
    likelihood, KL warm-up, EMA of both nets."""
    from gankit.data import load_tensors
    from gankit.nets.vae_nets import build_vae_nets
    from gankit.models import likelihood as lk

    t, o, m = cfg.train, cfg.optim, cfg.model
    assert m.likelihood == "logistic" and cfg.data.condition == "none"
    torch.manual_seed(t.seed)
    tensors, _, info = load_tensors(cfg.data, t.seed)
    k = m.mixtures
    enc, dec = build_vae_nets(cfg.G, info, m.z_dim, 3 * k)
    ema = {"encoder": copy.deepcopy(enc).eval().requires_grad_(False),
           "decoder": copy.deepcopy(dec).eval().requires_grad_(False)}
    opts = {"vae": (adam([*enc.parameters(), *dec.parameters()], o.lr_g, o), o.lr_g)}
    data, b = Batches({"x": tensors["x"]}, cfg.data.batch_size), cfg.data.batch_size
    probe({"encoder": enc, "decoder": dec}, opts)
    for step in range(t.steps):
        decay_lrs(opts, step, cfg)
        x = data.next()["x"]
        mean, logvar = enc(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(b, m.z_dim)
        parts = dec(z).unflatten(1, (3, k, -1)).movedim(2, 0)  # [K, B, 3, C, H, W]
        w, mu, s = parts[:, :, 0], parts[:, :, 1], parts[:, :, 2].clamp(min=-7.0)
        rec = lk.discretized_logistic_mixture_log_prob(lk.to_pixels(x), w, mu, s).flatten(1).sum(1)
        kl = lk.gaussian_kl(mean, logvar).mean(0).clamp(min=m.free_bits).sum()
        beta = 1.0 if m.kl_warmup == 0 else min(1.0, (step + 1) / m.kl_warmup)
        loss = -rec.mean() + beta * kl
        step_opt(opts["vae"][0], loss)
        ema_update(ema["encoder"], enc, step + 1, cfg)
        ema_update(ema["decoder"], dec, step + 1, cfg)
        if (step + 1) % t.log_every == 0:
            print(step + 1, loss.item())
    torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict(),
                "ema": {n: e.state_dict() for n, e in ema.items()}}, os.devnull)


def bare_seqgan(cfg) -> None:
    """A Gumbel-softmax text GAN (RelGAN-style) written by hand: an LSTM G fed back its hard
    tokens, the CNN D on the relaxed rows, the relativistic loss, beta annealed from 1 to
    beta_max over the run; G's update, then ``n_critic`` D updates, each on a fresh batch."""
    from gankit.data import load_tensors
    from gankit.data.text import Vocab
    from gankit.nets.sequence import CNNDiscriminator, LSTMGenerator, gumbel_noise

    t, o, m = cfg.train, cfg.optim, cfg.model
    assert m.kind == "gumbel" and m.pretrain_steps == 0 and m.d_pretrain_steps == 0
    assert cfg.data.condition == "none" and not cfg.D.spectral_norm and t.ema == 0
    torch.manual_seed(t.seed)
    tensors, _, info = load_tensors(cfg.data, t.seed)
    vocab, length = Vocab(list(info.vocab)), int(info.shape[0])
    V = len(vocab)
    G = LSTMGenerator(V, length, m.emb_dim, cfg.G.width, cfg.G.depth, eos=vocab.eos, pad=vocab.pad)
    D = CNNDiscriminator(V, length, m.d_emb_dim, m.d_windows, m.d_filters, m.d_dropout, m.d_highway)
    opts = {"G": (adam(G.parameters(), o.lr_g, o), o.lr_g), "D": (adam(D.parameters(), o.lr_d, o), o.lr_d)}
    data, b = Batches({"x": tensors["x"]}, cfg.data.batch_size), cfg.data.batch_size
    probe({"G.lstm": G.lstm, "D": D}, opts)
    for step in range(t.steps):
        decay_lrs(opts, step, cfg)
        beta = m.beta_max ** (step / (t.steps - 1)) if t.steps > 1 else m.beta_max
        x = data.next()["x"]
        set_grad([G], True)
        set_grad([D], False)
        _, soft = G.gumbel_sample(b, beta, noise=gumbel_noise(torch.rand(b, length, V)))
        loss_g = F.softplus(-(D(soft) - D(x))).mean()
        step_opt(opts["G"][0], loss_g)
        set_grad([D], True)
        set_grad([G], False)
        for _ in range(t.n_critic):
            x = data.next()["x"]
            with torch.no_grad():
                _, soft = G.gumbel_sample(b, beta, noise=gumbel_noise(torch.rand(b, length, V)))
            loss_d = F.softplus(-(D(x) - D(soft))).mean()
            step_opt(opts["D"][0], loss_d)
        if (step + 1) % t.log_every == 0:
            print(step + 1, loss_d.item(), loss_g.item())
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, os.devnull)


BARE_LOOPS = {"main": bare_gan, "toy": bare_gan, "cgan": bare_gan, "cyclegan": bare_cyclegan,
              "vae": bare_vae, "seqgan": bare_seqgan}


# ---- --check: the bare loop does gankit's work ----------------------------------------------
def check(name: str, steps: int = 2, extra: list[str] = ()) -> dict[str, dict]:
    """Run ``steps`` steps of the bare loop and of gankit's trainer in this process (one
    thread) and count, per net (named as in gankit's model), its parameters, a checksum of its
    initial weights and its forward calls; per optimizer, its steps and parameters; and the
    backward passes (``backward`` and ``autograd.grad``); ``extra`` overrides both sides'
    configs. Returns ``{side: counts}``."""
    global PROBE
    from gankit.training import lock
    from gankit.training.trainer import Trainer

    torch.set_num_threads(1)
    counts: dict[str, dict] = {}
    side = ["bare"]
    real_backward, real_grad = torch.autograd.backward, torch.autograd.grad

    def counting(fn, key):
        def wrapped(*args, **kwargs):
            counts[side[0]][key] += 1
            return fn(*args, **kwargs)
        return wrapped

    def instrument(nets: dict[str, torch.nn.Module], opts: dict[str, torch.optim.Optimizer]) -> None:
        c = counts[side[0]] = {
            "params": {n: sum(p.numel() for p in net.parameters()) for n, net in nets.items()},
            "init_sum": {n: round(float(sum(p.detach().double().sum() for p in net.parameters())), 6)
                         for n, net in nets.items()},
            "forward": dict.fromkeys(nets, 0), "opt_params": {}, "opt_steps": dict.fromkeys(opts, 0),
            "backward": 0, "grad": 0}
        for n, net in nets.items():
            net.register_forward_pre_hook(lambda *_, n=n: c["forward"].__setitem__(n, c["forward"][n] + 1))
        for n, opt in opts.items():
            c["opt_params"][n] = sum(p.numel() for g in opt.param_groups for p in g["params"])
            opt.register_step_post_hook(lambda *_, n=n: c["opt_steps"].__setitem__(n, c["opt_steps"][n] + 1))

    torch.autograd.backward = counting(real_backward, "backward")
    torch.autograd.grad = counting(real_grad, "grad")
    try:
        PROBE = instrument
        BARE_LOOPS[name](bare_config(name, steps, extra))
        PROBE = None
        side[0] = "gankit"
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(bare_config(name, steps, extra), Path(tmp) / "run")
            model = trainer.model
            instrument({n: model.get_submodule(n) for n in counts["bare"]["params"]}, model.optimizers)
            trainer.run_steps(steps)
            lock.release(trainer.run_dir)
    finally:
        torch.autograd.backward, torch.autograd.grad = real_backward, real_grad
        PROBE = None
    return counts


def check_table(name: str, counts: dict[str, dict], steps: int) -> str:
    bare, gk = counts["bare"], counts["gankit"]
    lines = [f"{name} ({CONFIGS[name][0]}), {steps} steps: bare | gankit"]
    for n in bare["params"]:
        lines.append(f"  net {n}: params {bare['params'][n]} | {gk['params'][n]}; forward calls/step "
                     f"{bare['forward'][n] / steps:g} | {gk['forward'][n] / steps:g}; initial weights "
                     f"{'identical' if bare['init_sum'][n] == gk['init_sum'][n] else 'differ'}")
    for n in sorted(set(bare["opt_steps"]) | set(gk["opt_steps"])):
        lines.append(f"  optimizer {n}: params {bare['opt_params'].get(n, '-')} | {gk['opt_params'].get(n, '-')}; "
                     f"steps/step {bare['opt_steps'].get(n, 0) / steps:g} | {gk['opt_steps'].get(n, 0) / steps:g}")
    lines.append(f"  backward passes/step {bare['backward'] / steps:g} | {gk['backward'] / steps:g}; "
                 f"autograd.grad/step {bare['grad'] / steps:g} | {gk['grad'] / steps:g}")
    same = (bare["params"] == gk["params"] and bare["forward"] == gk["forward"]
            and bare["backward"] == gk["backward"] and bare["grad"] == gk["grad"]
            and all(bare["opt_steps"][n] == gk["opt_steps"].get(n) and bare["opt_params"][n] == gk["opt_params"].get(n)
                    for n in bare["opt_steps"])
            and all(v == 0 for n, v in gk["opt_steps"].items() if n not in bare["opt_steps"]))
    lines.append("  MATCH" if same else "  MISMATCH")
    return "\n".join(lines)


def run_bare(name: str, steps: int, threads: int, extra: list[str] = ()) -> None:
    torch.set_num_threads(threads)
    BARE_LOOPS[name](bare_config(name, steps, extra))


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
        if variant in ("bare", "bare-fresh"):
            env.update(TUNED_ENV)
        if variant == "bare-fresh":  # a new G batch in G's step, whatever the preset says
            argv += ["--set", "model.reuse_fake=false"]
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
                   help="an override for the gankit runs only (e.g. train.compile=true); "
                        "with --check, for both sides")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--check", action="store_true",
                   help="only check, in this process, that each bare loop does gankit's work per step "
                        "(parameters, forward calls per net, backward passes, optimizer steps)")
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
        run_bare(args.bare, args.steps, args.threads, args.set)
        return None
    if args.check:
        for name in args.configs.split(","):
            steps = args.short_steps or 2
            print(check_table(name, check(name, steps, args.set), steps), flush=True)
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
