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


# ---- the review's defects (issue 23): each test fails on the code before the fix ----------------
def _gan(cfg):
    from gankit.data import build_source
    from gankit.models.gan import GAN

    source = build_source(cfg.data, 0, torch.device("cpu"))
    return GAN(cfg, source.info), source


class _Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x, c=None):
        return torch.full((x.shape[0], 1), self.value)


def test_ada_counts_reals_against_the_objectives_threshold():
    """LSGAN's D aims at 1 for reals and 0 for fakes: an output of 0.3 on reals is a 'fake'
    vote, though positive. Counting signs around 0 would see every real as real and push p to 1."""
    cfg = faces_config(**{"train.augment": "ada", "loss.name": "lsgan", "loss.penalty": "none"})
    model, source = _gan(cfg)
    model.D = _Constant(0.3)
    _, logs = model._d_loss(*[source.next_batch()["x"]] * 2, None, None)
    assert logs["D/real_sign"].item() == -1.0
    nonsat, source = _gan(faces_config(**{"train.augment": "ada", "loss.penalty": "none"}))
    nonsat.D = _Constant(0.3)
    _, logs = nonsat._d_loss(*[source.next_batch()["x"]] * 2, None, None)
    assert logs["D/real_sign"].item() == 1.0  # a positive logit is a 'real' vote


@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "kl"])
def test_ada_refuses_objectives_without_a_decision_threshold(loss):
    cfg = faces_config(**{"train.augment": "ada", "loss.name": loss, "loss.penalty": "none",
                          "loss.clip": 0})
    with pytest.raises(ConfigError, match=f"loss.name={loss} does not define"):
        _gan(cfg)


def test_ada_kimg_defaults_to_the_papers_500():
    cfg = load_config(None, ["train.augment=ada-lite"])
    assert cfg.train.ada_kimg == 500.0
    from gankit.nets.augment import build_augment

    assert build_augment("ada").kimg == 500.0 and build_augment("ada-lite").kimg == 500.0


class _Double(torch.nn.Module):
    adaptive = False

    def forward(self, x):
        return 2 * x


def test_r1_is_taken_at_the_unaugmented_reals_through_the_augmentation():
    """D(x) = sum(v * x) seen through x -> 2x: the gradient at the un-augmented reals is 2v,
    so R1 = 4 |v|^2; at the augmented images (the old way) it was |v|^2."""
    cfg = faces_config(**{"train.augment": "diffaugment", "model.reg_every": 1,
                          "model.pl_weight": 0.0, "model.style_mixing": 0.0})
    model, source = _gan(cfg)
    model.optimizers = model.configure_optimizers()
    model.augment = _Double()
    v = torch.randn(3 * 8 * 8)

    class Linear(torch.nn.Module):
        def forward(self, x, c=None):
            return (x.flatten(1) * v).sum(1, keepdim=True)

    model.D = Linear()
    model.optimize = lambda name, loss, net: torch.zeros(())
    logs = model.train_phase("D", source.next_batch(), 0)
    assert torch.allclose(logs["loss/D/r1"], 4 * v.square().sum(), rtol=1e-5)


def test_lazy_regularisation_scales_adams_rate_and_betas():
    cfg = faces_config(**{"model.reg_every": 16, "model.pl_every": 4, "optim.lr_d": 0.0025,
                          "optim.lr_g": 0.002, "optim.beta1": 0.5, "optim.beta2": 0.99})
    opts = _gan(cfg)[0].configure_optimizers()
    d, g = opts["D"].param_groups[0], opts["G"].param_groups[0]
    assert d["lr"] == pytest.approx(0.0025 * 16 / 17) and g["lr"] == pytest.approx(0.002 * 4 / 5)
    assert d["betas"] == pytest.approx((0.5 ** (16 / 17), 0.99 ** (16 / 17)))
    assert g["betas"] == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    plain = faces_config(**{"model.reg_every": 1, "model.pl_weight": 0.0})
    d = _gan(plain)[0].configure_optimizers()["D"].param_groups[0]
    assert d["lr"] == plain.optim.lr_d and d["betas"] == (plain.optim.beta1, plain.optim.beta2)


def _stylegan(mixing):
    from gankit.nets import stylegan2

    model = _gan(faces_config(**{"model.style_mixing": mixing, "G.width": 8}))[0]
    return stylegan2.find_generator(model.G)


def test_style_mixing_leaves_w_avg_to_the_first_latent():
    G = _stylegan(1.0)
    z = torch.randn(16, G.z_dim)
    G.eval()
    w = G.mapping(z)
    G.train()
    G.styles(z)
    assert torch.allclose(G.mapping.w_avg, (1 - G.mapping.w_avg_beta) * w.mean(0), atol=1e-6)


def test_style_mixing_is_decided_once_per_batch():
    torch.manual_seed(0)
    G = _stylegan(0.5)
    z = torch.randn(16, G.z_dim)
    G.eval()
    w = G.mapping(z)
    G.train()
    outcomes = set()
    for _ in range(12):
        ws = G.styles(z)
        own = torch.isclose(ws, w[:, None, :], atol=1e-6).all(2)  # [B, num_ws]: layer kept w
        first_mixed = (~own).float().argmax(1).where((~own).any(1), torch.tensor(G.num_ws))
        assert len(set(first_mixed.tolist())) == 1  # one cutoff (or none) for every sample
        outcomes.add(int(first_mixed[0]))
    assert G.num_ws in outcomes and len(outcomes) > 1  # some batches unmixed, some mixed


def test_each_conv_has_its_own_fixed_noise():
    G = _stylegan(0.0)
    layers = G.synthesis.layers
    assert layers[1].noise_const.shape == layers[2].noise_const.shape  # one resolution
    assert not torch.equal(layers[1].noise_const, layers[2].noise_const)


def test_anime64_stylegan2_follows_stylegan2_adas_auto_config_at_64_px():
    """StyleGAN2-ADA's train.py 'auto' at 64 px on one GPU: batch min(4096 // 64, 32) = 32,
    2 mapping layers, gamma = 0.0002 * 64^2 / 32, lr 0.0025, channels min(16384 / res, 512)."""
    from gankit.nets.stylegan2 import channels_at

    cfg = load_config("anime64_stylegan2", [])
    assert cfg.data.batch_size == 32 and cfg.G.depth == 2
    assert cfg.loss.penalty_weight == pytest.approx(0.0002 * 64 ** 2 / 32)
    assert cfg.train.ada_kimg == 500 and cfg.optim.lr_g == cfg.optim.lr_d == 0.0025
    for res in (4, 8, 16, 32, 64):
        assert channels_at(res, 64, cfg.G.width) == min(16384 // res, 512)
