"""One face for a trained generator: what it declares about itself, and sampling, mapping
and synthesis through it.

Every command that *uses* a generator (sample, interpolate, project, directions, edit, mix,
export, the studio) meets it through a :class:`GeneratorHandle`, so none of them branches on
the net's name. The handle holds the net (EMA or live, from a run folder or rebuilt by an
exporter from saved config and weights) and a :class:`GeneratorSpec`, the JSON-able facts its
surroundings know (latent size, output shape and range, conditioning). What the net itself can
do (a mapping net and its ``w_avg``, style layers, noise inputs, the first latent-facing
weight SeFa reads) it declares on its class (:class:`gankit.nets.common.Generator`); a
command asking for something the net does not declare gets a one-line
:class:`~gankit.errors.Unsupported` error worded by the net.

Truncation, one flag for every net:

* with a mapping net, ``w' = w_avg + psi (w - w_avg)``, ``psi`` in [0, 1] (1 = off);
* without one, BigGAN's trick: ``z`` from N(0, I) truncated at ``threshold`` (entries with
  ``|z| > threshold`` are drawn again until none is), ``threshold > 0``.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError, Unsupported

CONDITION_KINDS = ("none", "labels", "tags", "image")
_MODEL_CONDITIONS = {"label": "labels", "text": "tags"}  # data.condition -> Conditioning.kind


@dataclass(frozen=True)
class Conditioning:
    """What a generator is conditioned on: nothing, a class label, a tag line (words of
    ``vocab``, at most ``max_len`` tokens) or an image (translators)."""

    kind: str = "none"
    class_names: tuple[str, ...] = ()
    vocab: tuple[str, ...] = ()
    max_len: int = 0

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class LatentSpace:
    """A space a latent can be given in: ``z`` (prior N(0, I)), ``w`` (the mapping net's
    output) or ``w+`` (one ``w`` per style layer)."""

    name: str
    shape: tuple[int, ...]  # one item's
    prior: str  # "normal" | "mapped"


@dataclass(frozen=True)
class GeneratorSpec:
    """The facts about a generator that are not in the net: JSON-able, so an exported file
    stores them next to the weights and rebuilds the same handle."""

    net: str  # the net's registry name (G.name)
    z_dim: int
    out_shape: tuple[int, ...]
    is_image: bool
    value_range: tuple[float, float] | None = (-1.0, 1.0)  # None: unbounded (vectors)
    conditioning: Conditioning = field(default_factory=Conditioning)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorSpec":
        """The inverse of :meth:`to_dict`; ConfigError for a dict that is not a spec."""
        try:
            cond = dict(d.get("conditioning") or {})
            cond = Conditioning(cond.get("kind", "none"), tuple(cond.get("class_names", ())),
                                tuple(cond.get("vocab", ())), int(cond.get("max_len", 0)))
            vr = d.get("value_range")
            return cls(str(d["net"]), int(d["z_dim"]), tuple(int(s) for s in d["out_shape"]),
                       bool(d["is_image"]), None if vr is None else (float(vr[0]), float(vr[1])), cond)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ConfigError(f"not a generator spec ({type(e).__name__}: {e})") from None


def spec_of_model(model: nn.Module) -> GeneratorSpec:
    """The spec of a trained model's generator (its config, data info and conditions)."""
    info, space = model.info, model.space
    cond = Conditioning()
    if space is not None:
        cond = Conditioning(_MODEL_CONDITIONS[space.condition], tuple(space.class_names),
                            tuple(space.vocab) if space.condition == "text" else (), space.max_len)
    return GeneratorSpec(model.cfg.G.name, int(model.cfg.model.z_dim), tuple(info.shape),
                         info.is_image, (-1.0, 1.0) if info.is_image else None, cond)


def truncated_normal(n: int, dim: int, threshold: float | None,
                     generator: torch.Generator | None = None) -> Tensor:
    """``[n, dim]`` N(0, 1) draws; with a ``threshold``, every entry beyond it is drawn again
    (from the same stream) until none is: BigGAN's truncation trick. Entries already inside
    are kept, so the same seed gives the same z as without truncation wherever it can."""
    z = torch.randn(n, dim, generator=generator)
    if threshold is None:
        return z
    if not threshold > 0:
        raise ConfigError(f"a z truncation threshold must be > 0, got {threshold}")
    bad = z.abs() > threshold
    while bad.any():
        z[bad] = torch.randn(int(bad.sum()), generator=generator)
        bad = z.abs() > threshold
    return z


