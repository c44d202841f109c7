"""Maximum likelihood (teacher forcing) for token sequences: the baseline every text GAN is
compared against. What it shares with the text GANs is in :mod:`gankit.models.sequence`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.models import register_model
from gankit.models.base import Batch, Phase
from gankit.models.sequence import SequenceModel, SequenceOptions
from gankit.models.sequence import TextGAN, TextGANOptions, check_sequence_data  # noqa: F401  (their old home)


@dataclass
class MLEOptions(SequenceOptions):
    kind: str = "mle"

    def unused_sections(self) -> tuple[str, ...]:
        return ("loss", "D")  # maximum likelihood: no discriminator, no adversarial loss


@register_model
class MLE(SequenceModel):
    """The baseline: an LSTM language model trained by teacher forcing."""

    kind = "mle"
    Options = MLEOptions

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.make_optimizer(self.G.parameters(), self.cfg.optim.lr_g)}

    def schedule(self) -> list[Phase]:
        return [Phase("G")]

    def train_phase(self, phase: str, batch: Batch | None, step: int) -> dict[str, Tensor]:
        return self.mle_step(batch)
