"""CycleGAN: the history buffer, the learning-rate schedule, the loss weights against values
computed by hand, exact resume, and train -> translate through the command line."""
import copy

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import load_config
from gankit.data.folders import load_image
from gankit.data.info import DataInfo
from gankit.errors import TrainingInterrupted
from gankit.models import MODELS
from gankit.models.cyclegan import ImagePool
from gankit.training.trainer import Trainer
from gankit.viz import to_uint8

TINY = {"data.layout": "unpaired", "data.image_size": 16, "data.batch_size": 4, "G.width": 4,
        "G.depth": 1, "D.width": 4, "D.depth": 1, "model.pool_size": 6, "train.steps": 3,
        "train.log_every": 1, "train.sample_every": 0, "train.ckpt_every": 0, "train.progress": False,
        "train.n_grid": 4, "train.ema": 0.0}
INFO = DataInfo("unpaired", (1, 16, 16))


def tiny_args(**overrides):
    return [f"{k}={v}" for k, v in {**TINY, **overrides}.items()]


def build(**overrides):
    cfg = load_config("cyclegan_digits", tiny_args(**overrides))
    torch.manual_seed(0)
    model = MODELS.get("cyclegan")(cfg, INFO)
    model.optimizers = model.configure_optimizers()
    return model


def make_unpaired(root, n_a=9, n_b=6, size=16):
    rng = np.random.default_rng(1)
    for side, n in (("trainA", n_a), ("trainB", n_b)):
        (root / side).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size)).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / side / f"{i}.png")


def constant_images(values):
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


# ---- the history buffer ----------------------------------------------------------------------
def reference_pool(size, stored, batch, coins, picks):
    """The history buffer's rule written out item by item, on Python lists."""
    out = []
    for x, coin, pick in zip(batch, coins, picks):
        if len(stored) < size:
            stored.append(x)
            out.append(x)
        elif coin < 0.5:
            out.append(stored[pick])
            stored[pick] = x
        else:
            out.append(x)
    return out


def test_pool_matches_the_rule_item_by_item():
    pool = ImagePool(5, (1, 2, 2))
    stored, value = [], 0
    for batch_size in (3, 4, 6, 6):
        values = list(range(value, value + batch_size))
        value += batch_size
        torch.manual_seed(value)
        coins, picks = torch.rand(batch_size), torch.randint(5, (batch_size,))
        torch.manual_seed(value)
        got = pool.query(constant_images(values))[:, 0, 0, 0].tolist()
        assert got == reference_pool(5, stored, values, coins.tolist(), picks.tolist())
    assert pool.count.item() == 5
    assert pool.images[:5, 0, 0, 0].tolist() == stored


def test_pool_returns_old_images_half_of_the_time_once_full():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 2, 2))
    first = pool.query(constant_images(range(50)))
    torch.testing.assert_close(first, constant_images(range(50)))  # filling: returned as given
    new = constant_images(range(1000, 9000))
    out = torch.cat([pool.query(chunk) for chunk in new.split(40)])
    old_share = (out[:, 0, 0, 0] != new[:, 0, 0, 0]).float().mean().item()
    # 8000 fair coins: the share is 0.5 with a standard deviation of 0.0056
    assert abs(old_share - 0.5) < 0.025
    returned = out[:, 0, 0, 0]
    # an old image is one stored before: from the first fill or an earlier new image
    assert all(v < 50 or 1000 <= v <= u for v, u in zip(returned.tolist(), new[:, 0, 0, 0].tolist()))


def test_pool_size_zero_passes_images_through():
    x = torch.randn(3, 1, 2, 2)
    torch.testing.assert_close(ImagePool(0, (1, 2, 2)).query(x), x)


def test_pool_state_is_in_the_state_dict():
    pool = ImagePool(4, (1, 2, 2))
    pool.query(constant_images([1, 2, 3]))
    copy_pool = ImagePool(4, (1, 2, 2))
    copy_pool.load_state_dict(pool.state_dict())
    torch.manual_seed(5)
    a = pool.query(constant_images([7, 8, 9]))
    torch.manual_seed(5)
    torch.testing.assert_close(copy_pool.query(constant_images([7, 8, 9])), a)


# ---- loss wiring -----------------------------------------------------------------------------
def lsgan_g(out):
    return 0.5 * (out - 1).square().mean()


def test_g_loss_weights_cycle_and_identity():
    model = build(**{"model.lambda_cycle": 3.0, "model.lambda_identity": 0.25})
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    a, b = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    logs = model.train_phase("G", {"a": a, "b": b}, 0)
    fake_b, fake_a = G["AB"](a), G["BA"](b)
    gan = lsgan_g(D["B"](fake_b)) + lsgan_g(D["A"](fake_a))
    cycle = (G["BA"](fake_b) - a).abs().mean() + (G["AB"](fake_a) - b).abs().mean()
    identity = (G["AB"](b) - b).abs().mean() + (G["BA"](a) - a).abs().mean()
    torch.testing.assert_close(logs["loss/G/gan"], gan.detach())
    torch.testing.assert_close(logs["loss/G/cycle"], cycle.detach())
    torch.testing.assert_close(logs["loss/G/identity"], identity.detach())
    torch.testing.assert_close(logs["loss/G"], (gan + 3.0 * cycle + 0.75 * identity).detach())


def test_identity_weight_zero_drops_the_term():
    model = build(**{"model.lambda_identity": 0.0})
    logs = model.train_phase("G", {"a": torch.rand(4, 1, 16, 16), "b": torch.rand(4, 1, 16, 16)}, 0)
    assert "loss/G/identity" not in logs
    torch.testing.assert_close(logs["loss/G"], logs["loss/G/gan"] + 10.0 * logs["loss/G/cycle"])


