"""The commands that use a trained generator: ``gankit project | directions | edit | mix``,
and the body of ``gankit interpolate``. Each meets the generator through
:class:`gankit.use.generator.GeneratorHandle`; what a net cannot do, it refuses in one line."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gankit.errors import GankitError, Unsupported


def _loaded(args: argparse.Namespace):
    """``(run, handle)``: the run folder's model and its generator (EMA unless --no-ema)."""
    from gankit.api import load_run

    run = load_run(args.run_dir)
    return run, run.generator(live=getattr(args, "no_ema", False))


def _condition_text(args: argparse.Namespace, handle) -> str | None:
    """``--label`` / ``--tags``: the condition, checked against what the generator takes."""
    label, tags = getattr(args, "label", None), getattr(args, "tags", None)
    kind = handle.conditioning.kind
    if label is not None and tags is not None:
        raise GankitError("give --label or --tags, not both")
    if label is not None and kind == "tags" or tags is not None and kind == "labels":
        raise GankitError(f"this generator is conditioned on {kind}; use --{'tags' if kind == 'tags' else 'label'}")
    text = label if label is not None else tags
    if kind in ("labels", "tags") and text is None:
        raise GankitError(f"this generator is conditioned on {kind}; give the images' "
                          f"--{'tags' if kind == 'tags' else 'label'}")
    return text


def cmd_project(args: argparse.Namespace) -> int:
    from gankit.use.project import ProjectionSettings, discriminator_features, project_files

    run, handle = _loaded(args)
    settings = ProjectionSettings(steps=args.steps, lr=args.lr, space=args.space,
                                  perceptual=args.perceptual, optimise_noise=not args.fixed_noise)
    features = discriminator_features(run.model.D) if args.perceptual > 0 and hasattr(run.model, "D") else None
    summary = project_files(handle, Path(args.images), Path(args.out), _condition_text(args, handle),
                            settings, features, args.seed, args.batch)
    if summary:
        mean = sum(v["psnr"] for v in summary.values()) / len(summary)
        print(f"wrote {len(summary)} projections to {args.out} (mean PSNR {mean:.2f} dB)")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    """``gankit interpolate``: a grid or (``--gif``) an animation between seeded latents."""
    from gankit.api import load_run
    from gankit.use.animate import interpolate

    run = load_run(args.run_dir)
    steps = args.frames if args.frames is not None else args.steps
    default = "interpolation.gif" if args.gif else "interpolation.png"
    out = Path(args.out or Path(args.run_dir) / default)
    try:
        handle = run.generator(live=args.no_ema)
    except Unsupported as refusal:
        if args.gif or args.truncation is not None:
            raise
        return _interpolate_decoded(run, args, out, refusal)  # VAE, flow, GLO: their own latent
    print(f"wrote {interpolate(handle, out, args.rows, steps, args.seed, args.truncation, args.gif)}")
    return 0


def _interpolate_decoded(run, args: argparse.Namespace, out: Path, refusal: Unsupported) -> int:
    """The grid for models with a latent but no latent generator (VAE, flow, GLO): slerp
    between their own sample inputs, decoded by the model; ``refusal`` where there is none."""
    from gankit.use.animate import slerp
    from gankit.viz import save_grid

    g = torch.Generator().manual_seed(args.seed)
    ends = [run.model.sample_inputs(args.rows, generator=g) for _ in range(2)]
    if "z" not in ends[0]:
        raise refusal
    z = slerp(ends[0]["z"], ends[1]["z"], torch.linspace(0, 1, args.steps, device=ends[0]["z"].device))
    inputs = {k: v.repeat_interleave(args.steps, 0) for k, v in ends[0].items() if k != "z"}
    inputs["z"] = z.reshape(args.rows * args.steps, -1)
    x = run.model.decode(inputs, use_ema=not args.no_ema).float().cpu()
    if x.dim() != 4:
        raise GankitError("interpolate draws image grids; this run's data are vectors (use gankit sample)")
    save_grid(x, out, nrow=args.steps)
    print(f"wrote {out}")
    return 0


def _add_condition(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", help="conditional nets on labels: the class name or number")
    p.add_argument("--tags", help="conditional nets on tags: the tag words")


def add_parsers(sub) -> None:
    """Register project, directions, edit and mix on the ``gankit`` subcommand parser."""
    p = sub.add_parser("project", help="find the latents that reproduce images (z, w or w+)")
    p.add_argument("run_dir")
    p.add_argument("images", help="an image or a folder of images")
    p.add_argument("--out", required=True, help="folder for NAME.npy latents, NAME.png, NAME_steps.png")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--space", default="auto", choices=["auto", "z", "w", "w+"],
                   help="auto: w+ for nets with a mapping net, else z")
    p.add_argument("--perceptual", type=float, default=0.1,
                   help="weight of the distance in the run's discriminator features (0: pixels only)")
    p.add_argument("--fixed-noise", action="store_true", help="keep the net's noise maps (do not optimise them)")
    p.add_argument("--batch", type=int, default=8, help="images projected together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="the live generator, not its EMA")
    _add_condition(p)
    p.set_defaults(func=cmd_project)
