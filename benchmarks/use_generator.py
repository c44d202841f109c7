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
    python benchmarks/use_generator.py project --run runs/use_mnist --set mnist --n 20 --steps 500 --inception
    python benchmarks/use_generator.py directions --run runs/use_faces --set faces --seeds 200 \
        --figures benchmarks/figures/use_directions_faces
    python benchmarks/use_generator.py directions --run runs/use_mnist --set mnist --seeds 200 \
        --figures benchmarks/figures/use_directions_mnist
    python benchmarks/use_generator.py truncation --run runs/use_mnist --n 2000 --n-real 2000 \
        --cache-dir CACHE --figure benchmarks/figures/use_truncation_mnist.png
    python benchmarks/use_generator.py truncation --run runs/use_faces --n 1000 --n-real 1000 \
        --extractor face-judge --cache-dir CACHE --figure benchmarks/figures/use_truncation_faces.png

Prints one JSON object per measurement (``truncation`` also one line per threshold); nothing
is written to BENCHMARKS.md, only the figures asked for. Times are CPU seconds of this process
(one thread), so other jobs on the machine do not inflate them.

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
* ``project --inception``: also the mean L2 distance between each target's Inception
  features (the FID extractor's) and those of its projection, of the best random sample (the
  one closest in pixels) and, for faces, of the nearest training face.
* ``directions``: the top ``k`` SeFa and PCA directions and ``k`` random unit directions; for
  each, the latents of seeds 0..seeds-1 moved to strength -s and +s (``gankit edit``'s
  ``edit_grid``) for each s in ``--read``, and per attribute (hair and eye colour for faces,
  the digit for MNIST) the share of seeds whose judged class differs between the ends, with
  the commonest change; ``--figures``: one labelled grid per method (rows: ``grid-seeds``
  seeds per direction; columns: -strength..strength in 7 steps).
* ``truncation``: FID and precision/recall (k = 3) of ``n`` samples per z threshold against
  ``n-real`` training images, and the same between two disjoint real sets; ``--extractor
  face-judge`` measures them in the colour judge's pooled features (traced to TorchScript)
  where Inception is too slow; ``--figure``: the curves (Pillow).
* ``time``: one 64-px image, 1,000 steps, one thread: DCGAN (z) and StyleGAN2-style (w+,
  noise maps), untrained (the time does not depend on the weights); and each direction method.
"""
from __future__ import annotations

import argparse
import functools
import json
import time

import torch

torch.set_num_threads(1)


def _best_random(handle, targets: torch.Tensor, n: int, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Per target, the PSNR (as :func:`gankit.use.project.psnr`, over all pairs) of the
    closest of ``n`` generated samples, and that sample."""
    best = torch.full((len(targets),), float("inf"))
    images = torch.zeros_like(targets)
    for start in range(0, n, batch):
        x = handle.generate(min(batch, n - start), seed=10_000 + start)
        d = torch.cdist(targets.flatten(1), x.flatten(1)).square() / targets[0].numel()
        low, at = d.min(1)
        better = low < best
        images[better] = x[at[better]]
        best = torch.minimum(best, low)
    return 10 * torch.log10(4.0 / best), images


@functools.lru_cache(maxsize=1)
def _inception():
    from gankit.metrics.extractors import InceptionExtractor

    return InceptionExtractor()


def _inception_distance(targets: torch.Tensor, others: torch.Tensor) -> float:
    """Mean L2 distance between each target's and its counterpart's Inception features (the
    FID extractor's 2,048-d pool features)."""
    a, b = _inception()(targets).features, _inception()(others).features
    return float((a - b).norm(dim=1).mean())


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
    rand, rand_images = _best_random(handle, targets, args.random)
    out = {"set": args.set, "n": args.n, "steps": args.steps, "space": p.space,
           "projection_psnr": float(p.psnr.mean()), "random_search_psnr": float(rand.mean()),
           "random_samples": args.random, "projection_beats_random": int((p.psnr > rand).sum()),
           "seconds": round(seconds, 1)}
    if train is not None:
        d = torch.cdist(targets.flatten(1), train.flatten(1)).square().min(1).values / targets[0].numel()
        near = 10 * torch.log10(4.0 / d)
        out["nearest_training_psnr"] = float(near.mean())
        out["projection_beats_nearest"] = int((p.psnr > near).sum())
    if args.inception:  # the same images, compared in the FID extractor's features
        out["inception_distance"] = {"projection": _inception_distance(targets, p.images.cpu()),
                                     "best_random_by_pixels": _inception_distance(targets, rand_images)}
        if train is not None:
            nearest = train[torch.cdist(targets.flatten(1), train.flatten(1)).argmin(1)]
            out["inception_distance"]["nearest_training"] = _inception_distance(targets, nearest)
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


