"""``gankit train | sample | interpolate | translate | eval | explain | report | runs | presets |
sweep | tune``: one command line for every model.

Errors caused by the user's input print one line (``error: ...``) and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gankit.runtime import passive_openmp

passive_openmp()  # before torch loads its OpenMP runtime, which reads the setting once

import torch  # noqa: E402

from gankit.errors import GankitError, TrainingInterrupted  # noqa: E402
from gankit.use.cli import TRUNCATION_HELP  # noqa: E402

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; a SIGTERM stop exits 128 + 15
DEFAULT_PRESET = "mnist_dcgan"  # the main job


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors follow the same one-line rule
        raise GankitError(f"{message} (see {self.prog} --help)")


def _split_preset(items: list[str]) -> tuple[str | None, list[str]]:
    preset = [i for i in items if "=" not in i]
    if len(preset) > 1:
        raise GankitError(f"give at most one preset; got {', '.join(preset)} (overrides look like key=value)")
    return (preset[0] if preset else None), [i for i in items if "=" in i]


def cmd_train(args: argparse.Namespace) -> int:
    from gankit.config import (check_resume_override, config_from_dict, dump_yaml, load_config,
                               parse_override, set_key, validate)
    from gankit.training.checkpoint import resume_point
    from gankit.training.trainer import Trainer, check_config, next_run_dir, precision_line

    preset, overrides = _split_preset(args.items)
    resume = bool(args.resume)  # from a checkpoint
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.resume:
        if preset:
            raise GankitError("--resume takes its config from the run; drop the preset")
        run_dir = Path(args.resume)
        ckpt, stored = resume_point(run_dir)
        if ckpt is None:
            resume = False
            print(f"note: '{run_dir}' stopped before its first checkpoint: training it from step 0 "
                  "with its stored config.yaml", file=sys.stderr)
            ckpt = {"step": 0, "config": stored}
        cfg = config_from_dict(stored)
        for key, value in map(parse_override, overrides):
            check_resume_override(key)
            set_key(cfg, key, value)
        validate(cfg)
        old_steps = ckpt["config"]["train"]["steps"]
        if cfg.train.steps != old_steps and cfg.optim.decay_start < 1:
            print(f"note: optim.decay_start={cfg.optim.decay_start:g} spreads the learning-rate "
                  f"decay over train.steps, so the rates from here on follow {cfg.train.steps} "
                  f"steps, not {old_steps}", file=sys.stderr)
        if ckpt["step"] >= cfg.train.steps:
            raise GankitError(f"'{run_dir}' is finished (step {ckpt['step']} of train.steps="
                              f"{cfg.train.steps}); continue it with: gankit train --resume "
                              f"{run_dir} train.steps=N (N > {ckpt['step']})")
    else:
        cfg = load_config(preset or DEFAULT_PRESET, overrides)
        run_dir = Path(args.out) if args.out else None
    if args.dry_run:
        check_config(cfg)
        print(dump_yaml(cfg) + f"# {precision_line(cfg)}")  # a comment: the output stays YAML
        return 0
    if run_dir is None:
        run_dir = next_run_dir(Path("runs"))
    trainer = Trainer(cfg, run_dir, resume=resume)
    if trainer.main:
        print(f"run folder: {run_dir}; {precision_line(cfg)}", file=sys.stderr)
    trainer.fit()
    if trainer.main:
        skipped = len(getattr(trainer.source, "bad_files", ()))  # data.on_bad=skip
        note = f"; {skipped} unreadable image(s) skipped" if skipped else ""
        print(f"done: {trainer.ckpt_path} (step {trainer.step}); samples in {run_dir / 'samples'}{note}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.api import load_run

    run = load_run(args.run_dir)
    if args.n < 1:
        raise GankitError(f"--n must be at least 1, got {args.n}")
    c = run.model.parse_condition(args.cond, args.n) if args.cond is not None else None
    if args.truncation is not None:  # every latent generator truncates alike (gankit.use)
        x = run.generator(live=args.no_ema).generate(args.n, args.seed, c, args.truncation)
    else:
        x = run.model.generate(args.n, generator=torch.Generator().manual_seed(args.seed), c=c,
                               use_ema=not args.no_ema)
    if args.grid or args.scale != 1:
        from gankit.viz import write_sample_grid

        written = write_sample_grid(x, run.model, Path(args.out), args.scale, same_condition=c is not None)
    else:
        written = run.model.write_samples(x, Path(args.out))
    print(f"wrote {written}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from gankit.use.cli import run_interpolate

    return run_interpolate(args)


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


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.viz.report import write_report

    print(f"wrote {write_report(args.runs, args.out, args.title, args.max_pictures, args.thumb)}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from gankit.viz.runs import format_runs_table

    print(format_runs_table(args.dir))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from gankit.viz.presets import presets_table

    print(presets_table(args.time, args.names))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from gankit.viz.sweep import run_sweep

    out = Path(args.out or Path("runs") / f"sweep_{args.preset}")
    return run_sweep(args.preset, args.items, args.seeds, args.jobs, out, args.first_seed)


def cmd_tune(args: argparse.Namespace) -> int:
    from gankit.viz.tune import run_tune

    out = Path(args.out or Path("runs") / f"tune_{args.study}")
    return run_tune(args.preset, args.items, args.param, args.metric, args.trials, args.storage,
                    args.study, out, args.direction)


def _add_view_commands(sub) -> None:
    """report, runs, presets, sweep, tune (gankit.viz)."""
    r = sub.add_parser("report", help="one self-contained HTML page for a run or a comparison")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR")
    r.add_argument("--out", default="report.html", help="the HTML file (default report.html)")
    r.add_argument("--title", default="")
    r.add_argument("--max-pictures", type=int, default=6, help="sample grids shown per run")
    r.add_argument("--thumb", type=int, default=0, help="shrink pictures to this width (0: full size)")
    r.set_defaults(func=cmd_report)
    ls = sub.add_parser("runs", help="list run folders: steps done, state, last metrics")
    ls.add_argument("dir", nargs="?", default="runs")
    ls.set_defaults(func=cmd_runs)
    ps = sub.add_parser("presets", help="list the built-in presets")
    ps.add_argument("names", nargs="*", help="only these presets")
    ps.add_argument("--time", action="store_true", help="estimate each run's time from a warm rate (~3 s each)")
    ps.set_defaults(func=cmd_presets)
    sw = sub.add_parser("sweep", help="train a grid of settings x seeds; mean +- std and a report")
    sw.add_argument("preset")
    sw.add_argument("items", nargs="*", metavar="key=a,b,c")
    sw.add_argument("--seeds", type=int, default=3)
    sw.add_argument("--first-seed", type=int, default=0)
    sw.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    sw.add_argument("--out", help="sweep folder (default runs/sweep_PRESET)")
    sw.set_defaults(func=cmd_sweep)
    tu = sub.add_parser("tune", help="search settings with Optuna (pip install optuna)")
    tu.add_argument("preset")
    tu.add_argument("items", nargs="*", metavar="key=value", help="fixed overrides")
    tu.add_argument("--param", action="append", default=[], metavar="key=float|log|int:LO:HI or key=choice:a,b")
    tu.add_argument("--metric", required=True, help="final metric to optimise, e.g. high_quality")
    tu.add_argument("--direction", default="auto", choices=["auto", "maximize", "minimize"])
    tu.add_argument("--trials", type=int, default=20, help="finished trials in the study, all workers together")
    tu.add_argument("--storage", help="Optuna RDB URL shared by workers, e.g. sqlite:///tune.db")
    tu.add_argument("--study", default="gankit")
    tu.add_argument("--out", help="trial folders (default runs/tune_STUDY)")
    tu.set_defaults(func=cmd_tune)


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    p = _Parser(prog="gankit", description="Train, sample, evaluate and compare generative models.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model from a preset and key=value overrides")
    t.add_argument("items", nargs="*", metavar="[PRESET] [key=value ...]",
                   help="a preset (YAML file or built-in name) and dotted overrides")
    t.add_argument("--data", help="data source: image folder, packed .zip, .npy/.csv points or built-in name")
    t.add_argument("--out", help="run folder (default: a new numbered folder under runs/)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    t.add_argument("--dry-run", action="store_true", help="check the config fully (data and "
                   "model are built, nothing is written), print it and exit")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="write generated samples (one PNG per image, or --grid)")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the live generator, not its EMA")
    s.add_argument("--cond", help="condition for conditional models: a class name, label or text")
    s.add_argument("--truncation", type=float, metavar="T", help=TRUNCATION_HELP)
    s.add_argument("--grid", action="store_true", help="one PNG grid (OUT.png, or OUT/grid.png)")
    s.add_argument("--scale", type=int, default=1, help="grid pixels drawn K x K (implies --grid)")
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
    i.add_argument("--truncation", type=float, metavar="T", help=TRUNCATION_HELP)
    i.add_argument("--gif", action="store_true", help="an animated GIF (OUT, default RUN/interpolation.gif)")
    i.add_argument("--frames", type=int, help="frames of the GIF (steps of the grid); default --steps")
    i.set_defaults(func=cmd_interpolate)
    from gankit.use.cli import add_parsers

    add_parsers(sub)

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
    _add_view_commands(sub)
    from gankit.data.pack import add_parsers as add_data_parsers

    add_data_parsers(sub)  # gankit data pack
    from gankit.export import add_parsers as add_export_parsers

    add_export_parsers(sub)  # gankit export
    from gankit.studio.cli import add_parsers as add_studio  # gankit studio

    add_studio(sub)
    return p


def _drop_stdout() -> None:
    """Point stdout at /dev/null: its closed pipe would fail again when Python flushes it."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):  # capsys and the like have no descriptor
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    from gankit.runtime import tune_allocator

    tune_allocator()  # before any data set is loaded: see gankit/runtime.py
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # key=value overrides may come after options (`train PRESET --out D k=v`)
        if args.command in ("train", "sweep", "tune"):
            args.items += [e for e in extra if "=" in e and not e.startswith("-")]
            extra = [e for e in extra if not ("=" in e and not e.startswith("-"))]
        if extra:
            raise GankitError(f"unrecognized arguments: {' '.join(extra)} (see gankit {args.command} --help)")
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, not in Python's exit
        return code
    except BrokenPipeError:  # `gankit presets | head`: stop quietly, as Unix tools do
        _drop_stdout()
        return 128 + 13  # the shell's code for SIGPIPE
    except GankitError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 128 + getattr(e, "signal", 2)  # the shell's convention: 143 after SIGTERM
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
