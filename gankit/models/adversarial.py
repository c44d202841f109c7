"""What every adversarial model (GAN, pix2pix, CycleGAN, the text GANs, style transfer, the
Flow-GAN) shares, written once:

* :func:`adversarial_loss`: the objective ``loss.name`` names, with its discriminator
  penalty and weight clipping resolved (``loss.penalty=auto`` and ``loss.clip=-1`` take the
  objective's defaults: gp for wgan-gp, clipping at 0.01 for wgan);
* :class:`AdversarialLoss`: that resolution, which adds the penalty to D's loss
  (:meth:`~AdversarialLoss.penalise`) and clips D after its step (:meth:`~AdversarialLoss.clip_`);
* :func:`adversarial_optimizers`: the G and D optimizers (``optim.*``: Adam's betas or
  RMSprop, ``lr_g`` and ``lr_d``; ``optim.decay_start`` is applied to them by the trainer);
* :func:`adversarial_schedule`: the phases of one step, ``n_critic`` D then ``n_gen`` G.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

import torch
from torch import Tensor, nn

from gankit.errors import ConfigError
from gankit.objectives import Objective, clip_weights, get_objective, gradient_penalty, r1_penalty

from gankit.models.base import Phase

if TYPE_CHECKING:
    from gankit.config import LossConfig
    from gankit.models.base import GenerativeModel


@dataclass(frozen=True)
class AdversarialLoss:
    """An objective and the regularisers of D that go with it, resolved from ``loss.*``."""

    objective: Objective
    penalty: str  # none | gp | gp-one-sided | r1 (never "auto")
    clip: float  # bound of D's weights after each step; 0 = off
    weight: float  # loss.penalty_weight

    @property
    def name(self) -> str:
        return self.objective.name

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self.objective.d_loss(real_out, fake_out)

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """G's loss; ``real_out`` (D on a real batch) is read only when :attr:`g_sees_real`."""
        return self.objective.g_loss(fake_out, real_out)

    @property
    def g_sees_real(self) -> bool:
        """Whether G's loss compares its fakes with D's outputs on reals (relativistic)."""
        return self.objective.g_sees_real

    def real_scores(self, score: Callable[[], Tensor]) -> Tensor | None:
        """D's outputs on reals for G's loss: ``score()`` (D on a real batch, without a graph:
        they do not depend on G) where the objective reads them, else None and no forward."""
        if not self.g_sees_real:
            return None
        with torch.no_grad():
            return score().float()

    @property
    def regularised(self) -> bool:
        """Whether D gets an input penalty or weight clipping."""
        return self.penalty != "none" or self.clip > 0

    def penalise(self, loss: Tensor, logs: dict[str, Tensor], D: Callable[..., Tensor], real: Tensor,
                 fake: Tensor, c: Tensor | None = None, eps: Callable[[], Tensor] | None = None,
                 scale: float = 1.0) -> Tensor:
        """``loss`` plus D's input penalty (weight ``loss.penalty_weight * scale``; R1 with half
        of it), logged as ``loss/D/gp`` or ``loss/D/r1``. ``eps()`` draws the WGAN-GP
        interpolation weights, one per input of D; it is called only when they are needed."""
        w = self.weight * scale
        if self.penalty in ("gp", "gp-one-sided"):
            gp = gradient_penalty(D, real, fake.float(), c, one_sided=self.penalty == "gp-one-sided",
                                  eps=None if eps is None else eps())
            logs["loss/D/gp"] = gp.detach()
            return loss + w * gp
        if self.penalty == "r1":
            r1 = r1_penalty(D, real, c)
            logs["loss/D/r1"] = r1.detach()
            return loss + 0.5 * w * r1
        return loss

    def clip_(self, D: nn.Module) -> None:
        """Weight clipping of D after its step (original WGAN), when it is on."""
        if self.clip > 0:
            clip_weights(D, self.clip)

    def require(self, kind: str, allowed: Iterable[str] | None = None, why: str = "",
                feeds_real: bool = False) -> AdversarialLoss:
        """Refuse (one line) an objective or a regulariser that ``kind`` cannot use: names
        outside ``allowed`` (every name when None), an objective whose G loss needs D's
        outputs on reals unless ``feeds_real`` (the kind's G step computes them), and any
        penalty or clipping."""
        allowed = tuple(allowed) if allowed is not None else None
        if allowed is not None and self.name not in allowed:
            raise ConfigError(f"model.kind={kind} takes loss.name={' | '.join(allowed)}"
                              f"{f' ({why})' if why else ''}; got loss.name={self.name}")
        if self.g_sees_real and not feeds_real:
            raise ConfigError(f"loss.name={self.name} needs D's outputs on real data in G's loss, "
                              f"which model.kind={kind}'s G step does not compute; use an objective "
                              "such as nonsaturating, lsgan or hinge")
        if self.regularised:
            names = " | ".join(allowed) if allowed is not None else "lsgan, nonsaturating or hinge"
            raise ConfigError(f"{kind} takes no discriminator penalty or weight clipping; use "
                              f"loss.name={names} with loss.penalty=none")
        return self


def adversarial_loss(loss: LossConfig) -> AdversarialLoss:
    """The objective of ``loss.name`` with ``loss.penalty`` and ``loss.clip`` resolved (the
    one place where ``auto`` and ``-1`` become the objective's defaults)."""
    objective = get_objective(loss.name, loss.fgan_g)
    penalty = objective.default_penalty if loss.penalty == "auto" else loss.penalty
    clip = objective.default_clip if loss.clip < 0 else loss.clip
    return AdversarialLoss(objective, penalty, clip, loss.penalty_weight)


def adversarial_optimizers(model: GenerativeModel, G: nn.Module | Iterable[nn.Parameter],
                           D: nn.Module | Iterable[nn.Parameter],
                           g_name: str = "G") -> dict[str, torch.optim.Optimizer]:
    """``{g_name: G's optimizer at optim.lr_g, "D": D's at optim.lr_d}``, both built by
    :meth:`GenerativeModel.make_optimizer` (``optim.name``, betas, weight decay, impl). The
    names are the keys of the optimizers' states in checkpoints."""
    lr = model.cfg.optim
    return {g_name: model.make_optimizer(_parameters(G), lr.lr_g),
            "D": model.make_optimizer(_parameters(D), lr.lr_d)}


def _parameters(net: nn.Module | Iterable[nn.Parameter]) -> Iterable[nn.Parameter]:
    return net.parameters() if isinstance(net, nn.Module) else net


def adversarial_schedule(train, g_needs_batch: bool = False, g_first: bool = False) -> list[Phase]:
    """One step of a D/G pair: ``train.n_critic`` D phases, then ``train.n_gen`` G phases
    (G's first with ``g_first``, as the text GANs do)."""
    d = [Phase("D")] * train.n_critic
    g = [Phase("G", needs_batch=g_needs_batch)] * train.n_gen
    return g + d if g_first else d + g
