"""The commands that use a trained generator: ``gankit project | directions | edit | mix``,
and the body of ``gankit interpolate``. Each meets the generator through
:class:`gankit.use.generator.GeneratorHandle`; what a net cannot do, it refuses in one line."""
from __future__ import annotations

import argparse
import re
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


def cmd_directions(args: argparse.Namespace) -> int:
    from gankit.use import directions as d

    _, handle = _loaded(args)
    if args.method == "sefa":
        found = d.sefa(handle, args.k, seed=args.seed)
    elif args.method == "pca":
        found = d.pca(handle, args.k, args.samples, args.seed)
    else:
        judge, names, notes = _judge(args.judge, handle)
        found = d.labels(handle, judge, names, args.samples, args.seed)
        found.meta.update(notes, judge=args.judge)
    found.meta["generator"] = handle.describe()
    path = found.save(Path(args.out))
    shown = ", ".join(f"{n} ({float(sc):.3g})" for n, sc in zip(found.names[:10], found.scores[:10]))
    print(f"wrote {len(found.names)} {found.method} directions in {found.space} to {path}: {shown}")
    return 0


def _judge(name: str, handle):
    """``(judge or None, class names, notes)``; ``auto``: the conditions of a conditional
    mapping net, the digit classifier for 28x28 digits, else an error naming the choices."""
    from gankit.use.judges import build_judge

    cond = handle.conditioning
    if name == "auto":
        if cond.kind != "none" and handle.has_mapping:
            name = "condition"
        elif tuple(handle.spec.out_shape) == (1, 28, 28):
            name = "digits"
        else:
            raise GankitError("--method labels needs --judge: digits, hair, eyes or condition")
    if name == "condition":
        if cond.kind == "none":
            raise GankitError("--judge condition needs a conditional generator")
        return None, list(cond.class_names), {}
    return build_judge(name, handle.spec.out_shape)


def cmd_edit(args: argparse.Namespace) -> int:
    from gankit.use import directions as d
    from gankit.viz import save_grid

    _, handle = _loaded(args)
    dirs = d.Directions.load(Path(args.directions))
    d.check_directions_fit(handle, dirs)
    vector, scale = dirs.get(args.name)
    if args.keep:  # InterFaceGAN's conditional edit: leave these attributes' coordinates alone
        keep = d.Directions.load(Path(args.keep))
        d.check_directions_fit(handle, keep)
        vector = d.conditioned(vector, keep.vectors[[n != args.name for n in keep.names]])
    strengths = d.parse_strengths(args.strength)
    c_text = _condition_text(args, handle) if handle.conditioning.kind != "none" and (args.label or args.tags) else None
    if args.project:
        latents, space = _projected_latent(args, handle, c_text)
        c = handle.conditions(1, c_text)
    else:
        seeds = d.parse_seeds(args.seeds)
        c = handle.conditions(len(seeds), c_text)
        latents = torch.cat([handle.draw(1, s, args.truncation, None if c is None else c[i:i + 1])
                             for i, s in enumerate(seeds)])
        space = handle.working_space
    if dirs.space != space and not (dirs.space == "w" and space == "w+"):
        raise GankitError(f"these directions live in {dirs.space}; the latents are in {space}")
    x = d.edit_grid(handle, latents, space, c, vector, scale, strengths)
    out = Path(args.out or Path(args.run_dir) / f"edit_{args.name}.png")
    save_grid(x.flatten(0, 1), out, nrow=len(strengths))
    print(f"wrote {out} (rows: {'the projected image' if args.project else 'seeds ' + args.seeds}; "
          f"columns: strength {', '.join(f'{v:g}' for v in strengths)} x {scale:.3g})")
    return 0


