"""Adversarial objectives as pure functions of the discriminator's raw outputs.

``d_loss(real_out, fake_out)`` and ``g_loss(fake_out, real_out)`` take pre-activation logits
or critic values of any shape ([B], a PatchGAN map [B, 1, h, w], ...) and average over every
element. Both are minimised: by D and by G respectively. Most D losses are a mean of one term
per real output plus a mean of one per fake output (``real_term``, ``fake_term``), so a D that
scores only some elements (a prefix mask) averages the same terms over those:
:func:`masked_d_loss`. A relativistic objective compares each side with the other, so its D
loss does not split (``pair_d_loss``) and its G loss needs D's outputs on reals too
(``g_sees_real``); a model whose G step does not compute them refuses it
(:meth:`gankit.models.adversarial.AdversarialLoss.require`).

The original game has two generator losses that must not be confused: ``minimax`` is the
saturating ``log(1 - D(G(z)))`` of the minimax value function, whose gradient vanishes when
D confidently rejects fakes; ``nonsaturating`` is the ``-log D(G(z))`` heuristic that is
used in practice. Sigmoid probabilities are never formed: ``-log sigmoid(v) = softplus(-v)``
and ``-log(1 - sigmoid(v)) = softplus(v)`` stay finite for any logit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor
from torch.nn import functional as F

from gankit.errors import ConfigError
from gankit.objectives.fdiv import FDIVERGENCES, get_fdivergence
from gankit.registry import Registry

FGAN_G_MODES = ("nonsaturating", "saturating")


@dataclass(frozen=True)
class Objective:
    """A named pair of losses; the model adds the penalty and clipping it asks for.

    D's loss is either split into element-wise terms (``real_term``, ``fake_term``) or, where
    the sides interact, one function ``pair_d_loss(real_out, fake_out) -> scalar`` (the terms
    are then None). ``g_fn`` is ``fake_out -> scalar``, or ``(fake_out, real_out) -> scalar``
    when ``g_sees_real``.
    """

    name: str
    real_term: Callable[[Tensor], Tensor] | None  # D's loss per real output (element-wise)
    fake_term: Callable[[Tensor], Tensor] | None  # D's loss per fake output (element-wise)
    g_fn: Callable[..., Tensor]  # minimised by G
    default_penalty: str = "none"  # "gp" for wgan-gp
    default_clip: float = 0.0  # 0.01 for wgan (weight clipping)
    # The D output that separates "real" from "fake" votes (ADA's overfitting heuristic counts
    # reals above it): 0 for logits and the hinge, 0.5 between LSGAN's targets 0 and 1; None
    # where no fixed value has that meaning (a WGAN critic's offset is arbitrary).
    decision_threshold: float | None = None

    pair_d_loss: Callable[[Tensor, Tensor], Tensor] | None = None  # D's loss that does not split
    g_sees_real: bool = False  # g_fn takes D's outputs on reals too

    @property
    def splits(self) -> bool:
        """Whether D's loss is a per-real plus a per-fake term (what a mask can average)."""
        return self.pair_d_loss is None

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """(real_out, fake_out) -> scalar, minimised by D (split: the mean of each side's terms)."""
        if self.pair_d_loss is not None:
            return self.pair_d_loss(real_out, fake_out)
        return self.real_term(real_out).mean() + self.fake_term(fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """(fake_out, real_out) -> scalar, minimised by G; ``real_out`` (D's outputs on a real
        batch, no gradient needed) is read only when ``g_sees_real``."""
        if not self.g_sees_real:
            return self.g_fn(fake_out)
        if real_out is None:
            raise ValueError(f"the '{self.name}' objective's G loss needs D's outputs on reals")
        return self.g_fn(fake_out, real_out)


def masked_d_loss(objective: Objective, real_out: Tensor, fake_out: Tensor, real_mask: Tensor,
                  fake_mask: Tensor) -> Tensor:
    """``objective``'s D loss averaged over the elements a 0/1 mask keeps on each side
    (e.g. the valid prefixes of token sequences scored one prefix at a time). Only for an
    objective that :attr:`~Objective.splits`."""
    if not objective.splits:
        raise ValueError(f"the '{objective.name}' objective's D loss does not split into "
                         "per-element terms, so it cannot be masked")
    real = (objective.real_term(real_out) * real_mask).sum() / real_mask.sum()
    return real + (objective.fake_term(fake_out) * fake_mask).sum() / fake_mask.sum()


ObjectiveFactory = Callable[[str], Objective]

# name -> factory(fgan_g) -> Objective; only the f-GAN factories use fgan_g.
OBJECTIVES: Registry[ObjectiveFactory] = Registry("objective")


# ---- the original GAN and its relatives -----------------------------------------------------
# D's terms: -log D(x) for reals, -log(1 - D(G(z))) for fakes, with D = sigmoid(logit).
def _bce_real(real_out: Tensor) -> Tensor:
    return F.softplus(-real_out)


def _bce_fake(fake_out: Tensor) -> Tensor:
    return F.softplus(fake_out)


def _minimax_g_loss(fake_out: Tensor) -> Tensor:
    # log(1 - sigmoid(v)) = -softplus(v): the saturating loss, flat where D(G(z)) -> 0.
    return -F.softplus(fake_out).mean()


def _nonsaturating_g_loss(fake_out: Tensor) -> Tensor:
    return F.softplus(-fake_out).mean()  # -log sigmoid(v)


# Halving each element is exact, so the mean of the halves is the half of the mean, bit for bit.
def _lsgan_real(real_out: Tensor) -> Tensor:
    return 0.5 * (real_out - 1.0).square()


def _lsgan_fake(fake_out: Tensor) -> Tensor:
    return 0.5 * fake_out.square()


def _lsgan_g_loss(fake_out: Tensor) -> Tensor:
    return 0.5 * (fake_out - 1.0).square().mean()


def _hinge_real(real_out: Tensor) -> Tensor:
    return F.relu(1.0 - real_out)


def _hinge_fake(fake_out: Tensor) -> Tensor:
    return F.relu(1.0 + fake_out)


def _critic_g_loss(fake_out: Tensor) -> Tensor:
    return -fake_out.mean()


def _wasserstein_real(real_out: Tensor) -> Tensor:
    return -real_out  # mean(-r) + mean(f) is mean(f) - mean(r) to the bit


def _wasserstein_fake(fake_out: Tensor) -> Tensor:
    return fake_out


_FIXED: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("minimax", _bce_real, _bce_fake, _minimax_g_loss, decision_threshold=0.0),
        Objective("nonsaturating", _bce_real, _bce_fake, _nonsaturating_g_loss, decision_threshold=0.0),
        Objective("lsgan", _lsgan_real, _lsgan_fake, _lsgan_g_loss, decision_threshold=0.5),
        Objective("hinge", _hinge_real, _hinge_fake, _critic_g_loss, decision_threshold=0.0),
        Objective("wgan", _wasserstein_real, _wasserstein_fake, _critic_g_loss, default_clip=0.01),
        Objective("wgan-gp", _wasserstein_real, _wasserstein_fake, _critic_g_loss, default_penalty="gp"),
    )
}


