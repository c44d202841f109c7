"""Adversarial objectives as pure functions of the discriminator's raw outputs.

``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)`` take pre-activation logits or critic
values of any shape ([B], a PatchGAN map [B, 1, h, w], ...) and average over every element.
Both are minimised: by D and by G respectively.

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
    d_loss: Callable[[Tensor, Tensor], Tensor]  # (real_out, fake_out) -> scalar, minimised by D
    g_loss: Callable[[Tensor], Tensor]  # fake_out -> scalar, minimised by G
    default_penalty: str = "none"  # "gp" for wgan-gp
    default_clip: float = 0.0  # 0.01 for wgan (weight clipping)


ObjectiveFactory = Callable[[str], Objective]

# name -> factory(fgan_g) -> Objective; only the f-GAN factories use fgan_g.
OBJECTIVES: Registry[ObjectiveFactory] = Registry("objective")


# ---- the original GAN and its relatives -----------------------------------------------------
def _bce_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit).
    return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()


def _minimax_g_loss(fake_out: Tensor) -> Tensor:
    # log(1 - sigmoid(v)) = -softplus(v): the saturating loss, flat where D(G(z)) -> 0.
    return -F.softplus(fake_out).mean()


def _nonsaturating_g_loss(fake_out: Tensor) -> Tensor:
    return F.softplus(-fake_out).mean()  # -log sigmoid(v)


def _lsgan_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return 0.5 * (real_out - 1.0).square().mean() + 0.5 * fake_out.square().mean()


def _lsgan_g_loss(fake_out: Tensor) -> Tensor:
    return 0.5 * (fake_out - 1.0).square().mean()


def _hinge_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return F.relu(1.0 - real_out).mean() + F.relu(1.0 + fake_out).mean()


def _critic_g_loss(fake_out: Tensor) -> Tensor:
    return -fake_out.mean()


def _wasserstein_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    return fake_out.mean() - real_out.mean()


_FIXED: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("minimax", _bce_d_loss, _minimax_g_loss),
        Objective("nonsaturating", _bce_d_loss, _nonsaturating_g_loss),
        Objective("lsgan", _lsgan_d_loss, _lsgan_g_loss),
        Objective("hinge", _hinge_d_loss, _critic_g_loss),
        Objective("wgan", _wasserstein_d_loss, _critic_g_loss, default_clip=0.01),
        Objective("wgan-gp", _wasserstein_d_loss, _critic_g_loss, default_penalty="gp"),
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

    D maximises ``F = E_P[g_f(v)] - E_Q[f*(g_f(v))]``, so ``d_loss = -F``. With
    ``fgan_g="saturating"`` G minimises F itself (only its second term depends on G); with
    ``"nonsaturating"``, the paper's practical choice, G maximises ``E_Q[g_f(v)]``.
    """
    row = get_fdivergence(divergence)

    def d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
        return -row.bound(real_out, fake_out)

    def saturating_g_loss(fake_out: Tensor) -> Tensor:
        return -row.conjugate_of_activation(fake_out).mean()

    def nonsaturating_g_loss(fake_out: Tensor) -> Tensor:
        return -row.activation(fake_out).mean()

    _check_fgan_g(fgan_g)
    g_loss = saturating_g_loss if fgan_g == "saturating" else nonsaturating_g_loss
    return Objective(divergence, d_loss, g_loss)


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