def _projected_latent(args: argparse.Namespace, handle, c_text: str | None):
    """``--project``: a latent saved by ``gankit project`` (.npy), or an image projected now
    (with the net's own noise maps, so the latent alone reproduces it)."""
    import numpy as np

    from gankit.data.folders import load_image
    from gankit.use.project import ProjectionSettings, project

    path = Path(args.project)
    if path.suffix == ".npy":
        lat = torch.from_numpy(np.load(path, allow_pickle=False)).float()
        for name, sp in reversed(list(handle.latent_spaces().items())):
            if tuple(lat.shape) == tuple(sp.shape):
                return lat[None], name
        raise GankitError(f"'{path}' holds a latent of shape {tuple(lat.shape)}; this generator's "
                          f"spaces are " + ", ".join(f"{k} {v.shape}" for k, v in handle.latent_spaces().items()))
    if not path.is_file():
        raise GankitError(f"--project '{path}' is neither an image nor a .npy latent")
    x = load_image(path, handle.spec.out_shape[-1], handle.spec.out_shape[0])[None]
    p = project(handle, x, handle.conditions(1, c_text) if c_text or handle.space is not None else None,
                ProjectionSettings(steps=args.steps, optimise_noise=False))
    print(f"projected {path} into {p.space} (PSNR {float(p.psnr[0]):.1f} dB)")
    return p.latents, p.space


def cmd_mix(args: argparse.Namespace) -> int:
    from gankit.use.directions import parse_seeds
    from gankit.use.mix import mix_grid, parse_layers
    from gankit.viz import save_grid

    _, handle = _loaded(args)
    handle.require_space("w+")
    rows, cols = parse_seeds(args.rows), parse_seeds(args.cols)
    grid = mix_grid(handle, rows, cols, parse_layers(args.layers, handle.num_ws), args.truncation,
                    _condition_text(args, handle) if (args.label or args.tags) else None)
    out = Path(args.out or Path(args.run_dir) / "mix.png")
    save_grid(grid.flatten(0, 1), out, nrow=len(cols) + 1)
    print(f"wrote {out} (rows: seeds {args.rows}; columns: seeds {args.cols}, giving layers {args.layers} "
          f"of {handle.num_ws})")
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

    from gankit.cli import TRUNCATION_HELP

    d = sub.add_parser("directions", help="latent directions: sefa, pca (GANSpace) or labels (InterFaceGAN)")
    d.add_argument("run_dir")
    d.add_argument("--method", required=True, choices=["sefa", "pca", "labels"])
    d.add_argument("--out", required=True, help="a .npz or .json file")
    d.add_argument("--k", type=int, default=10, help="sefa/pca: directions kept")
    d.add_argument("--samples", type=int, default=2000, help="pca/labels: latents sampled")
    d.add_argument("--judge", default="auto", help="labels: digits, hair, eyes or condition "
                   "(auto: condition for conditional nets with a mapping net, digits for 28x28)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-ema", action="store_true")
    d.set_defaults(func=cmd_directions)

    e = sub.add_parser("edit", help="a grid moving latents along a direction (rows: seeds, columns: strengths)")
    e.add_argument("run_dir")
    e.add_argument("--directions", required=True, help="a file from gankit directions")
    e.add_argument("--name", required=True, help="the direction's name in the file")
    e.add_argument("--strength", default="-3:3:7", help="START:STOP:COUNT or a,b,c (in standard deviations)")
    e.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,5,9")
    e.add_argument("--keep", metavar="FILE", help="directions whose attributes the edit leaves alone "
                   "(e.g. the eye colours' for a hair edit): their components are removed")
    e.add_argument("--project", metavar="IMAGE", help="edit this image's projection (or a .npy latent) instead")
    e.add_argument("--steps", type=int, default=500, help="--project: projection steps")
    e.add_argument("--truncation", type=float, metavar="T", help=TRUNCATION_HELP)
    e.add_argument("--out", help="the grid PNG (default RUN/edit_NAME.png)")
    e.add_argument("--no-ema", action="store_true")
    _add_condition(e)
    e.set_defaults(func=cmd_edit)
    # `--strength -3:3:7` reads as a value, as a negative number would (argparse's own test)
    e._negative_number_matcher = re.compile(r"^-\d[\d.:,eE+-]*$")

    m = sub.add_parser("mix", help="style-mixing grid (nets with style layers)")
    m.add_argument("run_dir")
    m.add_argument("--rows", default="0-3", help="seeds of the rows (all layers but --layers)")
    m.add_argument("--cols", default="4-7", help="seeds of the columns (--layers)")
    m.add_argument("--layers", required=True, help="A-B: the style layers taken from the column seed")
    m.add_argument("--truncation", type=float, metavar="T", help=TRUNCATION_HELP)
    m.add_argument("--out", help="the grid PNG (default RUN/mix.png)")
    m.add_argument("--no-ema", action="store_true")
    _add_condition(m)
    m.set_defaults(func=cmd_mix)
