"""``gankit train | sample | interpolate | eval | explain``: one command line for every model.

Errors caused by the user's input print one line (``error: ...``) and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from gankit.errors import GankitError, TrainingInterrupted

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_PRESET = "mnist_dcgan"  # the main job


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors follow the same one-line rule
        raise GankitError(f"{message} (see gankit {self.prog.split()[-1]} --help)")


def _split_preset(items: list[str]) -> tuple[str | None, list[str]]:
    preset = [i for i in items if "=" not in i]
    if len(preset) > 1:
        raise GankitError(f"give at most one preset; got {', '.join(preset)} (overrides look like key=value)")
    return (preset[0] if preset else None), [i for i in items if "=" in i]


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.config import config_from_dict, dump_yaml, load_config, set_key, parse_override, validate
    from gankit.training.checkpoint import load_checkpoint
    from gankit.training.trainer import Trainer, next_run_dir

    preset, overrides = _split_preset(args.items)
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.resume:
        if preset:
            raise GankitError("--resume takes its config from the run; drop the preset")
        run_dir = Path(args.resume)
        cfg = config_from_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"])
        for key, value in map(parse_override, overrides):
            set_key(cfg, key, value)
        validate(cfg)
    else:
        cfg = load_config(preset or DEFAULT_PRESET, overrides)
        run_dir = Path(args.out) if args.out else None
    if args.dry_run:
        print(dump_yaml(cfg), end="")
        return 0
    if run_dir is None:
        run_dir = next_run_dir(Path("runs"))
    trainer = Trainer(cfg, run_dir, resume=bool(args.resume))
    if trainer.main:
        print(f"run folder: {run_dir}", file=sys.stderr)
    trainer.fit()
    if trainer.main:
        print(f"done: {trainer.ckpt_path} (step {trainer.step}); samples in {run_dir / 'samples'}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.api import load_run

    run = load_run(args.run_dir)
    if args.n < 1:
        raise GankitError(f"--n must be at least 1, got {args.n}")
    c = run.model.parse_condition(args.cond, args.n) if args.cond is not None else None
    g = torch.Generator().manual_seed(args.seed)
    x = run.model.generate(args.n, generator=g, c=c, use_ema=not args.no_ema)
    written = run.model.write_samples(x, Path(args.out))
    print(f"wrote {written}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit.api import load_run
    from gankit.viz import save_grid

    run = load_run(args.run_dir)
    g = torch.Generator().manual_seed(args.seed)
    ends = [run.model.sample_inputs(args.rows, generator=g) for _ in range(2)]
    if "z" not in ends[0]:
        raise GankitError(f"model kind '{run.cfg.model.kind}' has no latent to interpolate")
    t = torch.linspace(0, 1, args.steps, device=ends[0]["z"].device)
    z0, z1 = ends[0]["z"], ends[1]["z"]
    # spherical interpolation keeps the latent's norm typical of N(0, I) all along the path
    rows = []
    for i in range(args.rows):
        a, b = z0[i], z1[i]
        omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1, 1))
        so = torch.sin(omega)
        path = torch.stack([((torch.sin((1 - s) * omega) * a + torch.sin(s * omega) * b) / so)
                            if so > 1e-6 else (1 - s) * a + s * b for s in t])
        rows.append(path)
    inputs = {k: v for k, v in ends[0].items() if k != "z"}
    z = torch.cat(rows)
    inputs = {k: v.repeat_interleave(args.steps, 0) for k, v in inputs.items()}
    inputs["z"] = z
    x = run.model.decode(inputs, use_ema=not args.no_ema).float().cpu()
    if x.dim() != 4:
        raise GankitError("interpolate draws image grids; this run's data are vectors (use gankit sample)")
    out = Path(args.out or Path(args.run_dir) / "interpolation.png")
    save_grid(x, out, nrow=args.steps)
    print(f"wrote {out}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from gankit.api import load_run

    run = load_run(args.run_dir)
    written = run.model.translate_path(Path(args.input), Path(args.out), direction=args.direction)
    print(f"wrote {written}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gankit.metrics.cli import run_eval

    return run_eval(args)


def cmd_explain(args: argparse.Namespace) -> int:
    from gankit.explain import TOPICS, explanation, run_topic

    if args.topic is None:
        for name in TOPICS:
            print(f"{name:30} {TOPICS.get(name).title}")
        print("\nrun one with: gankit explain TOPIC [--out DIR] [--quick]")
        return 0
    record = run_topic(args.topic, Path(args.out), "quick" if args.quick else "full", args.seed)
    print(explanation(args.topic, record))
    print(f"\nwrote {Path(args.out) / args.topic}.png and .json "
          f"({record['seconds']:.1f} s, {record['cpu_seconds']:.1f} CPU s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gankit", description="Train, sample and evaluate generative models.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model from a preset and key=value overrides")
    t.add_argument("items", nargs="*", metavar="[PRESET] [key=value ...]",
                   help="a preset (YAML file or built-in name) and dotted overrides")
    t.add_argument("--data", help="data source: image folder, .npy/.csv points or built-in name")
    t.add_argument("--out", help="run folder (default: a new numbered folder under runs/)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="write generated samples (one PNG per image)")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the live generator, not its EMA")
    s.add_argument("--cond", help="condition for conditional models: a class name, label or text")
    s.set_defaults(func=cmd_sample)

    tr = sub.add_parser("translate", help="translate images or sentences with a trained translation model")
    tr.add_argument("run_dir")
    tr.add_argument("--input", required=True, help="an input folder (images) or text file")
    tr.add_argument("--out", required=True, help="output folder or file")
    tr.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
    tr.set_defaults(func=cmd_translate)

    i = sub.add_parser("interpolate", help="a grid walking between latent points")
    i.add_argument("run_dir")
    i.add_argument("--out")
    i.add_argument("--rows", type=int, default=8)
    i.add_argument("--steps", type=int, default=10)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--no-ema", action="store_true")
    i.set_defaults(func=cmd_interpolate)

    e = sub.add_parser("eval", help="metrics of a run or of image folders")
    from gankit.metrics.cli import add_eval_arguments

    add_eval_arguments(e)
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("explain", help="a lecture claim shown by a small computed experiment")
    x.add_argument("topic", nargs="?", help="the topic; without one, list the topics")
    x.add_argument("--out", default="runs/explain", help="folder for TOPIC.png and TOPIC.json")
    x.add_argument("--quick", action="store_true", help="the small size the tests use (seconds)")
    x.add_argument("--seed", type=int, default=0)
    x.set_defaults(func=cmd_explain)
    return p


def main(argv: list[str] | None = None) -> int:
    from gankit.runtime import tune_allocator

    tune_allocator()  # before any data set is loaded: see gankit/runtime.py
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # key=value overrides may come after options (`train PRESET --out D k=v`)
        if args.command == "train":
            args.items += [e for e in extra if "=" in e and not e.startswith("-")]
            extra = [e for e in extra if not ("=" in e and not e.startswith("-"))]
        if extra:
            raise GankitError(f"unrecognized arguments: {' '.join(extra)} (see gankit {args.command} --help)")
        return args.func(args)
    except GankitError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
