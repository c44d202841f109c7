"""pix2pix: U-Net and PatchGAN shapes and receptive field, the loss weights against values
computed by hand, one training run, and train -> translate through the command line."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.cli import main
from gankit.config import NetConfig, load_config
from gankit.data.folders import load_image
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models import MODELS
from gankit.models.pix2pix import pix2pix_g_loss
from gankit.nets.patchgan import PatchDiscriminator, receptive_field
from gankit.nets.unet import UNetGenerator, build_unet
from gankit.objectives import get_objective
from gankit.viz import to_uint8

TINY = {"model.kind": "pix2pix", "data.layout": "ab", "data.image_size": 16, "data.batch_size": 4,
        "G.width": 4, "G.depth": 2, "G.norm": "batch", "D.width": 4, "D.depth": 1, "D.norm": "batch",
        "train.steps": 2, "train.log_every": 1, "train.sample_every": 1, "train.ckpt_every": 0,
        "train.progress": False, "train.n_grid": 4, "train.ema": 0.0}
INFO = DataInfo("paired", (1, 16, 16))


def tiny_args(**overrides):
    return [f"{k}={v}" for k, v in {**TINY, **overrides}.items()]


def build(**overrides):
    cfg = load_config(None, tiny_args(**overrides))
    torch.manual_seed(0)
    model = MODELS.get("pix2pix")(cfg, INFO)
    model.optimizers = model.configure_optimizers()
    return model


def make_ab_folder(root, n=8, size=16):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        left = rng.integers(0, 256, (size, size))
        Image.fromarray(np.concatenate([left, 255 - left], axis=1).astype(np.uint8), "L").save(root / f"{i}.png")


def pair(n=4):
    a = torch.rand(n, 1, 16, 16) * 2 - 1
    return {"a": a, "b": -a}


# ---- nets ------------------------------------------------------------------------------------
def test_unet_output_and_depth_check():
    net = UNetGenerator(3, 1, width=4, depth=3)
    out = net(torch.randn(2, 3, 24, 24))
    assert out.shape == (2, 1, 24, 24) and out.abs().max() <= 1
    with pytest.raises(ConfigError, match="divisible by 8, got 28"):
        build_unet(NetConfig(depth=3), 1, 1, 28)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_measured_by_gradients(n_layers):
    assert receptive_field(n_layers) == {1: 16, 2: 34, 3: 70}[n_layers]
    torch.manual_seed(0)
    D = PatchDiscriminator(1, 0, width=2, n_layers=n_layers, norm="none")
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    out = D(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    assert rows.max() - rows.min() + 1 == receptive_field(n_layers)
    assert cols.max() - cols.min() + 1 == receptive_field(n_layers)


def test_patchgan_takes_the_input_image_as_condition():
    D = PatchDiscriminator(1, cond_channels=1, width=2, n_layers=1, norm="none")
    x = torch.randn(2, 1, 16, 16)
    assert not torch.equal(D(x, torch.zeros_like(x)), D(x, torch.ones_like(x)))
    with pytest.raises(ConfigError, match="takes a condition image"):
        D(x)


# ---- loss wiring -----------------------------------------------------------------------------
def test_g_loss_by_hand():
    fake_out = torch.tensor([0.0, 2.0])
    fake, target = torch.tensor([0.5, -0.5]), torch.tensor([0.0, 0.5])
    total, adv, dist = pix2pix_g_loss(get_objective("nonsaturating"), fake_out, fake, target, 100.0)
    expected_adv = (np.log(2) + np.log1p(np.exp(-2.0))) / 2
    torch.testing.assert_close(adv, torch.tensor(expected_adv, dtype=torch.float32))
    torch.testing.assert_close(dist, torch.tensor(0.75))
    torch.testing.assert_close(total, torch.tensor(expected_adv + 75.0, dtype=torch.float32))


def test_g_phase_weights_l1_by_lambda():
    model = build(**{"model.lambda_l1": 7.0, "model.dropout": 0.0})
    G0, D0 = copy.deepcopy(model.G), copy.deepcopy(model.D)
    batch = pair()
    logs = model.train_phase("G", batch, 0)
    fake = G0(batch["a"])
    adv = F.softplus(-D0(fake, batch["a"])).mean()
    dist = (fake - batch["b"]).abs().mean()
    torch.testing.assert_close(logs["loss/G/l1"], dist.detach())
    torch.testing.assert_close(logs["loss/G/gan"], adv.detach())
    torch.testing.assert_close(logs["loss/G"], (adv + 7.0 * dist).detach())
    assert not torch.equal(G0.up[-1][1].weight, model.G.up[-1][1].weight)
    torch.testing.assert_close(D0.net[0].weight, model.D.net[0].weight)  # D is left alone


def test_d_phase_is_halved_and_judges_pairs():
    model = build(**{"model.dropout": 0.0, "loss.name": "lsgan"})
    G0, D0 = copy.deepcopy(model.G), copy.deepcopy(model.D)
    batch = pair()
    logs = model.train_phase("D", batch, 0)
    real = D0(batch["b"], batch["a"])
    fake = D0(G0(batch["a"]), batch["a"])
    expected = 0.5 * (0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean())
    torch.testing.assert_close(logs["loss/D"], expected.detach())


def test_objectives_with_penalties_are_refused():
    with pytest.raises(ConfigError, match="no discriminator penalty"):
        build(**{"loss.name": "wgan-gp"})


def test_unpaired_data_is_refused():
    cfg = load_config(None, tiny_args())
    with pytest.raises(ConfigError, match="pix2pix needs paired data"):
        MODELS.get("pix2pix")(cfg, DataInfo("image", (1, 16, 16)))


# ---- the command line ------------------------------------------------------------------------
def test_train_translate_round_trip(tmp_path, capsys):
    make_ab_folder(tmp_path / "ab")
    run = tmp_path / "run"
    assert main(["train", "mnist_pix2pix", *tiny_args(), "data.held_out=0", "--data", str(tmp_path / "ab"),
                 "--out", str(run)]) == 0
    grid = Image.open(run / "samples" / "final.png")
    # [input | output | target] panels under a 16-px label row, drawn 3x so "target" fits a 16-px panel
    assert grid.size == (3 * (2 + 2 * (3 * 16 + 2)), 16 + 3 * (2 + 2 * (16 + 2)))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8), "L").save(inputs / f"p{i}.png")
    assert main(["translate", str(run), "--input", str(inputs), "--out", str(tmp_path / "out")]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in outs] == ["p0.png", "p1.png", "p2.png"]
    from gankit.api import load_run

    model = load_run(run).model
    x = load_image(inputs / "p1.png", 16, 1)[None]
    np.testing.assert_array_equal(np.asarray(Image.open(outs[1])), to_uint8(model.translate(x))[0, ..., 0])
    capsys.readouterr()
    code = main(["translate", str(run), "--input", str(inputs), "--out", str(tmp_path / "o2"),
                 "--direction", "BtoA"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "translates AtoB only" in err[0]


def test_odd_width_ab_images_fail_with_one_line(tmp_path, capsys):
    (tmp_path / "ab").mkdir()
    Image.fromarray(np.zeros((16, 33), np.uint8), "L").save(tmp_path / "ab" / "bad.png")
    code = main(["train", "mnist_pix2pix", *tiny_args(), "data.held_out=0", "--data", str(tmp_path / "ab"),
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: AB image") and "33 px wide" in err[0]
