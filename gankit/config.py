"""Run configuration: one typed dataclass per component, YAML presets, dotted overrides.

A run config has fixed sections (``data``, ``G``, ``D``, ``loss``, ``optim``, ``train``,
``eval``) and a ``model`` section whose dataclass depends on ``model.kind``: each model
file registers its own options class in :data:`MODEL_OPTIONS`, so ``model.lambda_l1=50``
is type-checked against pix2pix's options and rejected for a plain GAN.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import ConfigError
from gankit.registry import Registry, closest

PRESET_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class DataConfig:
    """Where the training data comes from and how it is batched."""

    source: str = "mnist5k"  # built-in name (ring8, grid25, mnist5k, digits, ...) or a path
    image_size: int = 0  # 0 = the data's own size
    channels: int = 0  # 0 = the data's own; 1 = grayscale, 3 = RGB
    batch_size: int = 64
    workers: int = 2  # DataLoader workers for streamed folders
    on_bad: str = "error"  # error | skip: an unreadable image met while streaming a folder
    resident: str = "auto"  # auto | yes | no: keep the whole data set on the device as one tensor
    resident_max_mb: int = 2048  # auto keeps data resident below this size
    # large folders decode once into a pixel cache here ("" = ~/.cache/gankit/folders, none = off)
    cache_dir: str = ""
    toy_samples: int = 100_000  # size of a synthetic toy data set
    standardize: bool = True  # vector data: nets work on centred, unit-RMS points (any scale carries over)
    condition: str = "none"  # none | label | text: what the optional condition c is
    tags: str = ""  # a tags file (one line per image: file name, then its tags) for folders
    layout: str = "auto"  # auto | single | ab | aligned | unpaired (image-to-image data)
    direction: str = "AtoB"  # AtoB | BtoA: which side of paired/unpaired data is the input
    held_out: float = 0.0  # share of the data kept out of training for metrics (0 = none)
    binarize: bool = False  # binarised images (Bernoulli likelihoods)
    max_len: int = 20  # sequences: maximum tokens per sentence (longer ones are cut)
    min_count: int = 1  # sequences: words seen fewer times become <unk>
    vocab_size: int = 0  # sequences: keep at most this many words (0 = all)


@dataclass
class NetConfig:
    """A generator or discriminator architecture."""

    name: str = "auto"  # auto (mlp for vectors, dcgan for images) | mlp | dcgan | resnet | ...
    width: int = 64  # hidden units (mlp) or base channels (conv)
    depth: int = 3  # hidden layers (mlp) or residual blocks where it applies
    norm: str = "batch"  # batch | none | layer | instance
    spectral_norm: bool = False


@dataclass
class LossConfig:
    """The adversarial objective and its regularisers."""

    name: str = "nonsaturating"
    penalty: str = "auto"  # auto | none | gp | gp-one-sided | r1 (auto: gp for wgan-gp)
    penalty_weight: float = 10.0
    clip: float = -1.0  # critic weight clipping; -1 = 0.01 for wgan and off otherwise, 0 = off
    fgan_g: str = "nonsaturating"  # f-GAN generator loss: nonsaturating (-g(v)) | saturating


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    impl: str = "auto"  # auto | foreach | fused | single (for loops)
    # Every learning rate stays constant for this fraction of train.steps, then falls linearly
    # to 0 at the last step (CycleGAN and pix2pix: 0.5); 1 = constant throughout.
    decay_start: float = 1.0


@dataclass
class TrainConfig:
    steps: int = 2000  # generator updates
    n_critic: int = 1  # discriminator updates per step, before the generator's
    n_gen: int = 1  # generator updates per step, after the critic's (PacGAN's Stacked MNIST: 2)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    ema: float = 0.999  # EMA decay of G's weights; 0 = off
    ema_start: int = 0  # copy G into the EMA until this step
    # EMA warm-up: the decay at step t (counted from ema_start) is min(ema, (1 + t) / (10 + t)),
    # so the average spans about the last tenth of training until it reaches `ema`; without it
    # a decay of 0.999 still holds 0.999^t of the initial weights (18% at 1,700 steps)
    ema_warmup: bool = False
    log_every: int = 50
    sample_every: int = 500
    ckpt_every: int = 1000
    n_grid: int = 64  # fixed-noise samples in each grid
    # none | bf16 | fp16 (fp16 only on CUDA) | auto: bf16 where the hardware multiplies bf16
    # natively (AMX or AVX512-BF16 CPUs, bf16 GPUs), fp32 elsewhere (gankit.runtime.resolve_amp)
    amp: str = "none"
    compile: bool = False
    channels_last: bool = False
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    progress: bool = True
    sync_bn: bool = False  # SyncBatchNorm under DDP
    # Augmentation of D's inputs for small data (model.kind=gan): none | diffaugment |
    # ada-lite (ADA's controller over a reduced pipeline; ``ada`` is its old name)
    augment: str = "none"
    ada_target: float = 0.6  # ada-lite: the E[sign(D(real) - threshold)] p is steered towards
    ada_kimg: float = 500.0  # ada-lite: thousands of images over which p could cross [0, 1]


@dataclass
class EvalConfig:
    metrics: list[str] = field(default_factory=list)  # evaluated every eval_every steps
    every: int = 0  # 0 = only at the end when metrics are set
    n_samples: int = 1000
    best: str = ""  # keep best.pt by this metric (lower is better unless it is in HIGHER)
    extractor: str = "auto"  # auto | inception | digits | path to a TorchScript model


@dataclass
class ModelOptions:
    """Base of every model's options; ``kind`` picks the model class."""

    kind: str = "gan"

    def unused_sections(self) -> tuple[str, ...]:
        """Config sections this kind never reads (``loss``, ``D``): setting one is an error."""
        return ()


