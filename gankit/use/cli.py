"""The commands that use a trained generator: ``gankit project | directions | edit | mix``,
and the body of ``gankit interpolate``. Each meets the generator through
:class:`gankit.use.generator.GeneratorHandle`; what a net cannot do, it refuses in one line."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gankit.errors import GankitError, Unsupported


def _handle(args: argparse.Namespace):
    from gankit.api import load_generator

    return load_generator(args.run_dir, live=getattr(args, "no_ema", False))


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


def add_parsers(sub) -> None:
    """Register project, directions, edit and mix on the ``gankit`` subcommand parser."""