def build28(**overrides):
    cfg = load_config("cyclegan_digits", tiny_args(**{"data.image_size": 28, **overrides}))
    torch.manual_seed(0)
    model = MODELS.get("cyclegan")(cfg, DataInfo("unpaired", (1, 28, 28)))
    model.optimizers = model.configure_optimizers()
    return model


def test_semantic_loss_is_the_classifiers_cross_entropy_against_its_own_labels():
    from gankit.nets.classifier import load_digit_net

    model = build28(**{"model.lambda_semantic": 2.0})
    G = copy.deepcopy(model.G)
    a, b = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    logs = model.train_phase("G", {"a": a, "b": b}, 0)
    f = load_digit_net()
    with torch.no_grad():
        expected = (torch.nn.functional.cross_entropy(f(G["AB"](a)), f(a).argmax(1))
                    + torch.nn.functional.cross_entropy(f(G["BA"](b)), f(b).argmax(1)))
    torch.testing.assert_close(logs["loss/G/semantic"], expected)
    rest = logs["loss/G/gan"] + 10.0 * logs["loss/G/cycle"] + 5.0 * logs["loss/G/identity"]
    torch.testing.assert_close(logs["loss/G"], rest + 2.0 * expected)


def test_semantic_gradient_reaches_the_generators_only():
    model = build28(**{"model.lambda_semantic": 1.0})
    a = torch.rand(4, 1, 28, 28) * 2 - 1
    loss = model.semantic_loss(a, model.G["AB"](a))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.G["AB"].parameters()
               if p.requires_grad and p.dim() > 1)
    assert all(p.grad is None for p in model.D.parameters())
    classifier = model.__dict__["_frozen_classifier"]
    assert all(p.grad is None and not p.requires_grad for p in classifier.parameters())
    # frozen, and kept out of the model's parameters, state and checkpoints
    assert not any(k.startswith("_frozen") for k in model.state_dict())
    assert not set(map(id, classifier.parameters())) & set(map(id, model.parameters()))


def test_semantic_loss_off_by_default_and_refused_off_digits():
    model = build28()
    logs = model.train_phase("G", {"a": torch.rand(4, 1, 28, 28), "b": torch.rand(4, 1, 28, 28)}, 0)
    assert "loss/G/semantic" not in logs
    with pytest.raises(Exception, match="lambda_semantic"):
        build(**{"model.lambda_semantic": 1.0})  # 16 px images


def test_d_loss_sees_history_images_and_is_halved():
    model = build(**{"model.pool_size": 0})
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    a, b = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16)
    logs = model.train_phase("D", {"a": a, "b": b}, 0)

    def lsgan_d(real, fake):
        return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()

    with torch.no_grad():
        loss_a = 0.5 * lsgan_d(D["A"](a), D["A"](G["BA"](b)))
        loss_b = 0.5 * lsgan_d(D["B"](b), D["B"](G["AB"](a)))
    torch.testing.assert_close(logs["loss/D/A"], loss_a)
    torch.testing.assert_close(logs["loss/D/B"], loss_b)
    with_pool = build(**{"model.pool_size": 6})
    with_pool.train_phase("D", {"a": a, "b": b}, 0)
    assert with_pool.pool["A"].count.item() == 4 and with_pool.pool["B"].count.item() == 4


# ---- training, resume, command line ----------------------------------------------------------
def test_resume_between_phases_is_exact(tmp_path):
    make_unpaired(tmp_path / "data")
    cfg = load_config("cyclegan_digits", tiny_args(**{"data.source": tmp_path / "data"}))
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()
    first = Trainer(cfg, tmp_path / "split")
    calls = {"n": 0}

    def stop_after_three(trainer):
        calls["n"] += 1
        if calls["n"] == 3:  # after the D phase of step 2: the next phase is G
            trainer.request_stop()

    first.phase_callbacks.append(stop_after_three)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    second = Trainer(cfg, tmp_path / "split", resume=True)
    assert (second.step, second.phase) == (1, 1)
    second.fit()
    a, b = whole.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys() and "pool.A.images" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_and_translate_both_ways(tmp_path, capsys):
    make_unpaired(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "cyclegan_digits", *tiny_args(), "--data", str(tmp_path / "data"), "--out", str(run)]
    assert main(args) == 0
    from gankit.api import load_run

    model = load_run(run).model
    (tmp_path / "inputs").mkdir()
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L").save(tmp_path / "inputs" / "in.png")
    x = load_image(tmp_path / "inputs" / "in.png", 16, 1)[None]
    outputs = {}
    for direction, forward in (("AtoB", True), ("BtoA", False)):
        out = tmp_path / direction
        assert main(["translate", str(run), "--input", str(tmp_path / "inputs"), "--out", str(out),
                     "--direction", direction]) == 0
        outputs[direction] = np.asarray(Image.open(out / "in.png"))
        expected = to_uint8(model.translate(x, forward))[0, ..., 0]
        np.testing.assert_array_equal(outputs[direction], expected)
    assert (outputs["AtoB"] != outputs["BtoA"]).any()


def test_empty_train_b_fails_with_one_line(tmp_path, capsys):
    make_unpaired(tmp_path / "data", n_a=5, n_b=0)  # trainB exists but is empty
    code = main(["train", "cyclegan_digits", *tiny_args(), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: trainB is unusable")


def test_compile_targets_are_the_four_nets():
    model = build()
    targets = model.compile_targets()
    assert set(targets) == {"G_AB", "G_BA", "D_A", "D_B"}
    assert targets["G_BA"] is model.G["BA"] and targets["D_A"] is model.D["A"]