# Filled by the models: each registers its options class beside itself (``register_model``
# in gankit/models); config names the package and never imports it.
MODEL_OPTIONS: Registry[type] = Registry("model kind", autoload="gankit.models")


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = field(default_factory=ModelOptions)
    G: NetConfig = field(default_factory=NetConfig)
    D: NetConfig = field(default_factory=lambda: NetConfig(norm="none"))
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _model_options_class(kind: Any) -> type:
    if not isinstance(kind, str):
        raise ConfigError(f"model.kind must be a string, got {kind!r}")
    return MODEL_OPTIONS.get(kind)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted where lossless."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads '1e-4' as a string; users mean a number
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _section_fields(obj: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(type(obj))
    return {f.name: hints[f.name] for f in dataclasses.fields(obj)}


def all_keys(cfg: RunConfig) -> list[str]:
    """Every valid dotted key of ``cfg`` (its model section included)."""
    keys = []
    for section in dataclasses.fields(cfg):
        keys += [f"{section.name}.{k}" for k in _section_fields(getattr(cfg, section.name))]
    return keys


def _unknown_key(key: str, cfg: RunConfig) -> ConfigError:
    hint = closest(key, all_keys(cfg))
    if not hint and key.startswith("model."):
        owners = [kind for kind in MODEL_OPTIONS.names()
                  if key.split(".", 1)[1] in {f.name for f in dataclasses.fields(MODEL_OPTIONS.get(kind))}]
        if owners:
            hint = (f" ({key} is an option of model.kind={' or '.join(owners)}; "
                    f"this run's model.kind is {cfg.model.kind})")
    if not hint:
        section = key.split(".", 1)[0]
        if "." in key and hasattr(cfg, section) and not section.startswith("_"):
            hint = f"; {section} has: {', '.join(_section_fields(getattr(cfg, section)))}"
        else:
            hint = f"; keys look like section.key with section one of " \
                   f"{', '.join(f.name for f in dataclasses.fields(cfg))}"
    return ConfigError(f"unknown config key '{key}'{hint}")


# String options with a fixed set of values. Where "yes"/"no" are among them, a YAML boolean
# (an override data.resident=no, or `resident: yes` in a file: YAML reads both as booleans)
# means that word.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.resident": ("auto", "yes", "no"),
    "data.condition": ("none", "label", "text"),
    "data.on_bad": ("error", "skip"),
    "optim.name": ("adam", "rmsprop"),
    "optim.impl": ("auto", "foreach", "fused", "single"),
    "train.amp": ("none", "bf16", "fp16", "auto"),
    "loss.penalty": ("auto", "none", "gp", "gp-one-sided", "r1"),
    "loss.fgan_g": ("nonsaturating", "saturating"),
}


