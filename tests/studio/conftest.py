"""Tiny real runs for the studio tests, trained once per session (a few seconds in all):
a tag-conditioned DCGAN and an unconditional StyleGAN2-style net on the built-in faces, a
toy ring, and a pix2pix on a folder of drawn pairs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gankit.config import load_config
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

QUIET = {"train.log_every": 2, "train.sample_every": 0, "train.ckpt_every": 0, "train.progress": False}
FACES = {"data.source": "faces48", "data.image_size": 16, "data.batch_size": 8, "model.z_dim": 8,
         "train.steps": 4, "train.ema": 0.9, **QUIET}
NETS = {
    "tags": {"G.name": "dcgan", "G.width": 4, "D.name": "dcgan", "D.width": 4, "data.condition": "text",
             "data.image_size": 32},
    "style": {"G.name": "stylegan2", "G.width": 4, "G.depth": 2, "D.name": "stylegan2", "D.width": 4,
              "D.norm": "none", "loss.penalty": "r1"},
}
PIX2PIX = {"model.kind": "pix2pix", "data.layout": "ab", "data.image_size": 16, "data.batch_size": 4,
           "data.held_out": 0, "G.name": "unet", "G.width": 4, "G.depth": 2, "G.norm": "batch",
           "D.name": "patchgan", "D.width": 4, "D.depth": 1, "D.norm": "batch", "train.steps": 2,
           "train.ema": 0.0, **QUIET}


def _config(items: dict) -> object:
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """``{name: run folder}`` of four tiny finished runs under one ``runs/`` folder."""
    root = tmp_path_factory.mktemp("studio") / "runs"
    out = {}
    for name, net in NETS.items():
        Trainer(_config({**FACES, **net}), root / name).fit()
        out[name] = root / name
    Trainer(tiny_toy_config(**{"train.steps": 4}), root / "toy").fit()
    out["toy"] = root / "toy"
    ab = root.parent / "ab"
    ab.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        left = rng.integers(0, 256, (16, 16))
        Image.fromarray(np.concatenate([left, 255 - left], axis=1).astype(np.uint8), "L").save(ab / f"{i}.png")
    Trainer(_config({**PIX2PIX, "data.source": str(ab)}), root / "p2p").fit()
    out["p2p"] = root / "p2p"
    return out


@pytest.fixture(scope="session")
def sefa_file(runs, tmp_path_factory):
    """``gankit directions --method sefa`` of the StyleGAN2-style run (3 directions in w)."""
    from gankit.cli import main

    out = tmp_path_factory.mktemp("directions") / "style_sefa.npz"
    assert main(["directions", str(runs["style"]), "--method", "sefa", "--k", "3", "--out", str(out)]) == 0
    return out
