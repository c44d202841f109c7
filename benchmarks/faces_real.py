"""Faces on real data: presets trained on a folder of real anime face crops under a CPU budget.

The folder (e.g. the ~33k 96-px crops of a public course data set, fetched for the benchmark
and never committed) is split once, by a seeded shuffle, into 1,000 held-out faces (A), 1,000
more (B, for the real-vs-real floor) and the rest for training; the split is made of symbolic
links under ``--root``. Each row trains one preset (plus overrides) for ``--cpu-min`` CPU
minutes on one thread (Ctrl-C at the budget, which saves a checkpoint), draws ``--n`` samples of
the EMA generator and scores them with Inception FID against A's statistics; B against A is the
floor of FID at that n.

    python benchmarks/faces_real.py --data /path/to/faces --size 32 --seeds 0,1,2 --cpu-min 30 \\
        --rows "dcgan=faces32_dcgan"
    python benchmarks/faces_real.py --data /path/to/faces --size 32 --seeds 0 --cpu-min 8 \\
        --rows "w32=faces32_dcgan;w64=faces32_dcgan G.width=64 D.width=64" --no-write

``--snapshots 10`` also scores each run's last checkpoint before 10 CPU minutes (two budgets
from one run); ``--extend 30`` then resumes finished runs to 30 CPU minutes in all and scores
them again; ``--figure F.png`` draws 16 samples of each row's first seed.

A row is ``name=PRESET [key=value ...]``; rows are separated by ``;``. Finished runs leave
``result.json`` and are not trained again, so several processes can share one ``--root``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

from report import BENCHMARKS_MD, mean_std, run_gankit, sample_sheet, train_for_cpu, write_section

SECTION = "## Faces on real data"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def gankit(*args: str) -> str:
    return run_gankit(*args, env=ENV)


def split(data: Path, root: Path, n_held: int) -> dict[str, Path]:
    """Links to ``data``'s images in train/heldA/heldB under ``root/split`` (seeded, made once)."""
    parts = {name: root / "split" / name for name in ("heldA", "heldB", "train")}
    if all(p.is_dir() for p in parts.values()):
        return parts
    files = sorted((p for p in data.rglob("*") if p.suffix.lower() in IMAGE_EXT), key=_natural)
    random.Random(0).shuffle(files)
    chosen = {"heldA": files[:n_held], "heldB": files[n_held:2 * n_held], "train": files[2 * n_held:]}
    for name, group in chosen.items():
        parts[name].mkdir(parents=True, exist_ok=True)
        for f in group:
            (parts[name] / "_".join(f.relative_to(data).parts)).symlink_to(f.resolve())
    return parts