# ---- unsupervised directions read by the judges ---------------------------------------------------
def _attribute_judges(kind: str, shape) -> list[tuple[str, object, list[str]]]:
    """``[(attribute, judge, class names)]``: hair and eye colour for faces, the digit for MNIST."""
    from gankit.use.judges import build_judge

    names = ("hair", "eyes") if kind == "faces" else ("digits",)
    return [(n, *build_judge(n, shape)[:2]) for n in names]


def _read_edit(h, z: torch.Tensor, v: torch.Tensor, scale: float, s: float, attrs) -> dict:
    """Per attribute, the share of latents ``z`` whose judged class differs between strength
    ``-s`` and ``+s`` along ``v`` (``gankit edit``'s grid, two columns), and the commonest
    change (``from->to`` and its share of all latents)."""
    from gankit.use.directions import edit_grid

    x = edit_grid(h, z, "z", None, v, scale, [-s, s])
    out = {}
    for name, judge, classes in attrs:
        a, b = judge(x[:, 0]), judge(x[:, 1])
        moved = a != b
        pairs = torch.stack([a[moved], b[moved]], 1)
        common = ""
        if len(pairs):
            vals, counts = pairs.unique(dim=0, return_counts=True)
            i = int(counts.argmax())
            common = f"{classes[int(vals[i, 0])]}->{classes[int(vals[i, 1])]} {float(counts[i]) / len(z):.0%}"
        out[name] = {"changed": round(float(moved.float().mean()), 3), "commonest": common}
    return out


def _labelled_grid(blocks: list[torch.Tensor], labels: list[str], strengths: list[float], path: str) -> None:
    """One PNG: each block ``[seeds, strengths, C, H, W]`` (``gankit edit``'s grid) under the
    other, its name at the left, the strengths over the columns."""
    from PIL import Image, ImageDraw

    from gankit.viz import _FONT, image_grid

    grids = [image_grid(b.flatten(0, 1), nrow=len(strengths),
                        columns=["0" if v == 0 else f"{v:+g}" for v in strengths] if i == 0 else None)
             for i, b in enumerate(blocks)]
    left, gap = 46, 4
    mode = grids[0].mode
    white = 255 if mode == "L" else (255,) * 3
    canvas = Image.new(mode, (left + grids[0].width, sum(g.height for g in grids) + gap * len(grids)), white)
    draw, y = ImageDraw.Draw(canvas), 0
    for g, text in zip(grids, labels):
        canvas.paste(g, (left, y))
        top = 16 if y == 0 else 0  # the first grid carries the strengths' header
        draw.text((left - 4, y + top + (g.height - top) / 2), text, fill=0 if mode == "L" else (0, 0, 0),
                  font=_FONT, anchor="rm")
        y += g.height + gap
    if mode == "RGB":  # 128 colours: a quarter of the bytes, no visible change at this size
        canvas = canvas.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    canvas.save(path, optimize=True)


