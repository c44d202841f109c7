"""Using a trained generator (BENCHMARKS.md "Using the generator"): projection against random
search, supervised edits read by judges, and the time each step takes, on one CPU thread.

    gankit train mnist_dcgan train.steps=2000 train.threads=1 --out runs/use_mnist
    gankit train faces32_dcgan train.steps=3000 train.threads=1 --out runs/use_faces
    python benchmarks/use_generator.py project --run runs/use_mnist --set mnist --n 20 --steps 500
    python benchmarks/use_generator.py project --run runs/use_faces --set faces --n 20 --steps 500
    python benchmarks/use_generator.py edit --run runs/use_faces --judge hair --seeds 200
    python benchmarks/use_generator.py edit --run runs/use_faces --judge hair --seeds 200 --conditioned
    python benchmarks/use_generator.py edit --run runs/use_mnist --judge digits --seeds 200
    python benchmarks/use_generator.py time

Prints one JSON object per measurement; nothing is written to BENCHMARKS.md. Times are CPU
seconds of this process (one thread), so other jobs on the machine do not inflate them.

* ``project``: ``n`` target images (MNIST: training digits, as no held-out MNIST ships;
  faces: built-in faces 5,000+, which faces2000 never saw), projected with ``gankit
  project``'s defaults; PSNR against the best of ``random`` generated samples (random search)
  and, for faces, against the nearest of the 2,000 training faces.
* ``edit``: a labels direction per class from 2,000 judged samples; for each of ``seeds``
  seeds whose image the judge does not already read as the class, the latent is moved along
  the class's direction in steps of 0.5 standard deviations up to 6; *reached* when the judge
  reads the class, *kept* when the other attribute (eye colour for hair) reads as before.
  ``--conditioned`` first removes from each hair direction its components along the eye
  colours' directions (InterFaceGAN's conditional manipulation). For comparison, each
  reached latent is also moved the same distance in a random direction instead, and the eye
  colour compared again ("kept_other_random_move").
* ``time``: one 64-px image, 1,000 steps, one thread: DCGAN (z) and StyleGAN2-style (w+,
  noise maps), untrained (the time does not depend on the weights); and each direction method.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

torch.set_num_threads(1)


def _best_random(handle, targets: torch.Tensor, n: int, batch: int = 500) -> torch.Tensor:
    """Per target, the PSNR (as :func:`gankit.use.project.psnr`, over all pairs) of the
    closest of ``n`` generated samples."""
    best = torch.full((len(targets),), float("inf"))
    for start in range(0, n, batch):
        x = handle.generate(min(batch, n - start), seed=10_000 + start)
        d = torch.cdist(targets.flatten(1), x.flatten(1)).square() / targets[0].numel()
        best = torch.minimum(best, d.min(1).values)
    return 10 * torch.log10(4.0 / best)


def _targets(kind: str, run, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(targets, training images to find the nearest of, or None)``."""
    if kind == "mnist":
        return next(run.real_batches(n, n)), None
    from gankit.use.judges import _resize
    from gankit.data.faces import draw_faces

    size = run.info.shape[-1]
    pix, _ = draw_faces(n, start=5000, size=64)
    x = torch.from_numpy(pix).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    train = torch.cat(list(run.real_batches(500)))
    return _resize(x, size).clamp(-1, 1), train


def cmd_project(args) -> dict:
    from gankit.api import load_run
    from gankit.use.project import ProjectionSettings, discriminator_features, project

    run = load_run(args.run)
    handle = run.generator()
    targets, train = _targets(args.set, run, args.n)
    t = time.process_time()
    p = project(handle, targets, settings=ProjectionSettings(steps=args.steps),
                features=discriminator_features(run.model.D), seeds=list(range(args.n)))
    seconds = time.process_time() - t
    rand = _best_random(handle, targets, args.random)
    out = {"set": args.set, "n": args.n, "steps": args.steps, "space": p.space,
           "projection_psnr": float(p.psnr.mean()), "random_search_psnr": float(rand.mean()),
           "random_samples": args.random, "projection_beats_random": int((p.psnr > rand).sum()),
           "seconds": round(seconds, 1)}
    if train is not None:
        d = torch.cdist(targets.flatten(1), train.flatten(1)).square().min(1).values / targets[0].numel()
        near = 10 * torch.log10(4.0 / d)
        out["nearest_training_psnr"] = float(near.mean())
        out["projection_beats_nearest"] = int((p.psnr > near).sum())
    return out


