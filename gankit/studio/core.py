"""What the studio shows, as plain functions: a run (a :class:`gankit.api.LoadedRun`) and a
few numbers in, a picture out. The web page calls these through :mod:`gankit.studio.app`
and adds no logic of its own; they use what the commands use (``gankit sample``'s draws
and grids, ``gankit interpolate``'s paths and GIF, the translation models' ``translate``,
the toy scatter), so a picture on the page is the picture the command line would write.

A run's capabilities come from what its generator declares (:class:`GeneratorHandle`:
conditioning, truncation, images or points) and from the model (image translation); the
page shows a control only where the run declares it.
"""
from __future__ import annotations

import io
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gankit.errors import DataError, GankitError, Unsupported

MAX_GRID = 64  # images in one grid: a 64-image grid of 64-px faces is ~0.3 MB of PNG
MAX_POINTS = 5000  # points in one toy scatter
MAX_FRAMES = 32  # frames of one interpolation GIF
MAX_UPLOAD = 8 << 20  # bytes of one uploaded image
MAX_PIXELS = 4096 * 4096  # decoded size of one upload (a small PNG can claim a huge canvas)
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
THRESHOLD_RANGE = (0.25, 3.0)  # the z-threshold slider; its top means no truncation
PROJECT_STEPS = (100, 300, 1000)  # projection lengths offered (gankit project's default: 1000)
MAX_SLIDERS = 10  # edit sliders per direction set (sefa/pca sets are sorted, strongest first)
EDIT_RANGE = 5.0  # edit slider range, in standard deviations along the direction
KEPT_PROJECTIONS = 16  # projected latents kept for editing, the oldest dropped first


class NotServed(GankitError):
    """A request named a run this studio was not given."""


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # speed over size: it goes over localhost
    return buf.getvalue()


# ---- runs --------------------------------------------------------------------------------------
def is_exported(path: Path) -> bool:
    """A generator file written by ``gankit export`` (not a run folder)."""
    return path.suffix == ".safetensors"


def served_runs(paths: list[str | Path], root: str | Path = "runs") -> dict[str, Path]:
    """``{key: folder or exported file}`` of the runs to serve: ``paths``, or every run under
    ``root`` when none is given. A key is the name (its path when two names clash); requests
    name runs by key only, so no request can reach a path outside these."""
    from gankit.checkpoint_format import checkpoint_file
    from gankit.viz.runs import find_runs

    folders = [Path(p) for p in paths] if paths else find_runs(root)
    if not folders:
        raise GankitError(f"no runs under '{root}'; give run folders: gankit studio RUN [RUN ...]")
    for folder in folders:
        if is_exported(folder):
            if not folder.is_file():
                raise GankitError(f"'{folder}' does not exist; give a file written by gankit export")
            continue
        if not (folder / "config.yaml").is_file():
            raise GankitError(f"'{folder}' is not a run folder (no config.yaml); give a folder written "
                              "by gankit train or a .safetensors file written by gankit export")
        checkpoint_file(folder, "last")  # one line now, rather than on the page later
    names = [f.name for f in folders]
    keys = [f.name if names.count(f.name) == 1 else str(f) for f in folders]
    return {k: f.resolve() for k, f in zip(keys, folders)}


def run_summary(path: Path) -> dict[str, Any]:
    """Config (as YAML text), final metrics and progress of a run folder; no torch needed."""
    import yaml

    from gankit.viz.runs import describe, read_run

    run = read_run(path)
    return {"name": run.name, "kind": run.config.get("model", {}).get("kind", "?"),
            "state": run.state, "steps_done": run.steps_done, "total_steps": run.total_steps,
            "describe": describe(run.config), "config": yaml.safe_dump(run.config, sort_keys=False),
            "metrics": {k: float(v) for k, v in sorted(run.final_metrics().items())}}


def exported_summary(path: Path, run) -> dict[str, Any]:
    """:func:`run_summary` of an exported generator, from the config it carries."""
    import yaml

    from gankit.config import dump_yaml
    from gankit.viz.runs import describe

    config = yaml.safe_load(dump_yaml(run.cfg))
    return {"name": path.name, "kind": run.cfg.model.kind, "state": "exported", "steps_done": run.step,
            "total_steps": run.cfg.train.steps, "describe": describe(config) + " (exported)",
            "config": dump_yaml(run.cfg), "metrics": {}}