class GeneratorHandle:
    """A trained generator as the commands see it.

    ``G`` is ``G(z, raw condition)``: a bare net (:class:`gankit.nets.common.Generator`) or a
    conditioned wrapper holding ``net`` and its condition ``encoder``. The handle puts it in
    eval mode while it uses it (the fixed noise maps, no w_avg update, batch-norm statistics)
    and restores the mode after, so a live net being trained can be looked at too."""

    def __init__(self, G: nn.Module, spec: GeneratorSpec, space: nn.Module | None = None):
        self.G = G
        self.spec = spec
        # a conditioned wrapper (nets/condition.py) holds the net and the encoder of raw conditions
        self.encoder = getattr(G, "encoder", None)
        self.net = G.net if self.encoder is not None else G
        self.space = space if space is not None else _condition_space(spec)
        if getattr(self.net, "z_dim", spec.z_dim) != spec.z_dim:
            raise ConfigError(f"the net takes z of {self.net.z_dim} dimensions but the spec says {spec.z_dim}")

    @classmethod
    def from_model(cls, model: nn.Module, use_ema: bool = True) -> "GeneratorHandle":
        """The handle of a trained model's generator (its EMA copy unless ``use_ema=False``)."""
        return cls(model.latent_generator(use_ema), spec_of_model(model), model.space)

    # ---- what the generator declares -------------------------------------------------------
    @property
    def device(self) -> torch.device:
        p = next(self.G.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def z_dim(self) -> int:
        return self.spec.z_dim

    @property
    def conditioning(self) -> Conditioning:
        return self.spec.conditioning

    @property
    def has_mapping(self) -> bool:
        return self.net.w_dim > 0

    @property
    def num_ws(self) -> int:
        """Style layers (entries of w+); 0 for a net without styles."""
        return self.net.num_ws

    @property
    def working_space(self) -> str:
        """Where interpolation and edits happen: w with a mapping net, else z."""
        return "w" if self.has_mapping else "z"

    def latent_spaces(self) -> dict[str, LatentSpace]:
        spaces = {"z": LatentSpace("z", (self.z_dim,), "normal")}
        if self.has_mapping:
            spaces["w"] = LatentSpace("w", (self.net.w_dim,), "mapped")
            spaces["w+"] = LatentSpace("w+", (self.num_ws, self.net.w_dim), "mapped")
        return spaces

    def noise_inputs(self) -> list[Tensor]:
        return self.net.noise_inputs()

    def w_avg(self) -> Tensor:
        return self.net.w_average()

    def latent_weight(self) -> tuple[str, Tensor]:
        """``(space, A [out, dim])``: the first weight the latent meets (SeFa reads it)."""
        space, a = self.net.latent_weight()
        return space, a.detach().float()

    def describe(self) -> dict[str, Any]:
        """Everything declared, JSON-able (``gankit directions`` and exports record it)."""
        return {**self.spec.to_dict(),
                "latent_spaces": {k: asdict(v) for k, v in self.latent_spaces().items()},
                "truncation": "psi toward w_avg" if self.has_mapping else "z threshold",
                "style_layers": self.num_ws, "noise_inputs": len(self.noise_inputs())}

    def require_space(self, space: str) -> None:
        """Unsupported unless the net has latent ``space`` (z, w or w+)."""
        if space not in ("z", "w", "w+"):
            raise ConfigError(f"unknown latent space '{space}'; use z, w or w+")
        if space not in self.latent_spaces():
            raise Unsupported(f"the {self.net.net_name} generator has no mapping net, so no {space} "
                              f"space (it takes z only)")

    # ---- conditions ---------------------------------------------------------------------------
    def conditions(self, n: int, text: str | None = None) -> Tensor | None:
        """``n`` raw conditions: ``text`` parsed (a class name/number or tag words), or the
        classes in turn; None for an unconditional generator (which refuses ``text``)."""
        if self.space is None:
            if text is not None:
                raise Unsupported(f"the {self.spec.net} generator is unconditional; drop the condition")
            return None
        c = self.space.parse(text, n) if text is not None else self.space.default(n)
        return c.to(self.device)

    def _encoded(self, c: Tensor | None, n: int) -> Tensor | None:
        if self.space is not None and c is None:
            c = self.conditions(n)
        if c is None or self.encoder is None:
            return c
        return self.encoder(c.to(self.device))

    # ---- sampling, mapping, synthesis -----------------------------------------------------------
    def check_truncation(self, truncation: float | None) -> None:
        """ConfigError for a truncation this generator's kind of truncation cannot take."""
        if truncation is None:
            return
        if self.has_mapping and not 0.0 <= truncation <= 1.0:
            raise ConfigError(f"--truncation is psi, between 0 and 1 for the {self.spec.net} "
                              f"generator (1 = none), got {truncation}")
        if not self.has_mapping and not truncation > 0:
            raise ConfigError(f"--truncation is a z threshold > 0 for the {self.spec.net} "
                              f"generator (smaller = less variety), got {truncation}")

    def sample_z(self, n: int, seed: int = 0, truncation: float | None = None) -> Tensor:
        """``n`` latents z from seed ``seed`` (the same as ``gankit sample`` draws), truncated
        at ``truncation`` (see the module docstring) when given."""
        if n < 1:
            raise ConfigError(f"need at least one sample, got {n}")
        g = torch.Generator().manual_seed(int(seed))
        return truncated_normal(n, self.z_dim, truncation, g).to(self.device)

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation: float | None = None) -> Tensor:
        """``w [B, w_dim]`` of ``z`` under raw conditions ``c``, pulled towards ``w_avg`` by
        psi = ``truncation``; Unsupported for a net without a mapping net."""
        self.check_truncation(truncation)
        with _evaluating(self.G):
            w = self.net.map_latent(z.to(self.device), self._encoded(c, len(z)))
        if truncation is not None and truncation != 1.0:
            avg = self.w_avg().to(w.dtype)
            w = avg + truncation * (w - avg)
        return w

    def to_ws(self, w: Tensor) -> Tensor:
        """``w [B, w_dim]`` -> ``w+ [B, num_ws, w_dim]`` (the same w in every style layer)."""
        self.require_space("w+")
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def draw(self, n: int, seed: int = 0, truncation: float | None = None,
             c: Tensor | None = None) -> Tensor:
        """``n`` latents in :attr:`working_space`, truncated: w (psi) or z (threshold)."""
        self.check_truncation(truncation)
        if self.has_mapping:
            with torch.no_grad():
                return self.mapping(self.sample_z(n, seed), c, truncation)
        return self.sample_z(n, seed, truncation)

    def synthesize(self, latent: Tensor, c: Tensor | None = None, space: str = "z") -> Tensor:
        """Samples from latents in ``space`` (z, w or w+) under raw conditions ``c`` (the
        classes in turn when None). Differentiable: wrap in ``torch.no_grad()`` to sample."""
        self.require_space(space)
        with _evaluating(self.G):
            return self._synthesize(latent.to(self.device), c, space)

    def _synthesize(self, latent: Tensor, c: Tensor | None, space: str) -> Tensor:
        if space == "z":
            if self.has_mapping:
                return self.net.synthesize_ws(self.to_ws(self.mapping(latent, c)))
            return self.net(latent, self._encoded(c, len(latent)))
        ws = self.to_ws(latent) if space == "w" else latent
        return self.net.synthesize_ws(ws)

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, c: Tensor | None = None,
                 truncation: float | None = None, batch_size: int = 500) -> Tensor:
        """``n`` samples (float, on the CPU) from seed ``seed``, in batches."""
        c = c if c is not None else self.conditions(n)
        latents = self.draw(n, seed, truncation, c)
        outs = []
        for start in range(0, n, batch_size):
            part = None if c is None else c[start:start + batch_size]
            outs.append(self.synthesize(latents[start:start + batch_size], part,
                                        self.working_space).float().cpu())
        return torch.cat(outs)


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def _condition_space(spec: GeneratorSpec) -> nn.Module | None:
    """The ConditionSpace of a spec's labels or tags (rebuilt as a model would from its data)."""
    from gankit.nets.condition import ConditionSpace

    cond = spec.conditioning
    if cond.kind == "none":
        return None
    if cond.kind == "image":
        raise Unsupported("an image-conditioned generator (a translator) has no latent to use here; "
                          "use gankit translate")
    info = DataInfo("image" if spec.is_image else "vector", tuple(spec.out_shape),
                    num_classes=cond.n_classes, class_names=list(cond.class_names), vocab=list(cond.vocab))
    return ConditionSpace("label" if cond.kind == "labels" else "text", info, cond.max_len or 20)


def require_images(handle: GeneratorHandle, what: str) -> None:
    """GankitError unless the generator draws images (``what`` names the command)."""
    if not handle.spec.is_image:
        raise GankitError(f"{what} draws images; this generator's samples are vectors of shape "
                          f"{tuple(handle.spec.out_shape)}")
