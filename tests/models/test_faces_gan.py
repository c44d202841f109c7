"""The GAN with StyleGAN2 nets, augmentation, lazy R1, path length and style mixing."""
import json

import pytest
import torch

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, TrainingInterrupted
from gankit.metrics import anime
from gankit.metrics.compute import compute_metrics
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer
from tests.conftest import stop_after, tiny_toy_config


def faces_config(**overrides):
    items = {
        "data.source": "faces48", "data.image_size": 8, "data.batch_size": 8,
        "model.z_dim": 8, "G.name": "stylegan2", "G.width": 4, "G.depth": 2,
        "D.name": "stylegan2", "D.width": 4, "D.norm": "none",
        "loss.penalty": "r1", "loss.penalty_weight": 1.0, "model.reg_every": 2,
        "model.style_mixing": 0.5, "model.pl_weight": 2.0, "model.pl_every": 2,
        "train.steps": 6, "train.log_every": 2, "train.sample_every": 0, "train.ckpt_every": 0,
        "train.progress": False, "train.ema": 0.9,
    }
    items.update(overrides)
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def _state(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("augment", ["ada", "diffaugment"])
def test_augmented_training_resumes_exactly(tmp_path, augment):
    extra = {"train.ada_kimg": 0.1} if augment == "ada" else {}
    cfg = faces_config(**{"train.augment": augment, "data.condition": "text", **extra})

    def start(path, resume=False):
        trainer = Trainer(cfg, path, resume=resume)
        if augment == "ada" and not resume:
            trainer.model.augment.p.fill_(0.5)  # augment from the first step
        return trainer

    whole = start(tmp_path / "whole")
    whole.fit()
    first = start(tmp_path / "split")
    first.phase_callbacks.append(stop_after(7))  # inside step 3, between D and G
    with pytest.raises(TrainingInterrupted):
        first.fit()
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["phase"] == 1
    second = start(tmp_path / "split", resume=True)
    second.fit()
    a, b = _state(whole), _state(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    if augment == "ada":
        assert "augment.p" in a and a["augment.p"].item() != 0.5  # p moved, and resumed exactly
        logs = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
        assert all("aug/p" in r and "D/real_sign" in r for r in logs)
    assert "pl_mean" in a and a["pl_mean"].item() > 0


def test_lazy_regularisation_skips_the_penalty_between_intervals():
    cfg = faces_config(**{"model.reg_every": 3, "model.pl_weight": 0.0, "model.style_mixing": 0.0})
    from gankit.data import build_source
    from gankit.models.gan import GAN

    source = build_source(cfg.data, 0, torch.device("cpu"))
    model = GAN(cfg, source.info)
    model.optimizers = model.configure_optimizers()
    batch = source.next_batch()
    with_penalty = [("loss/D/r1" in model.train_phase("D", batch, step)) for step in range(6)]
    assert with_penalty == [True, False, False, True, False, False]


@pytest.mark.parametrize("overrides,message", [
    ({"train.augment": "ada", "model.kind": "vae"}, "train.augment applies to model.kind=gan"),
    ({"train.ada_target": 0.5}, "apply to train.augment=ada"),
    ({"train.augment": "diffaug"}, "train.augment must be one of"),
])
def test_augment_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"{k}={v}" for k, v in overrides.items()])


def test_stylegan_options_need_stylegan_nets_and_augment_needs_images(tmp_path):
    cfg = faces_config(**{"G.name": "dcgan", "D.name": "dcgan", "data.image_size": 32})
    with pytest.raises(ConfigError, match="need G.name=stylegan2"):
        Trainer(cfg, tmp_path / "a")
    with pytest.raises(ConfigError, match="transforms images"):
        Trainer(tiny_toy_config(**{"train.augment": "diffaugment"}), tmp_path / "b")


def test_afd_reports_its_ceiling_on_the_real_images(monkeypatch):
    monkeypatch.setattr(anime, "load_detector", lambda: lambda im: [1] if im.getpixel((0, 0))[0] > 200 else [])
    fake = torch.cat([torch.ones(1, 3, 4, 4), -torch.ones(3, 3, 4, 4)])
    real = torch.cat([torch.ones(3, 3, 4, 4), -torch.ones(2, 3, 4, 4)])
    info = DataInfo("image", (3, 4, 4), name="anime")
    scores = compute_metrics(["afd"], [fake], [real], info, use_cache=False)
    assert scores["afd"] == 0.25 and scores["afd_real"] == 0.6
    assert "afd_real" not in compute_metrics(["afd"], [fake], None, info, use_cache=False)


def test_sample_with_truncation_zero_gives_one_image(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from gankit.cli import main

    cfg = faces_config(**{"train.steps": 2, "model.pl_weight": 0.0})
    Trainer(cfg, tmp_path / "run").fit()
    assert main(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "s"),
                 "--truncation", "0"]) == 0
    images = [np.asarray(Image.open(tmp_path / "s" / f"0000{i}.png")) for i in (1, 2, 3)]
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[1], images[2])
    assert main(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "t")]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "t" / "00001.png")),
                              np.asarray(Image.open(tmp_path / "t" / "00002.png")))
    assert main(["sample", str(tmp_path / "run"), "--n", "1", "--out", str(tmp_path / "u"),
                 "--truncation", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
