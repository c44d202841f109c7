"""The contract between a generative model and the generic trainer.

A model owns its networks, its optimizers and its update. The trainer only knows:

* ``schedule()``: the phases of one training step, e.g. ``[D, D, D, D, D, G]`` for a WGAN
  with ``n_critic=5``. The trainer runs them in order and can stop (and resume) between any
  two of them;
* ``train_phase(phase, batch, step)``: one update, returning detached scalar tensors to log
  (read by the trainer only every ``log_every`` steps, so no host-device sync per step; kept
  until then, so fresh tensors such as ``loss.detach()``, never views of changing state);
* ``ema_targets()``: the networks to keep an exponential moving average of;
* ``sample_inputs`` / ``decode``: what a sample grid, ``gankit sample`` and the metrics use.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, NamedTuple

import numpy as np
from PIL import Image

import torch
from torch import nn

from gankit import distributed
from gankit.config import RunConfig
from gankit.data.info import DataInfo
from gankit.errors import DataError, GankitError, Unsupported
from gankit.data.folders import to_uint8

if TYPE_CHECKING:
    from gankit.nets.condition import ConditionSpace

Batch = dict[str, torch.Tensor]


def _fused_ok(params: list[nn.Parameter]) -> bool:
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


class Phase(NamedTuple):
    name: str
    needs_batch: bool = True


def gradient_norm(module: nn.Module | list[nn.Parameter]) -> torch.Tensor:
    """The L2 norm of all of ``module``'s gradients together (0 when it has none); a list of
    parameters is taken as they are."""
    params = module if isinstance(module, list) else module.parameters()
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def ema_decay(train_cfg, step: int) -> float:
    """The EMA decay used at ``step``: 0 (copy) before ``ema_start``, then ``ema``, capped by the
    warm-up (1 + t) / (10 + t) when ``ema_warmup`` is on (t = steps since ``ema_start``)."""
    if step < train_cfg.ema_start:
        return 0.0
    if train_cfg.ema_warmup:
        t = step - train_cfg.ema_start
        return min(train_cfg.ema, (1.0 + t) / (10.0 + t))
    return train_cfg.ema


class GenerativeModel(nn.Module):
    """Base class of every model (GAN, pix2pix, CycleGAN, SeqGAN, VAE, flow, GLO...)."""

    kind: ClassVar[str] = ""

    def __init__(self, cfg: RunConfig, info: DataInfo):
        super().__init__()
        self.cfg = cfg
        self.info = info
        self.ema_nets = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        # fp16 loss scalers, one per optimizer (see setup_scalers); empty = no scaling
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # Models conditioned on data.condition (label or text) set their ConditionSpace here;
        # batch_conditions, sample_conditions and parse_condition then serve them all.
        self.space: ConditionSpace | None = None

    # ---- what subclasses provide -------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def schedule(self) -> list[Phase]:
        raise NotImplementedError

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def step_is_atomic(self) -> bool:
        """True when a phase hands state to the next one that no checkpoint holds: a stop
        request then waits for the end of the step."""
        return False

    def ema_targets(self) -> dict[str, nn.Module]:
        """Networks whose EMA is kept (``{'G': self.G}`` for a GAN)."""
        return {}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None,
                      c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Random inputs of ``n`` samples (latents, conditions) on the model's device."""
        raise NotImplementedError

    def decode(self, inputs: dict[str, torch.Tensor], use_ema: bool = True) -> torch.Tensor:
        """Map inputs from :meth:`sample_inputs` to samples in data space."""
        raise NotImplementedError

    # ---- shared machinery ----------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        # Read on every noise draw, so the first parameter is remembered rather than searched
        # for each time; its .device follows .to() (which keeps Parameter objects), and _apply
        # forgets it anyway.
        first = self.__dict__.get("_first_param")
        if first is None:
            first = next(self.parameters(), None)
            if first is None:
                return torch.device("cpu")
            self.__dict__["_first_param"] = first
        return first.device

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .half(), memory formats
        self.__dict__.pop("_first_param", None)
        self.__dict__.pop("_ema_cache", None)
        self.__dict__.pop("_param_cache", None)
        return super()._apply(fn, recurse)

    def randn(self, n: int, *shape: int) -> torch.Tensor:
        """Noise for this rank's ``n`` items: every rank draws the global batch and keeps its
        slice, so N ranks consume the same random stream as one process would."""
        return self._global_draw(torch.randn, n, shape)

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """U[0, 1) draws for this rank's ``n`` items, sliced from the global draw as in :meth:`randn`."""
        return self._global_draw(torch.rand, n, shape)

    def _global_draw(self, draw, n: int, shape: tuple[int, ...]) -> torch.Tensor:
        world = distributed.world_size()
        if world == 1:
            return draw(n, *shape, device=self.device)
        rank = distributed.rank()
        return draw(n * world, *shape, device=self.device)[rank * n:(rank + 1) * n]

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None,
                 c: torch.Tensor | None = None, use_ema: bool = True,
                 batch_size: int = 500) -> torch.Tensor:
        """``n`` samples in data space, produced in batches (never one huge forward)."""
        inputs = self.sample_inputs(n, generator=generator, c=c)
        outs = []
        for start in range(0, n, batch_size):
            part = {k: v[start:start + batch_size] for k, v in inputs.items()}
            outs.append(self.decode(part, use_ema=use_ema).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0)

    def write_samples(self, samples: torch.Tensor, out: Path) -> str:
        """Write ``gankit sample`` output: one PNG per image, or ``samples.npy`` for vectors.

        Models whose samples are something else (sentences) override this."""
        out.mkdir(parents=True, exist_ok=True)
        if samples.dim() == 4:
            for i, img in enumerate(to_uint8(samples)):
                Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out / f"{i + 1:05d}.png")
            return f"{len(samples)} images to {out}"
        np.save(out / "samples.npy", samples.numpy())
        return f"{tuple(samples.shape)} samples to {out / 'samples.npy'}"

    def parse_condition(self, text: str, n: int) -> torch.Tensor:
        """``--cond`` text -> ``n`` raw conditions: a class name or number (labels) or words of
        the vocabulary (text). Models that encode conditions their own way override it."""
        if self.space is None:
            raise GankitError(f"model kind '{self.kind}' is unconditional; drop --cond")
        return self.space.parse(text, n)

    def batch_conditions(self, batch: Batch | None) -> torch.Tensor | None:
        """The raw conditions of a training batch (None for an unconditional model)."""
        if self.space is None:
            return None
        if batch is None or "y" not in batch:
            raise DataError(f"data.condition={self.cfg.data.condition} needs labelled batches, "
                            f"but '{self.info.name}' gives none")
        return self.space.from_labels(batch["y"])

    def sample_conditions(self, n: int, c: torch.Tensor | None) -> torch.Tensor | None:
        """Raw conditions for ``n`` samples: ``c`` (one per sample) or the classes in turn
        (0, 1, ..., K-1, 0, ...); None for an unconditional model."""
        if self.space is None:
            return None
        c = self.space.default(n) if c is None else c
        if len(c) != n:
            raise ValueError(f"{n} samples need {n} conditions, got {len(c)}")
        return c

    def translate_path(self, source: Path, out: Path, direction: str = "AtoB") -> str:
        """``gankit translate``: map a folder of images (or a text file) to ``out``."""
        raise GankitError(f"model kind '{self.kind}' does not translate; train pix2pix, cyclegan or a style model")

    # Why the commands that use a trained generator (project, directions, edit, mix, export)
    # cannot use this model; a model with a latent generator overrides latent_generator.
    no_latent_generator: ClassVar[str] = ("has no generator from a N(0, I) latent to sample, "
                                          "project or edit")

    def latent_generator(self, use_ema: bool = True) -> nn.Module:
        """The net ``G(z, raw condition)`` behind the samples (EMA or live), for
        :mod:`gankit.use`; models without one refuse in one line."""
        raise Unsupported(f"model kind '{self.kind}' {self.no_latent_generator}")

    def net(self, name: str, use_ema: bool = True) -> nn.Module:
        """The EMA copy of a network when there is one and it is asked for, else the live one."""
        if use_ema and name in self.ema_nets:
            return self.ema_nets[name]
        return getattr(self, name)

    def setup_ema(self) -> None:
        """Create EMA copies; called by the trainer when ``train.ema > 0``."""
        self.__dict__.pop("_ema_cache", None)
        self.__dict__.pop("_param_cache", None)  # a model optimized as a whole gains parameters
        for name, module in self.ema_targets().items():
            shadow = copy.deepcopy(module).eval()
            shadow.requires_grad_(False)
            self.ema_nets[name] = shadow

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        decay = ema_decay(self.cfg.train, step)
        # parameters lerp towards the live net; buffers (BN statistics) are copied
        for ema_p, live_p, ema_b, live_b in self._ema_lists():
            if ema_p:
                torch._foreach_lerp_(ema_p, live_p, 1.0 - decay)
            if ema_b:
                torch._foreach_copy_(ema_b, live_b)

    def _ema_lists(self) -> list[tuple[list[torch.Tensor], ...]]:
        """(EMA params, live params, EMA buffers, live buffers) per EMA target, gathered once:
        walking the module tree every step costs more than the update of a small net."""
        lists = self.__dict__.get("_ema_cache")
        if lists is None:
            lists = []
            for name, module in self.ema_targets().items():
                shadow = self.ema_nets[name]
                lists.append((list(shadow.parameters()), list(module.parameters()),
                              list(shadow.buffers()), list(module.buffers())))
            self.__dict__["_ema_cache"] = lists
        return lists

    def compile_targets(self) -> dict[str, nn.Module]:
        """Networks that ``train.compile`` compiles: every child net with parameters (not the
        EMA copies, which only sample). Models drop the nets that need double backward."""
        return {name: m for name, m in self.named_children()
                if name != "ema_nets" and next(m.parameters(), None) is not None}

    def make_optimizer(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """Adam or RMSprop per ``cfg.optim``. ``impl=auto`` takes the fused Adam kernel where
        torch has one for the parameters' device (3-4x faster than the per-tensor loop on the
        CPU, and on CUDA it steps under the fp16 scaler without a host sync)."""
        o = self.cfg.optim
        params = [p for p in params if p.requires_grad]
        kw: dict[str, Any] = {}
        if o.impl == "auto" and o.name == "adam" and _fused_ok(params):
            kw["fused"] = True
        elif o.impl == "foreach":
            kw["foreach"] = True
        elif o.impl == "fused":
            kw["fused"] = True
        elif o.impl == "single":
            kw["foreach"] = False
        if o.name == "adam":
            return torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2),
                                    weight_decay=o.weight_decay, **kw)
        kw.pop("fused", None)
        return torch.optim.RMSprop(params, lr=lr, weight_decay=o.weight_decay, **kw)

    def set_precision(self, amp: str) -> None:
        """Train in ``amp`` (``none``, ``bf16`` or ``fp16``: ``train.amp`` resolved for the
        device by :func:`gankit.runtime.resolve_amp`; the trainer calls this once)."""
        self.__dict__["_amp"] = amp

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast in the run's precision. Weights and optimiser state stay fp32 (autocast
        casts a copy per forward region); penalties run outside it, in fp32."""
        amp = self.__dict__.get("_amp")
        if amp is None:
            from gankit.runtime import resolve_amp

            amp = self.__dict__["_amp"] = resolve_amp(self.cfg.train.amp, self.device)
        if amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def setup_scalers(self, device_type: str = "cuda") -> None:
        """One fp16 loss scaler per optimizer (call after :attr:`optimizers` is set).

        A shared scaler updated after every optimizer's step would let D's overflow halve
        G's scale and count D's clean steps toward G's growth; with one scaler each, every
        ``update()`` follows exactly one ``step()`` of its own optimizer."""
        self.scalers = {name: torch.amp.GradScaler(device_type) for name in self.optimizers}

    def optimize(self, name: str, loss: torch.Tensor, module: nn.Module) -> torch.Tensor:
        """zero_grad, backward, average gradients over ranks, step (with its fp16 scaler).

        Returns the global L2 norm of the (unscaled) gradients, a diagnostic that stays on the
        device: the trainer averages it per log tick like any loss."""
        opt = self.optimizers[name]
        scaler = self.scalers.get(name)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        params = self._parameters_of(module)
        distributed.all_reduce_grads(params)
        norm = gradient_norm(params)
        if scaler is not None:
            norm = norm / scaler._get_scale_async()  # a tensor: get_scale() syncs the host
            scaler.step(opt)  # skipped when this optimizer's gradients overflowed
            scaler.update()
        else:
            opt.step()
        return norm

    def _parameters_of(self, module: nn.Module) -> list[nn.Parameter]:
        """``module``'s parameters, listed once: walking the module tree on every update
        costs more than the gradient norm of a small net."""
        cache = self.__dict__.setdefault("_param_cache", {})
        params = cache.get(id(module))
        if params is None or params[0] is not module:
            params = cache[id(module)] = (module, list(module.parameters()))
        return params[1]

    @staticmethod
    def train_only(active: nn.Module, *frozen: nn.Module) -> None:
        """Let gradients reach ``active`` alone in this phase (saves D's grads in G's phase)."""
        active.requires_grad_(True)
        for m in frozen:
            m.requires_grad_(False)
