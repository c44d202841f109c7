"""Tiny untrained GANs of every latent-generator family, built without data or training."""
from __future__ import annotations

import pytest

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.models import MODELS

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NETS = {
    "dcgan": {"G.name": "dcgan", "G.width": 4, "G.norm": "none", "D.name": "dcgan", "D.width": 4},
    "resnet": {"G.name": "resnet", "G.width": 4, "G.norm": "none", "D.name": "resnet", "D.width": 4},
    "stylegan2": {"G.name": "stylegan2", "G.width": 4, "G.depth": 2, "D.name": "stylegan2",
                  "D.width": 4, "D.norm": "none", "loss.penalty": "r1"},
    "mlp": {"G.name": "mlp", "G.width": 16, "G.depth": 1, "G.norm": "none", "D.name": "mlp",
            "D.width": 16, "D.depth": 1, "D.norm": "none"},
}
SIZES = {"dcgan": 32, "resnet": 32, "stylegan2": 16, "mlp": 8}


def tiny_gan(net: str = "dcgan", condition: str = "none", channels: int = 3, size: int | None = None,
             z_dim: int = 8, **overrides):
    """An untrained GAN model of ``net`` on ``channels`` x size x size images, in eval mode."""
    size = size or SIZES[net]
    items = {"data.source": "digits", "data.condition": condition, "model.z_dim": z_dim,
             "train.ema": 0.0, "train.progress": False, **NETS[net], **overrides}
    cfg = load_config(None, [f"{k}={v}" for k, v in items.items()])
    info = DataInfo("image", (channels, size, size), name="tiny", num_classes=10, class_names=WORDS,
                    vocab=["<pad>", "<unk>", *WORDS])
    return MODELS.get("gan")(cfg, info).eval()


@pytest.fixture
def make_gan():
    return tiny_gan


def vivid(model, gain: float = 1.5):
    """Re-draw the generator's weights (He init scaled by ``gain``, zero biases), so an
    untrained net's samples differ visibly from one latent to another (DCGAN's N(0, 0.02)
    init maps every z to nearly the same flat image)."""
    import torch

    torch.manual_seed(0)
    for m in model.G.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            with torch.no_grad():
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu").mul_(gain)
                if m.bias is not None:
                    m.bias.zero_()
    return model


@pytest.fixture
def make_vivid_gan():
    return lambda *a, **k: vivid(tiny_gan(*a, **k))