def _fixed_factory(objective: Objective) -> ObjectiveFactory:
    def factory(fgan_g: str) -> Objective:
        if fgan_g != "nonsaturating":
            raise ConfigError(
                f"loss.fgan_g={fgan_g} applies only to the f-GAN objectives "
                f"({', '.join(FDIVERGENCES.names())}), not '{objective.name}'; remove it "
                "(for the saturating original game use loss.name=minimax)"
            )
        return objective

    return factory


for _name, _objective in _FIXED.items():
    OBJECTIVES.add(_name, _fixed_factory(_objective))


# ---- relativistic GANs (Jolicoeur-Martineau 2018) --------------------------------------------
# D estimates how much more realistic a real sample is than a fake one. The relativistic
# standard GAN compares real i with fake i: D~(x_r, x_f) = sigmoid(C(x_r) - C(x_f)); the
# relativistic *average* GAN compares each sample with the other side's mean:
# D~(x_r) = sigmoid(C(x_r) - E C(x_f)), D~(x_f) = sigmoid(C(x_f) - E C(x_r)). Both are the
# standard game's binary cross-entropy on those probabilities, with G playing it with the
# labels swapped (so G's loss needs D's outputs on reals). Written as the paper's equations,
# a sum of two means (its reference code halves the average one; the optimum is the same).
def _rsgan_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return F.softplus(-(real_out - fake_out)).mean()  # -log sigmoid(C(x_r) - C(x_f))


