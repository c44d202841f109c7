"""Adversarial objectives as pure functions of the discriminator's raw outputs.

``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)`` take pre-activation logits or critic
values of any shape ([B], a PatchGAN map [B, 1, h, w], ...) and average over every element.
Both are minimised: by D and by G respectively. Every D loss here is a mean of one term per
real output plus a mean of one per fake output (``real_term``, ``fake_term``), so a D that
scores only some elements (a prefix mask) averages the same terms over those:
:func:`masked_d_loss`.

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
    """A named pair of losses; the model adds the penalty and clipping it asks for."""

    name: str
    real_term: Callable[[Tensor], Tensor]  # D's loss per real output (element-wise)
    fake_term: Callable[[Tensor], Tensor]  # D's loss per fake output (element-wise)
    g_loss: Callable[[Tensor], Tensor]  # fake_out -> scalar, minimised by G
    default_penalty: str = "none"  # "gp" for wgan-gp
    default_clip: float = 0.0  # 0.01 for wgan (weight clipping)
    # The D output that separates "real" from "fake" votes (ADA's overfitting heuristic counts
    # reals above it): 0 for logits and the hinge, 0.5 between LSGAN's targets 0 and 1; None
    # where no fixed value has that meaning (a WGAN critic's offset is arbitrary).
    decision_threshold: float | None = None

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """(real_out, fake_out) -> scalar, minimised by D: the mean of each side's terms."""
        return self.real_term(real_out).mean() + self.fake_term(fake_out).mean()


def masked_d_loss(objective: Objective, real_out: Tensor, fake_out: Tensor, real_mask: Tensor,
                  fake_mask: Tensor) -> Tensor:
    """``objective``'s D loss averaged over the elements a 0/1 mask keeps on each side
    (e.g. the valid prefixes of token sequences scored one prefix at a time)."""
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
    g_loss = saturating_g_loss if fgan_g == "saturating" else nonsaturating_g_loss
    return Objective(divergence, real_term, row.conjugate_of_activation, g_loss)


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