@torch.no_grad()
def cmd_directions(args) -> dict:
    from gankit.api import load_run
    from gankit.use import directions as d

    run = load_run(args.run)
    h = run.generator()
    attrs = _attribute_judges(args.set, h.spec.out_shape)
    z = torch.cat([h.draw(1, s) for s in range(args.seeds)])  # seeds as gankit edit draws them
    strengths = d.parse_strengths(f"{-args.strength}:{args.strength}:7")
    found = {"sefa": d.sefa(h, args.k), "pca": d.pca(h, args.k, n=5000)}
    g = torch.Generator().manual_seed(0)
    rand = torch.nn.functional.normalize(torch.randn(args.k, z.shape[1], generator=g), dim=1)
    found["random"] = d.Directions("z", "random", [f"random{i}" for i in range(args.k)], rand,
                                   (d._samples(h, "z", 2000, 0) @ rand.t()).std(0), torch.zeros(args.k))
    out = {"set": args.set, "seeds": args.seeds, "strength": args.strength, "read": args.read, "methods": {}}
    for method, dirs in found.items():
        rows, blocks = {}, []
        for i, name in enumerate(dirs.names):
            v, scale = dirs.get(name)
            read = {f"{s:g}": _read_edit(h, z, v, scale, s, attrs) for s in args.read}
            last = read[f"{args.read[-1]:g}"]
            top = max(last, key=lambda a: last[a]["changed"])
            rows[name] = {"score": round(float(dirs.scores[i]), 4), "scale": round(scale, 3), "read": read, "top": top}
            if method == "pca":  # |cos| with the SeFa direction of the same rank
                rows[name]["abs_cos_sefa"] = round(abs(float(v @ found["sefa"].vectors[i])), 3)
            blocks.append(d.edit_grid(h, z[:args.grid_seeds], "z", None, v, scale, strengths))
        out["methods"][method] = rows
        if args.figures and method != "random":
            path = f"{args.figures}_{method}.png"
            _labelled_grid(blocks, dirs.names, strengths, path)
            out["methods"][method]["figure"] = path
    return out


# ---- truncation: FID / precision / recall over the threshold --------------------------------------
def _curves_png(rows: list[dict], real: dict, title: str, path: str) -> None:
    """Two small panels side by side (Pillow): FID, and precision and recall, over the
    threshold; the dashed lines are real vs real, the metrics' floor and ceiling."""
    from PIL import Image, ImageDraw

    from gankit.viz import _FONT

    ticks = ["none" if r["truncation"] is None else f"{r['truncation']:g}" for r in rows]
    w, h, left, top, bottom = 300, 220, 44, 44, 40
    image = Image.new("RGB", (2 * w, h), "white")
    draw = ImageDraw.Draw(image)

    def panel(ox: int, series: list[tuple[str, str, list[float], float]], hi: float, label: str) -> None:
        px = lambda i: ox + left + 8 + i * (w - left - 24) / max(1, len(rows) - 1)
        py = lambda v: top + (h - top - bottom) * (1 - v / hi)
        draw.rectangle((ox + left, top, ox + w - 8, h - bottom), outline=(150, 150, 150))
        draw.text((ox + 6, 6), label, fill="black", font=_FONT)
        for v in (0, hi / 2, hi):
            draw.text((ox + left - 4, py(v)), f"{v:.0f}" if hi >= 10 else f"{v:.2g}", fill="black",
                      font=_FONT, anchor="rm")
        for i, t in enumerate(ticks):
            draw.text((px(i), h - bottom + 4), t, fill="black", font=_FONT, anchor="mt")
        draw.text((ox + left + (w - left) / 2, h - 12), "z threshold", fill="black", font=_FONT, anchor="mm")
        for k, (name, colour, ys, ref) in enumerate(series):
            for x0 in range(int(px(0)), int(px(len(rows) - 1)), 8):  # real vs real, dashed
                draw.line((x0, py(ref), x0 + 4, py(ref)), fill=colour)
            draw.line([(px(i), py(v)) for i, v in enumerate(ys)], fill=colour, width=2)
            for i, v in enumerate(ys):
                draw.ellipse((px(i) - 3, py(v) - 3, px(i) + 3, py(v) + 3), fill=colour)
            draw.text((ox + w - 8 - 70 * k, 24), name, fill=colour, font=_FONT, anchor="ra")

    fid = [r["fid"] for r in rows]
    panel(0, [("FID", (200, 40, 40), fid, real["fid"])], max(fid) * 1.05, f"{title}: FID")
    panel(w, [("recall", (40, 150, 60), [r["recall"] for r in rows], real["recall"]),
              ("precision", (40, 90, 200), [r["precision"] for r in rows], real["precision"])], 1.0,
          "precision, recall (dashed: real vs real)")
    image.save(path, optimize=True)


def _judge_extractor(folder: str) -> str:
    """The face colour judge's pooled features (96-d, before its two heads) as a TorchScript
    extractor file in ``folder``: a cheap feature space for faces where Inception's 0.23 CPU s
    an image is not affordable (32-px faces only: the judge's own size, no resize traced)."""
    from pathlib import Path

    from gankit.use.judges import JUDGE_SIZE, load_face_judge

    net, _ = load_face_judge()
    path = Path(folder) / "face_judge_features.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.trace(net.body.eval(), torch.zeros(2, 3, JUDGE_SIZE, JUDGE_SIZE)).save(str(path))
    return str(path)