def set_key(cfg: RunConfig, key: str, value: Any) -> None:
    """Set one dotted key, type-checked. ``model.kind`` rebuilds the model section."""
    parts = key.split(".")
    if len(parts) != 2 or not hasattr(cfg, parts[0]) or parts[0].startswith("_"):
        raise _unknown_key(key, cfg)
    section_name, name = parts
    section = getattr(cfg, section_name)
    if section_name == "model" and name == "kind":
        if value != cfg.model.kind:
            cfg.model = _model_options_class(value)()
            # What an earlier layer (a base preset for another kind) set in sections this
            # kind never reads goes back to the defaults; the layer that changes the kind
            # sets its keys after this, and those are checked by validate().
            defaults = RunConfig()
            for unused in cfg.model.unused_sections():
                setattr(cfg, unused, getattr(defaults, unused))
        return
    fields = _section_fields(section)
    if name not in fields:
        raise _unknown_key(key, cfg)
    if isinstance(value, bool) and {"yes", "no"} <= set(CHOICES.get(key, ())):
        value = "yes" if value else "no"
    setattr(section, name, coerce(value, fields[name], key))


def _flatten(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(tree, dict):
        raise ConfigError(f"'{prefix or 'the config'}' must be a mapping of keys, got {tree!r}")
    out = []
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out += _flatten(v, key)
        else:
            out.append((key, v))
    return out


def apply_dict(cfg: RunConfig, tree: dict[str, Any]) -> RunConfig:
    """Apply a nested mapping (as read from YAML) to ``cfg``; model.kind goes first."""
    items = _flatten(tree)
    items.sort(key=lambda kv: kv[0] != "model.kind")
    for key, value in items:
        set_key(cfg, key, value)
    return cfg


def preset_path(preset: str) -> Path:
    """A YAML path, or the name of a built-in preset in gankit/configs."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"preset file '{preset}' does not exist")
        return path
    builtin = PRESET_DIR / f"{preset}.yaml"
    if not builtin.is_file():
        names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        hint = closest(preset, names)
        raise ConfigError(
            f"unknown preset '{preset}'{hint}; give a .yaml file or one of: {', '.join(names)}"
        )
    return builtin


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"malformed YAML in '{path}'{where}: fix the syntax") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read '{path}': {e}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"'{path}' must hold a mapping of sections, not {type(tree).__name__}")
    return tree


def _load_preset_tree(preset: str, seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The preset's tree, preceded by the trees of its ``base:`` chain."""
    path = preset_path(preset)
    if str(path) in seen:
        raise ConfigError(f"preset '{preset}' includes itself through 'base:'")
    tree = read_yaml(path)
    base = tree.pop("base", None)
    chain = _load_preset_tree(str(base), seen + (str(path),)) if base else []
    return chain + [tree]


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (so 5 is int, 1e-4 float, true bool)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(preset: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults, then the preset (and its bases), then ``key=value`` overrides."""
    cfg = RunConfig()
    cfg.model = _model_options_class("gan")()
    if preset:
        for tree in _load_preset_tree(preset):
            apply_dict(cfg, tree)
    pairs = [parse_override(o) for o in overrides]
    pairs.sort(key=lambda kv: kv[0] != "model.kind")
    for key, value in pairs:
        set_key(cfg, key, value)
    validate(cfg)
    return cfg


def config_from_dict(tree: dict[str, Any]) -> RunConfig:
    """Rebuild a config saved with :meth:`RunConfig.to_dict` (e.g. from a checkpoint)."""
    cfg = RunConfig()
    cfg.model = _model_options_class(tree.get("model", {}).get("kind", "gan"))()
    train = tree.get("train", {})
    if isinstance(train, dict) and train.get("augment", "none") not in ("ada-lite", "ada"):
        # ADA's settings do nothing without ADA; runs saved before ada_kimg's default became 500
        # stored 100 there, which validate() would now refuse and so block their resume
        tree = {**tree, "train": {k: v for k, v in train.items() if k not in ("ada_target", "ada_kimg")}}
    apply_dict(cfg, tree)
    return cfg


# Keys a resumed run may change: none of them changes what is trained, only how long, how
# often it logs, samples, checkpoints and evaluates, and where and in which precision it runs
# (weights and optimiser state stay fp32 under every train.amp); data.on_bad decides
# whether a corrupt file found mid-run stops the run (it says to resume with =skip).
RESUME_KEYS = ("train.steps", "train.log_every", "train.sample_every", "train.ckpt_every",
               "train.progress", "train.threads", "train.device", "eval.every", "data.workers",
               "data.on_bad", "data.cache_dir", "train.amp", "train.channels_last")


def check_resume_override(key: str) -> None:
    """ConfigError for a ``--resume`` override that would change what the run trains."""
    if key not in RESUME_KEYS:
        raise ConfigError(f"--resume cannot change '{key}': the run was trained with the value in "
                          f"its config.yaml; only {', '.join(RESUME_KEYS)} may change "
                          "(start a new run to change the rest)")


def validate(cfg: RunConfig) -> None:
    """Checks across keys that a type check alone cannot make."""
    positive = {
        "data.batch_size": cfg.data.batch_size,
        "train.n_critic": cfg.train.n_critic,
        "train.n_gen": cfg.train.n_gen,
        "train.log_every": cfg.train.log_every,
        "train.n_grid": cfg.train.n_grid,
        "G.width": cfg.G.width,
        "D.width": cfg.D.width,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value}")
    if cfg.train.steps < 0:
        raise ConfigError(f"train.steps must be >= 0, got {cfg.train.steps}")
    if not 0.0 <= cfg.train.ema < 1.0:
        raise ConfigError(f"train.ema must be in [0, 1), got {cfg.train.ema}")
    if not 0.0 <= cfg.optim.decay_start <= 1.0:
        raise ConfigError(f"optim.decay_start must be in [0, 1] (a fraction of train.steps), "
                          f"got {cfg.optim.decay_start}")
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got '{value}'")
    if cfg.loss.penalty_weight < 0:
        raise ConfigError(f"loss.penalty_weight must be >= 0, got {cfg.loss.penalty_weight}")
    _validate_augment(cfg)
    _check_unused_sections(cfg)


def _validate_augment(cfg: RunConfig) -> None:
    t = cfg.train
    if t.augment not in ("none", "diffaugment", "ada-lite", "ada"):
        raise ConfigError("train.augment must be one of none, diffaugment, ada-lite (or its old "
                          f"name ada); got '{t.augment}'")
    if t.augment != "none" and cfg.model.kind != "gan":
        raise ConfigError(f"train.augment applies to model.kind=gan, not '{cfg.model.kind}'; "
                          "set train.augment=none")
    if t.augment not in ("ada-lite", "ada") and (t.ada_target != 0.6 or t.ada_kimg != 500.0):
        raise ConfigError("train.ada_target and train.ada_kimg apply to train.augment=ada-lite; "
                          "drop them or set train.augment=ada-lite")
    if not 0.0 < t.ada_target < 1.0 or t.ada_kimg <= 0:
        raise ConfigError(f"train.ada_target must be in (0, 1) and train.ada_kimg > 0, got "
                          f"{t.ada_target} and {t.ada_kimg}")


_SECTION_ROLE = {"loss": "adversarial loss", "D": "discriminator"}


def _check_unused_sections(cfg: RunConfig) -> None:
    """A key of a section the model kind never reads does nothing: refuse it, not ignore it."""
    defaults = RunConfig()
    for name in cfg.model.unused_sections():
        given, default = dataclasses.asdict(getattr(cfg, name)), dataclasses.asdict(getattr(defaults, name))
        changed = [f"{name}.{k}={v}" for k, v in given.items() if v != default[k]]
        if changed:
            raise ConfigError(f"{', '.join(changed)} does nothing for model.kind={cfg.model.kind} "
                              f"(it has no {_SECTION_ROLE.get(name, name)}); drop it")


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