def _rsgan_g_loss(fake_out: Tensor, real_out: Tensor) -> Tensor:
    return F.softplus(-(fake_out - real_out)).mean()


def _ragan_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    # -log D~(x_r) on reals, -log(1 - D~(x_f)) on fakes; the means are over every element
    return (F.softplus(-(real_out - fake_out.mean())).mean()
            + F.softplus(fake_out - real_out.mean()).mean())


def _ragan_g_loss(fake_out: Tensor, real_out: Tensor) -> Tensor:
    # the same with the labels swapped: -log D~(x_f) - log(1 - D~(x_r))
    return (F.softplus(-(fake_out - real_out.mean())).mean()
            + F.softplus(real_out - fake_out.mean()).mean())


for _name, _d, _g in (("rsgan", _rsgan_d_loss, _rsgan_g_loss), ("ragan", _ragan_d_loss, _ragan_g_loss)):
    OBJECTIVES.add(_name, _fixed_factory(Objective(_name, None, None, _g, pair_d_loss=_d, g_sees_real=True)))


# ---- f-GAN ----------------------------------------------------------------------------------
def fgan_objective(divergence: str, fgan_g: str = "nonsaturating") -> Objective:
    """The f-GAN objective of one divergence in :data:`gankit.objectives.fdiv.FDIVERGENCES`.

    D maximises ``F = E_P[g_f(v)] - E_Q[f*(g_f(v))]``, so ``d_loss = -F`` (to the bit: the
    terms are ``-g_f(v)`` on reals and ``f*(g_f(v))`` on fakes). With
    ``fgan_g="saturating"`` G minimises F itself (only its second term depends on G); with
    ``"nonsaturating"``, the paper's practical choice, G maximises ``E_Q[g_f(v)]``.
    """
    row = get_fdivergence(divergence)

    def real_term(real_out: Tensor) -> Tensor:
        return -row.activation(real_out)

    def saturating_g_loss(fake_out: Tensor) -> Tensor:
        return -row.conjugate_of_activation(fake_out).mean()

    def nonsaturating_g_loss(fake_out: Tensor) -> Tensor:
        return -row.activation(fake_out).mean()

    _check_fgan_g(fgan_g)
    g_fn = saturating_g_loss if fgan_g == "saturating" else nonsaturating_g_loss
    return Objective(divergence, real_term, row.conjugate_of_activation, g_fn)


def _fgan_factory(divergence: str) -> ObjectiveFactory:
    return lambda fgan_g: fgan_objective(divergence, fgan_g)


for _name in FDIVERGENCES.names():
    OBJECTIVES.add(_name, _fgan_factory(_name))


# ---- lookup ---------------------------------------------------------------------------------
def _check_fgan_g(fgan_g: str) -> None:
    if fgan_g not in FGAN_G_MODES:
        raise ConfigError(f"loss.fgan_g must be one of {', '.join(FGAN_G_MODES)}, got '{fgan_g}'")


def get_objective(name: str, fgan_g: str = "nonsaturating") -> Objective:
    """The objective called ``name`` (see :data:`OBJECTIVES`).

    ``fgan_g`` picks the generator loss of the f-GAN objectives; an unknown name or mode
    raises :class:`~gankit.errors.ConfigError` naming the closest valid choice.
    """
    _check_fgan_g(fgan_g)
    return OBJECTIVES.get(name)(fgan_g)
