"""Small-data faces: DCGAN, ResNet-SN and StyleGAN2-style nets, each without augmentation,
with DiffAugment and with ADA, trained on the first 500 built-in faces at 32 px.

Every run is one ``gankit train faces32`` process on one thread, stopped (Ctrl-C, which
saves a checkpoint) once its user + system CPU time reaches ``--cpu-min``: the same CPU
budget per row. Then ``--n`` samples of the EMA generator are compared by Inception FID with
``--n`` held-out real faces (faces 500 ..), and a second set of real faces (faces 20,000 ..)
gives real-vs-real FID at the same n: the floor of FID at that n. The held-out faces are
rendered as the training faces are (drawn at 64 px, resized to 32 by the data pipeline), so
FID carries no rendering offset. AFD (at its protocol size) is measured on the samples and on
the held-out faces (``afd_real``, its ceiling).

    python benchmarks/faces.py                                   # 3 nets x 3 augmentations x 3 seeds
    python benchmarks/faces.py --nets stylegan2 --seeds 0 --cpu-min 4 --n 250 --no-write

Each finished run leaves ``result.json`` in its folder and is not trained again, so several
processes may share one ``--root`` (e.g. one per net, with ``--no-write``) and a last call with
the whole grid collects their results into the table and the figure of samples (16 EMA samples
of seed 0 per row, under a row of held-out real faces).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from PIL import Image
from report import BENCHMARKS_MD, mean_std, run_gankit, sample_sheet, train_for_cpu, write_section

SECTION = "## Faces"
FIGURE = BENCHMARKS_MD.parent / "benchmarks" / "figures" / "faces.png"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# net -> overrides of the faces32 preset (a StyleGAN2 set-up) that make the other nets
NETS = {
    "dcgan": ["G.name=dcgan", "D.name=dcgan", "G.width=32", "D.width=32", "G.norm=batch",
              "D.spectral_norm=true", "loss.penalty=none", "model.style_mixing=0",
              "model.reg_every=1", "optim.lr_g=0.0002", "optim.lr_d=0.0002", "optim.beta1=0.5",
              "optim.beta2=0.999"],
    "resnet-sn": ["G.name=resnet", "D.name=resnet", "G.width=32", "D.width=32", "G.norm=batch",
                  "D.spectral_norm=true", "loss.name=hinge", "loss.penalty=none",
                  "model.style_mixing=0", "model.reg_every=1", "optim.lr_g=0.0002",
                  "optim.lr_d=0.0002", "optim.beta1=0.0", "optim.beta2=0.9"],
    "stylegan2": [],
}
AUGMENTS = ["none", "diffaugment", "ada-lite"]


def gankit(*args: str) -> str:
    return run_gankit(*args, env=ENV)


def train(run_dir: Path, net: str, augment: str, seed: int, cpu_min: float) -> tuple[int, float]:
    """Train until ``cpu_min`` CPU minutes are spent; (steps reached, CPU minutes)."""
    cmd = [sys.executable, "-m", "gankit.cli", "train", "faces32", "--out", str(run_dir),
           "data.source=faces500", f"train.seed={seed}", f"train.augment={augment}",
           "train.steps=1000000", "train.progress=false", "train.sample_every=0",
           "train.ckpt_every=0", *NETS[net]]
    return train_for_cpu(cmd, run_dir, cpu_min, ENV)


def scores(fake: Path, real: Path, cache: Path) -> dict[str, float]:
    """FID, AFD of ``fake`` and AFD of ``real`` (the ceiling), from one ``gankit eval``."""
    out = gankit("eval", str(fake), str(real), "--metrics", "fid,afd", "--cache-dir", str(cache),
                 "--batch-size", "50", "--workers", "0", "--out", str(fake.parent / "eval"))
    return {k: float(re.search(rf"^{k}\s+(\S+)", out, re.M).group(1)) for k in ("fid", "afd", "afd_real")}


def real_folder(root: Path, name: str, n: int, start: int, size: int = 32) -> Path:
    """Faces ``start ..`` rendered exactly as training sees them: drawn at 64 px, then resized
    by the data pipeline (:func:`gankit.data.sources.convert_images`), written as PNGs."""
    folder = root / name
    if not folder.is_dir():
        import torch
        from gankit.data.faces import FACES_SEED, draw_faces
        from gankit.data.folders import to_uint8
        from gankit.data.sources import convert_images

        pixels, _ = draw_faces(n, FACES_SEED, start=start)
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        folder.mkdir(parents=True)
        for k, img in enumerate(to_uint8(convert_images(x, size, 3))):
            Image.fromarray(img).save(folder / f"{start + k:06d}.png")
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--augments", default=",".join(AUGMENTS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--cpu-min", type=float, default=20.0, help="CPU minutes per training run")
    p.add_argument("--n", type=int, default=1000, help="samples and real faces for FID")
    p.add_argument("--root", default="runs/bench_faces")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    root = Path(a.root)
    cache = root / "cache"
    real = real_folder(root, f"real_{a.n}", a.n, 500)
    ref = scores(real_folder(root, f"real2_{a.n}", a.n, 20_000), real, cache)
    floor, ceiling = ref["fid"], ref["afd_real"]
    print(f"real vs real: FID {floor:.2f}; afd_real {ceiling:.3f}", flush=True)
    rows = []
    for net in a.nets.split(","):
        for augment in a.augments.split(","):
            results = [run_one(root / f"{net}-{augment}-s{seed}", net, augment, seed, a, real, cache)
                       for seed in map(int, a.seeds.split(","))]
            rows.append((net, augment, [r["fid"] for r in results], [r["steps"] for r in results],
                         [r.get("afd", float("nan")) for r in results]))
    table = _table(rows, floor, ceiling, a)
    print(table)
    if not a.no_write:
        seed0 = a.seeds.split(",")[0]
        save_figure([root / f"{net}-{augment}-s{seed0}" for net, augment, *_ in rows],
                    root / f"real_{a.n}")
        write_section(BENCHMARKS_MD, f"{SECTION}\n\n{table}\nSamples, one row per table row in "
                      f"its order (seed {seed0}), under a first row of held-out real faces: "
                      f"![faces](benchmarks/figures/{FIGURE.name})\n")


def run_one(run: Path, net: str, augment: str, seed: int, a, real: Path, cache: Path) -> dict:
    """Train, sample and score one run, or read its ``result.json`` from an earlier call."""
    done = run / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    step, used = train(run, net, augment, seed, a.cpu_min)
    gankit("sample", str(run), "--n", str(a.n), "--out", str(run / "samples"))
    result = {**scores(run / "samples", real, cache), "steps": step, "cpu_min": used}
    done.write_text(json.dumps(result))
    print(f"{net} {augment} seed {seed}: {step} steps, {used:.1f} CPU min, FID {result['fid']:.2f}",
          flush=True)
    return result


def save_figure(runs: list[Path], real: Path, per_row: int = 16) -> None:
    """One row of ``per_row`` images per run folder's samples, under a row of real faces."""
    sample_sheet([real, *(run / "samples" for run in runs)], FIGURE, per_row)


def _table(rows, floor: float, ceiling: float, a) -> str:
    head = (f"500 training faces (faces500) at 32 px, `faces32` preset per net, {a.cpu_min:g} CPU "
            f"minutes per run (one thread), FID of {a.n} EMA samples vs {a.n} held-out faces "
            f"(Inception), seeds {a.seeds}. Real vs real at the same n: {floor:.2f}. AFD (the share of "
            f"samples with a detected face, each resized to the detector's protocol size) beside "
            f"its ceiling afd_real = {ceiling:.3f}, measured on the held-out faces.\n\n"
            f"    python benchmarks/faces.py --nets {a.nets} --augments {a.augments} --seeds {a.seeds} "
            f"--cpu-min {a.cpu_min:g} --n {a.n}\n\n"
            "| net | augment | FID (mean ± std) | FID per seed | AFD (mean ± std) | steps reached per seed |\n"
            "| --- | --- | --- | --- | --- | --- |\n")
    lines = []
    for net, augment, fids, steps, afds in rows:
        lines.append(f"| {net} | {augment} | {mean_std(fids)} | "
                     f"{', '.join(f'{f:.1f}' for f in fids)} | {mean_std(afds, '.2f')} | "
                     f"{', '.join(map(str, steps))} |")
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