def generator_of(run) -> Any:
    """The run's generator handle, or None for a model without a latent generator."""
    try:
        return run.generator()
    except Unsupported:
        return None


def capabilities(run, directions: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the page may show for ``run``: each key present only where the run declares it
    (``directions``: the ``gankit directions`` sets served, ``{key: Directions}``)."""
    from gankit.models.translation import ImageTranslation

    handle, images = generator_of(run), run.info.is_image
    caps: dict[str, Any] = {}
    if isinstance(run.model, ImageTranslation):  # pix2pix, CycleGAN: an image in, one out
        caps["translate"] = {"size": run.info.shape[-1], "channels": run.info.shape[0]}
        return caps
    points = run.info.kind == "vector" and run.info.shape[0] >= 2  # not sentences: no scatter
    if images:
        caps["samples"] = {"max": MAX_GRID}
    if points:
        caps["scatter"] = {"max": MAX_POINTS}
    if handle is None:
        return caps  # a VAE or flow: its own samples, no truncation or latent walks
    caps["compare"] = True  # the same seeds drawn by another latent generator
    caps["truncation"] = truncation_control(handle)
    if handle.conditioning.kind in ("labels", "tags"):
        cond = handle.conditioning
        caps["condition"] = {"kind": cond.kind,
                             "choices": list(cond.class_names) if cond.kind == "labels" else list(cond.vocab[2:])}
    if images:
        caps["interpolate"] = {"max_frames": MAX_FRAMES}
        caps["project"] = {"steps": list(PROJECT_STEPS), "size": run.info.shape[-1]}
    sets = [{"set": k, "method": d.method, "space": d.space, "names": d.names[:MAX_SLIDERS]}
            for k, d in (directions or {}).items() if directions_fit(handle, d)]
    if sets:
        caps["edit"] = {"sets": sets, "range": EDIT_RANGE}
    return caps


def directions_fit(handle, dirs) -> bool:
    """Whether a direction set moves this generator's working latents (``gankit edit``'s check)."""
    from gankit.use.directions import check_directions_fit

    try:
        check_directions_fit(handle, dirs)
    except GankitError:
        return False
    return dirs.space == handle.working_space


def load_directions(paths: list[str | Path]) -> dict[str, Any]:
    """``{key: Directions}`` of ``gankit directions`` files (``.npz`` read without pickle, or
    ``.json``); the key is the file name (its path when two clash)."""
    from gankit.use.directions import Directions

    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    return {(p.name if names.count(p.name) == 1 else str(p)): Directions.load(p) for p in paths}


def edit_offset(directions: dict[str, Any], items: list[str]) -> torch.Tensor | None:
    """The latent offset of the page's edit sliders, ``SET:NAME:STRENGTH`` each (strength in
    the direction's standard deviations, as ``gankit edit --strength``); None for none."""
    offset = None
    for item in items:
        key, _, rest = item.partition(":")
        name, _, strength = rest.rpartition(":")
        if key not in directions:
            raise NotServed(f"'{key}' is not one of the direction sets this studio serves")
        try:
            value = float(strength)
        except ValueError:
            raise GankitError(f"an edit looks like SET:NAME:STRENGTH, got '{item[:80]}'") from None
        if not -EDIT_RANGE <= value <= EDIT_RANGE:
            raise GankitError(f"edit strengths are between -{EDIT_RANGE} and {EDIT_RANGE}, got {value:g}")
        vector, scale = directions[key].get(name)
        offset = vector * (value * scale) if offset is None else offset + vector * (value * scale)
    return offset


def truncation_control(handle) -> dict[str, Any]:
    """The truncation slider: psi in [0, 1] toward w_avg with a mapping net (1 = none), else a
    z threshold (BigGAN); in both the slider's top is 'none'."""
    if handle.has_mapping:
        return {"kind": "psi", "min": 0.0, "max": 1.0, "step": 0.05, "none_at": 1.0}
    lo, hi = THRESHOLD_RANGE
    return {"kind": "threshold", "min": lo, "max": hi, "step": 0.05, "none_at": hi}