def _natural(path: Path) -> tuple:
    """Sort key: numbered files in numeric order (2.jpg before 10.jpg)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", str(path)) if t)


def train(run: Path, preset: str, overrides: list[str], data: Path, seed: int,
          cpu_min: float, snapshots: list[float], snap_every: int) -> tuple[int, float]:
    """Train until ``cpu_min`` CPU minutes are spent; (steps reached, CPU minutes used).
    At each earlier budget in ``snapshots`` the latest checkpoint (written every ``snap_every``
    steps, so at most that many steps before the budget) is kept as run ``RUN@<min>m``."""
    cmd = [sys.executable, "-m", "gankit.cli", "train", preset, "--data", str(data), "--out",
           str(run), f"train.seed={seed}", "train.steps=1000000", "train.progress=false",
           "train.sample_every=0", f"train.ckpt_every={snap_every if snapshots else 0}",
           "train.threads=1", "data.workers=0", "eval.metrics=[]", "eval.best=", *overrides]

    def keep(minutes: float) -> Callable[[float], None]:
        def copy(used: float) -> None:
            dst = snapshot_dir(run, minutes) / "checkpoints"
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / "checkpoints" / "last.pt", dst / "last.pt")
            (dst.parent / "cpu_min.json").write_text(json.dumps(used))
        return copy

    return train_for_cpu(cmd, run, cpu_min, ENV, {m: keep(m) for m in snapshots})


def snapshot_dir(run: Path, minutes: float) -> Path:
    return run.parent / f"{run.name}@{minutes:g}m"


def fid_vs(folder: Path, stats: Path, size: int, out: Path) -> float:
    text = gankit("eval", str(folder), "--stats", str(stats), "--metrics", "fid",
                  "--image-size", str(size), "--extractor", "inception", "--batch-size", "25",
                  "--workers", "0", "--out", str(out))
    return float(re.search(r"^fid\s+(\S+)", text, re.M).group(1))


def real_stats(parts: dict[str, Path], size: int, root: Path) -> tuple[Path, float]:
    """Inception statistics of held-out set A at ``size``, and FID of set B against them."""
    stats = root / f"heldA_{size}.npz"
    floor_file = root / f"floor_{size}.json"
    if not stats.is_file():
        gankit("eval", str(parts["heldA"]), "--save-stats", str(stats), "--image-size", str(size),
               "--extractor", "inception", "--batch-size", "25", "--workers", "0",
               "--out", str(root / "eval"))
    if not floor_file.is_file():
        floor_file.write_text(json.dumps(fid_vs(parts["heldB"], stats, size, root / "eval")))
    return stats, json.loads(floor_file.read_text())


def run_one(run: Path, row: list[str], seed: int, a, parts, stats: Path) -> dict:
    done = run / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    snaps = [m for m in a.snapshots if m < a.cpu_min]
    steps, used = train(run, row[0], row[1:], parts["train"], seed, a.cpu_min, snaps, a.snap_every)
    result = {"fid": sample_fid(run, stats, a), "steps": steps, "cpu_min": used, "snapshots": {}}
    for m in snaps:
        snap = snapshot_dir(run, m)
        result["snapshots"][f"{m:g}"] = {"fid": sample_fid(snap, stats, a), "steps": _step(snap),
                                         "cpu_min": json.loads((snap / "cpu_min.json").read_text())}
    done.write_text(json.dumps(result))
    print(f"{run.name}: {steps} steps, {used:.1f} CPU min, FID {result['fid']:.2f}", flush=True)
    return result


def sample_fid(run: Path, stats: Path, a, tag: str = "") -> float:
    gankit("sample", str(run), "--n", str(a.n), "--out", str(run / f"samples{tag}"))
    return fid_vs(run / f"samples{tag}", stats, a.size, run / f"eval{tag}")


def extend(run: Path, result: dict, total_min: float, stats: Path, a) -> dict:
    """Resume a finished run (exactly: the trainer restores every state) until it has used
    ``total_min`` CPU minutes in all, and score it there; kept in ``result@<total>m.json``."""
    done = run / f"result@{total_min:g}m.json"
    if done.is_file():
        return json.loads(done.read_text())
    cmd = [sys.executable, "-m", "gankit.cli", "train", "--resume", str(run)]
    steps, used = train_for_cpu(cmd, run, total_min - result["cpu_min"], ENV)
    out = {"fid": sample_fid(run, stats, a, f"@{total_min:g}m"), "steps": steps,
           "cpu_min": result["cpu_min"] + used}
    done.write_text(json.dumps(out))
    print(f"{run.name} extended: {steps} steps, {out['cpu_min']:.1f} CPU min, FID {out['fid']:.2f}",
          flush=True)
    return out


def _step(run: Path) -> int:
    import torch

    return int(torch.load(run / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")["step"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of real face crops")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--rows", required=True, help="name=PRESET [key=value ...]; rows split by ';'")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--cpu-min", type=float, default=30.0)
    p.add_argument("--snapshots", default="", help="earlier CPU budgets (minutes) also scored, e.g. 10")
    p.add_argument("--snap-every", type=int, default=250, help="checkpoint interval (steps) for snapshots")
    p.add_argument("--extend", type=float, default=0.0,
                   help="then resume each run to this many CPU minutes in all and score it again")
    p.add_argument("--figure", default="", help="write 16 samples of each row's first seed here (PNG)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--root", default="runs/bench_faces_real")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    a.snapshots = [float(m) for m in a.snapshots.split(",") if m.strip()]
    root = Path(a.root)
    parts = split(Path(a.data), root, a.n)
    stats, floor = real_stats(parts, a.size, root)
    print(f"real vs real at {a.size} px, n={a.n}: FID {floor:.2f}", flush=True)
    rows = [r.strip() for r in a.rows.split(";") if r.strip()]
    table = []
    for row in rows:
        name, spec = row.split("=", 1)
        results = []
        for seed in map(int, a.seeds.split(",")):
            run = root / f"{name}-{a.size}-s{seed}-{a.cpu_min:g}m"
            results.append(run_one(run, spec.split(), seed, a, parts, stats))
            if a.extend:
                results[-1]["extended"] = extend(run, results[-1], a.extend, stats, a)
        table.append((name, spec, results))
    if a.figure:  # seed 0 of each row, at the row's last budget
        first = int(a.seeds.split(",")[0])
        folders = [root / f"{name}-{a.size}-s{first}-{a.cpu_min:g}m" / (f"samples@{a.extend:g}m" if a.extend else "samples")
                   for name, _, _ in table]
        # generated samples only: the real faces carry no licence and stay out of the repository
        sample_sheet(folders, Path(a.figure))
    text = _table(table, floor, a)
    print(text)
    if not a.no_write:
        write_section(BENCHMARKS_MD, f"{SECTION}\n\n{text}")


def _table(rows, floor: float, a) -> str:
    snaps = [f"{m:g}" for m in a.snapshots if m < a.cpu_min]
    head = (f"{a.size} px, {a.cpu_min:g} CPU minutes per run (one thread), FID of {a.n} EMA "
            f"samples vs {a.n} held-out real faces (Inception); real vs real at the same n: "
            f"{floor:.2f}; seeds {a.seeds}."
            + (f" The columns at {', '.join(snaps)} CPU minutes score the last checkpoint "
               f"before that budget (at most {a.snap_every} steps earlier) of the same runs."
               if snaps else "") + "\n\n"
            "| row | preset and overrides | " + "".join(f"FID at {m} min | " for m in snaps)
            + f"FID at {a.cpu_min:g} min (mean ± std) | per seed | steps per seed |"
            + (f" FID at {a.extend:g} min (resumed) | per seed | steps per seed |" if a.extend else "")
            + "\n| --- | --- | " + "--- | " * (len(snaps) + 3 + 3 * bool(a.extend)) + "\n")
    lines = []
    for name, spec, res in rows:
        early = "".join(f"{mean_std([r['snapshots'][m]['fid'] for r in res])} | " for m in snaps)
        lines.append(f"| {name} | `{spec}` | {early}{mean_std([r['fid'] for r in res])} | "
                     f"{', '.join(format(r['fid'], '.1f') for r in res)} | "
                     f"{', '.join(str(r['steps']) for r in res)} |" + (_cells([r["extended"] for r in res])
                                                                      if a.extend else ""))
    return head + "\n".join(lines) + "\n"


def _cells(res: list[dict]) -> str:
    return (f" {mean_std([r['fid'] for r in res])} | {', '.join(format(r['fid'], '.1f') for r in res)} | "
            f"{', '.join(str(r['steps']) for r in res)} |")


if __name__ == "__main__":
    main()
