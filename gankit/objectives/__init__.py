"""Adversarial objectives, the f-divergence table, discriminator penalties, reconstruction."""
from gankit.objectives.adversarial import (
    FGAN_G_MODES,
    OBJECTIVES,
    Objective,
    fgan_objective,
    get_objective,
    masked_d_loss,
)
from gankit.objectives.fdiv import FDIVERGENCES, FDivergence, f_divergence, variational_bound
from gankit.objectives.penalties import clip_weights, gradient_penalty, r1_penalty
from gankit.objectives.reconstruction import l1, l1_loss, mse, mse_loss

__all__ = [
    "FDIVERGENCES", "FDivergence", "FGAN_G_MODES", "OBJECTIVES", "Objective", "clip_weights",
    "f_divergence", "fgan_objective", "get_objective", "gradient_penalty", "l1", "l1_loss",
    "masked_d_loss", "mse", "mse_loss", "r1_penalty", "variational_bound",
]