def truncation_value(run, value: float | None) -> float | None:
    """The slider's value as ``--truncation`` takes it: None at the slider's top (none)."""
    handle = generator_of(run)
    if value is None or handle is None:
        return None
    return None if value >= truncation_control(handle)["none_at"] else float(value)


# ---- pictures ----------------------------------------------------------------------------------
def draw_samples(run, n: int, seed: int = 0, cond: str | None = None,
                 truncation: float | None = None) -> torch.Tensor:
    """``n`` samples exactly as ``gankit sample RUN --n N --seed S [--cond C] [--truncation T]``
    draws them."""
    if n < 1:
        raise GankitError(f"need at least one sample, got {n}")
    c = run.model.parse_condition(cond, n) if cond else None
    if truncation is not None:
        handle = generator_of(run)
        if handle is None:
            raise Unsupported(f"model kind '{run.cfg.model.kind}' has no latent generator to truncate")
        return handle.generate(n, seed, c, truncation)
    return run.model.generate(n, generator=torch.Generator().manual_seed(seed), c=c)


def sample_grid(run, n: int, seed: int = 0, cond: str | None = None,
                truncation: float | None = None, edit: torch.Tensor | None = None) -> Image.Image:
    """``gankit sample --grid``'s picture: class-aligned columns for a conditional run unless
    ``cond`` gives every sample one condition, or the grid holds fewer images than there are
    classes (a tag run has hundreds of tag sets: a square grid, not one row of labels)."""
    from gankit.viz import grid_layout, image_grid

    if not run.info.is_image:
        raise Unsupported("this run's samples are points, not images: see its scatter")
    if n > MAX_GRID:
        raise GankitError(f"at most {MAX_GRID} images in one grid, got {n}")
    layout = grid_layout(run.model)
    if cond or layout.get("nrow", 0) > n:
        layout.pop("nrow", None), layout.pop("columns", None)
    x = draw_samples(run, n, seed, cond, truncation) if edit is None else edited(run, n, seed, cond, truncation, edit)
    return image_grid(x, **layout)


def edited(run, n: int, seed: int, cond: str | None, truncation: float | None, offset: torch.Tensor) -> torch.Tensor:
    """The grid's ``n`` samples with their latents moved by ``offset`` (the edit sliders'
    sum of strength x scale x direction), through ``gankit edit``'s :func:`edit_grid`."""
    from gankit.use.directions import edit_grid

    handle = generator_of(run)
    c = handle.conditions(n, cond or None)
    latents = handle.draw(n, seed, truncation, c)
    return edit_grid(handle, latents, handle.working_space, c, offset, 1.0, [1.0])[:, 0]


def scatter(run, n: int, seed: int = 0, truncation: float | None = None) -> bytes:
    """PNG of ``n`` drawn points over the real mixture's modes (``gankit sample``'s scatter)."""
    from gankit.viz import save_samples

    if run.info.is_image:
        raise Unsupported("this run draws images, not points")
    if not 1 <= n <= MAX_POINTS:
        raise GankitError(f"a scatter shows 1 to {MAX_POINTS} points, got {n}")
    with tempfile.TemporaryDirectory() as tmp:
        return save_samples(draw_samples(run, n, seed, None, truncation), run.info, Path(tmp) / "s.png").read_bytes()


def _path_between(run, seeds: tuple[int, int], t: torch.Tensor, cond: str | None,
                  truncation: float | None) -> torch.Tensor:
    """Images ``[T, 1, C, H, W]`` along ``gankit interpolate``'s path (slerp in z, lerp in w)
    from the first latent of seed ``seeds[0]`` to that of ``seeds[1]``, at fractions ``t``."""
    from gankit.use.animate import lerp, render_paths, slerp

    handle = generator_of(run)
    if handle is None or not run.info.is_image:
        raise Unsupported(f"model kind '{run.cfg.model.kind}' has no latent generator of images to walk")
    c = handle.conditions(1, cond or None)
    ends = [handle.draw(1, s, truncation, c) for s in seeds]
    path = (slerp if handle.working_space == "z" else lerp)(ends[0], ends[1], t.to(ends[0].device))
    return render_paths(handle, path, c, handle.working_space).transpose(0, 1)