@torch.no_grad()
def cmd_truncation(args) -> dict:
    from gankit.api import load_run
    from gankit.metrics.compute import compute_metrics

    run = load_run(args.run)
    h = run.generator()
    names, b = ["fid", "pr"], 250
    extractor = _judge_extractor(args.cache_dir) if args.extractor == "face-judge" else args.extractor
    common = dict(extractor=extractor, cache_dir=args.cache_dir, real_n=args.n_real,
                  reference=run.reference(args.n_real))
    t = time.process_time()
    a, ref, n_a, _ = run.real_pair(args.n, args.n_real, b)
    floor = compute_metrics(names, a, ref, run.info, **common)  # real vs real: the metrics' floor
    rows = []
    for text in args.thresholds.split(","):
        thr = None if text == "none" else float(text)
        x = h.generate(args.n, args.seed, truncation=thr)
        s = compute_metrics(names, (x[i:i + b] for i in range(0, len(x), b)), run.real_batches(b, args.n_real),
                            run.info, **common)
        fid = next(k for k in s if k.startswith("fid"))
        rows.append({"truncation": thr, "fid": round(float(s[fid]), 2), "precision": round(float(s["precision"]), 3),
                     "recall": round(float(s["recall"]), 3)})
        print(json.dumps(rows[-1]), flush=True)
    fid = next(k for k in floor if k.startswith("fid"))
    real = {"n": n_a, "fid": round(float(floor[fid]), 2), "precision": round(float(floor["precision"]), 3),
            "recall": round(float(floor["recall"]), 3)}
    if args.figure:
        _curves_png(rows, real, args.title, args.figure)
    return {"metric": fid, "extractor": args.extractor, "n": args.n, "n_real": args.n_real,
            "real_vs_real": real, "rows": rows, "cpu_s": round(time.process_time() - t)}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("project")
    a.add_argument("--run", required=True)
    a.add_argument("--set", choices=["mnist", "faces"], required=True)
    a.add_argument("--n", type=int, default=20)
    a.add_argument("--steps", type=int, default=500)
    a.add_argument("--random", type=int, default=10_000)
    a.add_argument("--inception", action="store_true", help="also the Inception-feature distance")
    b = sub.add_parser("edit")
    b.add_argument("--run", required=True)
    b.add_argument("--judge", required=True)
    b.add_argument("--seeds", type=int, default=200)
    b.add_argument("--conditioned", action="store_true", help="hair: project out the eye-colour directions")
    c = sub.add_parser("time")
    c.add_argument("--steps", type=int, default=1000)
    e = sub.add_parser("directions")
    e.add_argument("--run", required=True)
    e.add_argument("--set", choices=["mnist", "faces"], required=True)
    e.add_argument("--k", type=int, default=5)
    e.add_argument("--seeds", type=int, default=200)
    e.add_argument("--strength", type=float, default=3.0, help="the grids' columns: -s..s in 7 steps")
    e.add_argument("--grid-seeds", type=int, default=3)
    e.add_argument("--read", type=lambda t: [float(v) for v in t.split(",")], default=[1.0, 3.0],
                   help="strengths s at which -s and +s are judged")
    e.add_argument("--figures", help="PREFIX: writes PREFIX_sefa.png and PREFIX_pca.png")
    f = sub.add_parser("truncation")
    f.add_argument("--run", required=True)
    f.add_argument("--n", type=int, default=2000, help="samples per threshold")
    f.add_argument("--n-real", type=int, default=2000)
    f.add_argument("--thresholds", default="0.25,0.5,1,1.5,2,none")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--cache-dir", required=True)
    f.add_argument("--extractor", default="auto", help="auto (the run's FID features), inception, digits, "
                   "or face-judge (the colour judge's pooled features, 32-px faces)")
    f.add_argument("--figure", help="a .png")
    f.add_argument("--title", default="")
    args = p.parse_args()
    print(json.dumps({"project": cmd_project, "edit": cmd_edit, "time": cmd_time, "directions": cmd_directions,
                      "truncation": cmd_truncation}[args.what](args)))


if __name__ == "__main__":
    main()