@torch.no_grad()
def cmd_edit(args) -> dict:
    from gankit.api import load_run
    from gankit.use.directions import conditioned, labels
    from gankit.use.judges import build_judge

    run = load_run(args.run)
    h = run.generator()
    judge, names, notes = build_judge(args.judge, h.spec.out_shape)
    other = build_judge("eyes", h.spec.out_shape)[0] if args.judge == "hair" else None
    t = time.process_time()
    dirs = labels(h, judge, names, n=2000, seed=1)
    seconds = time.process_time() - t
    keep = labels(h, other, build_judge("eyes", h.spec.out_shape)[1], n=2000, seed=1).vectors \
        if other is not None and args.conditioned else None
    z = torch.cat([h.draw(1, s) for s in range(args.seeds)])
    before, other_before = judge(h.synthesize(z)), other(h.synthesize(z)) if other else None
    strengths = torch.arange(0.5, 6.01, 0.5)
    rows = {}
    for name in dirs.names:
        k = names.index(name)
        v, scale = dirs.get(name)
        if keep is not None:  # InterFaceGAN's conditional edit: leave the eye directions alone
            v = conditioned(v, keep)
        todo = (before != k).nonzero().flatten()
        reached, kept = torch.zeros(len(todo), dtype=torch.bool), torch.zeros(len(todo), dtype=torch.bool)
        at = torch.zeros(len(todo))
        for s in strengths:
            moved = z[todo] + s * scale * v
            x = h.synthesize(moved)
            hit = (judge(x) == k) & ~reached
            if other is not None:
                kept |= hit & (other(x) == other_before[todo])
            at[hit] = s * scale
            reached |= hit
        # the same distance in a random direction: how often any move that long keeps the eyes
        g = torch.Generator().manual_seed(k)
        rand = torch.nn.functional.normalize(torch.randn(int(reached.sum()), z.shape[1], generator=g), dim=1)
        x = h.synthesize(z[todo][reached] + at[reached, None] * rand.to(z))
        kept_random = float((other(x) == other_before[todo][reached]).float().mean()) if other and reached.any() else None
        rows[name] = {"seeds": len(todo), "reached": round(float(reached.float().mean()), 3),
                      "kept_other": round(float(kept.sum() / max(1, reached.sum())), 3) if other else None,
                      "kept_other_random_move": None if kept_random is None else round(kept_random, 3),
                      "direction_accuracy": round(float(dirs.scores[dirs.names.index(name)]), 3)}
    return {"judge": args.judge, "conditioned": bool(keep is not None), "notes": notes, "labels_seconds": round(seconds, 1), "classes": rows}


def cmd_time(args) -> dict:
    from gankit.config import load_config
    from gankit.data.info import DataInfo
    from gankit.models import MODELS
    from gankit.use import directions as d
    from gankit.use.generator import GeneratorHandle
    from gankit.use.project import ProjectionSettings, project

    info = DataInfo("image", (3, 64, 64), name="t")
    out = {}
    for net, items in (("dcgan", ["G.name=dcgan", "D.name=dcgan", "G.width=32", "D.width=32"]),
                       ("stylegan2", ["G.name=stylegan2", "D.name=stylegan2", "G.width=16", "D.width=16",
                                      "G.depth=2", "D.norm=none", "loss.penalty=r1"])):
        cfg = load_config(None, ["data.source=faces", "model.z_dim=64", *items])
        model = MODELS.get("gan")(cfg, info).eval()
        h = GeneratorHandle.from_model(model)
        target = h.generate(1, seed=1)
        from gankit.use.project import discriminator_features

        t = time.process_time()
        project(h, target, settings=ProjectionSettings(steps=args.steps),
                features=discriminator_features(model.D))
        out[f"project_{net}_64px_{args.steps}_steps_s"] = round(time.process_time() - t, 1)
        for method, fn in (("sefa", lambda: d.sefa(h)), ("pca", lambda: d.pca(h, n=5000))):
            t = time.process_time()
            fn()
            out[f"{method}_{net}_s"] = round(time.process_time() - t, 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("project")
    a.add_argument("--run", required=True)
    a.add_argument("--set", choices=["mnist", "faces"], required=True)
    a.add_argument("--n", type=int, default=20)
    a.add_argument("--steps", type=int, default=500)
    a.add_argument("--random", type=int, default=10_000)
    b = sub.add_parser("edit")
    b.add_argument("--run", required=True)
    b.add_argument("--judge", required=True)
    b.add_argument("--seeds", type=int, default=200)
    b.add_argument("--conditioned", action="store_true", help="hair: project out the eye-colour directions")
    c = sub.add_parser("time")
    c.add_argument("--steps", type=int, default=1000)
    args = p.parse_args()
    print(json.dumps({"project": cmd_project, "edit": cmd_edit, "time": cmd_time}[args.what](args)))


if __name__ == "__main__":
    main()