def interpolation(run, seeds: tuple[int, int], t: float, cond: str | None = None,
                  truncation: float | None = None) -> Image.Image:
    """The image at fraction ``t`` (0 = first seed, 1 = second) of the walk between two seeds."""
    from gankit.viz import image_grid

    if not 0.0 <= t <= 1.0:
        raise GankitError(f"the interpolation fraction is between 0 and 1, got {t}")
    return image_grid(_path_between(run, seeds, torch.tensor([float(t)]), cond, truncation)[0], pad=0)


def interpolation_gif(run, seeds: tuple[int, int], frames: int = 16, cond: str | None = None,
                      truncation: float | None = None) -> bytes:
    """``gankit interpolate --gif``'s animation between the two seeds, as GIF bytes."""
    from gankit.use.animate import write_gif

    if not 2 <= frames <= MAX_FRAMES:
        raise GankitError(f"a GIF has 2 to {MAX_FRAMES} frames, got {frames}")
    x = _path_between(run, seeds, torch.linspace(0, 1, frames), cond, truncation)
    with tempfile.TemporaryDirectory() as tmp:
        return write_gif(x, Path(tmp) / "walk.gif").read_bytes()


def decode_upload(data: bytes, size: int, channels: int, limit: int = MAX_UPLOAD) -> torch.Tensor:
    """An uploaded file as ``[channels, size, size]`` in [-1, 1], decoded by Pillow only (as
    training data is: resized and centre-cropped); DataError naming what is wrong."""
    from gankit.data.folders import load_image

    if len(data) > limit:
        raise DataError(f"the upload is {len(data) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB")
    if not data:
        raise DataError("the upload is empty; choose an image file")
    try:
        with Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS) as im:
            width, height = im.size
    except Exception:  # noqa: BLE001 -- Pillow raises many types for what it cannot read
        raise DataError(f"the upload is not an image ({', '.join(UPLOAD_FORMATS).lower()} files "
                        "are read)") from None
    if width * height > MAX_PIXELS:
        raise DataError(f"the upload is {width} x {height} pixels; the limit is {MAX_PIXELS // 10**6} megapixels")
    try:
        return load_image(io.BytesIO(data), size, channels)  # type: ignore[arg-type]  # a file object works
    except DataError:
        raise DataError("the upload looks like an image but cannot be decoded (truncated or corrupt)") from None


def translate_upload(run, data: bytes, limit: int = MAX_UPLOAD) -> Image.Image:
    """``[input | output]`` (side by side, unlabelled) for one uploaded image through a translation run's generator
    (what ``gankit translate`` writes for each file, beside its input)."""
    from gankit.viz import image_grid

    if "translate" not in capabilities(run):
        raise Unsupported(f"model kind '{run.cfg.model.kind}' does not translate images")
    x = decode_upload(data, run.info.shape[-1], run.info.shape[0], limit)[None]
    with torch.no_grad():
        y = run.model.translate(x).float().cpu()
    return image_grid(torch.cat([x, y], dim=-1), pad=0)  # the page labels the two halves


def project_upload(run, data: bytes, steps: int = 100, cond: str | None = None, seed: int = 0,
                   use_discriminator: bool = True, limit: int = MAX_UPLOAD):
    """``([target | reconstruction], Projection)``: one uploaded image projected as ``gankit
    edit --project`` does (its latent space, the net's own noise maps, so the latent alone
    reproduces it and can be edited), with the run's discriminator features unless
    ``use_discriminator`` is off (an exported file carries no discriminator)."""
    from gankit.use.project import ProjectionSettings, discriminator_features, project
    from gankit.viz import image_grid

    handle = generator_of(run)
    if handle is None or not run.info.is_image:
        raise Unsupported(f"model kind '{run.cfg.model.kind}' has no latent generator of images to project into")
    if steps not in PROJECT_STEPS:
        raise GankitError(f"projection steps are one of {', '.join(map(str, PROJECT_STEPS))}, got {steps}")
    x = decode_upload(data, run.info.shape[-1], run.info.shape[0], limit)[None]
    c = handle.conditions(1, cond or None) if handle.space is not None else None
    D = getattr(run.model, "D", None)
    features = discriminator_features(D) if use_discriminator and D is not None else None
    p = project(handle, x, c, ProjectionSettings(steps=steps, optimise_noise=False), features, seeds=[seed])
    return image_grid(torch.cat([x, p.images], dim=-1), pad=0), p


def edit_projection(run, latent: torch.Tensor, space: str, cond: str | None, offset: torch.Tensor | None) -> Image.Image:
    """A projected latent's image, moved by the edit sliders' ``offset`` (``gankit edit --project``)."""
    from gankit.use.directions import edit_grid
    from gankit.viz import image_grid

    handle = generator_of(run)
    c = handle.conditions(1, cond or None) if handle.space is not None else None
    offset = torch.zeros(latent.shape[-1]) if offset is None else offset
    return image_grid(edit_grid(handle, latent, space, c, offset, 1.0, [1.0])[:, 0], pad=0)


# ---- serving -------------------------------------------------------------------------------------
@dataclass
class Studio:
    """The runs one studio serves (``{key: folder}``), loaded on first use and kept."""

    runs: dict[str, Path]
    max_upload: int = MAX_UPLOAD
    directions: dict[str, Any] = field(default_factory=dict)  # {key: Directions}

    def __post_init__(self):
        self._loaded: dict[str, Any] = {}
        self._projections: dict[str, tuple[str, torch.Tensor, str, str | None]] = {}  # id -> (run, latent, space, cond)
        # one picture at a time: parallel requests would only split the same CPU threads
        self.lock = threading.Lock()

    def path(self, key: str) -> Path:
        """The folder of served run ``key``; NotServed for anything else (a path included)."""
        if key not in self.runs:
            raise NotServed(f"'{key}' is not one of the runs this studio serves "
                            f"({', '.join(self.runs)})")
        return self.runs[key]

    def run(self, key: str):
        from gankit.api import load_run

        path = self.path(key)
        if key not in self._loaded:
            self._loaded[key] = load_run(path)
        return self._loaded[key]

    def summary(self, key: str) -> dict[str, Any]:
        path = self.path(key)
        return exported_summary(path, self.run(key)) if is_exported(path) else run_summary(path)

    def listing(self) -> list[dict[str, Any]]:
        """The run picker: every served run's key and summary."""
        return [{"key": k, **self.summary(k)} for k in self.runs]

    def describe(self, key: str) -> dict[str, Any]:
        """A run's summary and capabilities (loads the run)."""
        run = self.run(key)
        return {"key": key, "step": run.step, **self.summary(key), "caps": capabilities(run, self.directions)}

    def project(self, key: str, data: bytes, steps: int, cond: str | None, seed: int) -> tuple[Image.Image, float, str]:
        """:func:`project_upload` for served run ``key`` (an export has no discriminator):
        ``(picture, PSNR dB, id)``; the latent is kept under ``id`` for :meth:`edit_projection`."""
        image, p = project_upload(self.run(key), data, steps, cond, seed,
                                  use_discriminator=not is_exported(self.path(key)), limit=self.max_upload)
        pid = secrets.token_hex(8)
        self._projections[pid] = (key, p.latents, p.space, cond)
        while len(self._projections) > KEPT_PROJECTIONS:
            self._projections.pop(next(iter(self._projections)))
        return image, float(p.psnr[0]), pid

    def edit_projection(self, pid: str, edits: list[str]) -> Image.Image:
        """The projection ``pid`` with the edit sliders applied."""
        if pid not in self._projections:
            raise GankitError("that projection is no longer kept; upload the image again")
        key, latent, space, cond = self._projections[pid]
        return edit_projection(self.run(key), latent, space, cond, edit_offset(self.directions, edits))
