"""The relativistic objectives (loss.name=rsgan | ragan) through every image model whose G step
feeds D's outputs on reals: G's loss checked against values computed by hand from D's
outputs on the reals and fakes of the phase, short trainings, and the kinds that refuse."""
import copy
import json
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.cli import main
from gankit.config import load_config
from gankit.models import MODELS
from gankit.training.trainer import Trainer
from tests.models import test_cyclegan, test_pix2pix
from tests.models.test_cgan import INFO, batch_of, tiny_config


def ragan_g(fake_out, real_out):
    """RaGAN's G loss written out: -E log sigmoid(C(x_f) - E C(x_r)) - E log(1 - sigmoid(C(x_r) - E C(x_f)))."""
    return (-torch.log(torch.sigmoid(fake_out - real_out.mean()))).mean() + \
        (-torch.log(1 - torch.sigmoid(real_out - fake_out.mean()))).mean()


def test_hand_formula_matches_the_numbers():
    # one real at 0, one fake at 0: both differences are 0, so each term is log 2
    assert_close(ragan_g(torch.zeros(1), torch.zeros(1)), torch.tensor(2 * math.log(2)))


@pytest.mark.parametrize("condition", ["none", "label"])
def test_gan_g_step_feeds_d_outputs_on_the_phase_reals(condition):
    torch.manual_seed(0)
    model = MODELS.get("gan")(tiny_config(**{"loss.name": "ragan", "data.condition": condition}), INFO)
    model.optimizers = model.configure_optimizers()
    assert model.schedule()[-1].needs_batch  # G's phase is handed a real batch
    batch = batch_of([3, 1, 4, 1, 5, 9, 2, 6])
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    torch.manual_seed(1)
    logs = model.train_phase("G", batch, 0)
    torch.manual_seed(1)
    _, z, c, _ = model._new_g_batch(batch)  # the same draw of latents, through the copy of G
    fake = G(z, c)
    c_real = model.batch_conditions(batch)
    expected = ragan_g(D(fake, c).float(), D(batch["x"], c_real).float())
    assert_close(logs["loss/G"], expected.detach())


def test_gan_with_reuse_fake_takes_a_batch_for_the_reals():
    model = MODELS.get("gan")(tiny_config(**{"loss.name": "ragan", "model.reuse_fake": True}), INFO)
    assert [p.needs_batch for p in model.schedule()] == [True, True]
    plain = MODELS.get("gan")(tiny_config(**{"model.reuse_fake": True}), INFO)
    assert [p.needs_batch for p in plain.schedule()] == [True, False]


def test_pix2pix_g_step_feeds_d_outputs_on_the_real_pairs():
    model = test_pix2pix.build(**{"loss.name": "ragan", "model.dropout": 0.0})
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    batch = test_pix2pix.pair()
    logs = model.train_phase("G", batch, 0)
    a, b = batch["a"], batch["b"]
    assert_close(logs["loss/G/gan"], ragan_g(D(G(a), a), D(b, a)).detach())


def test_cyclegan_g_step_feeds_d_outputs_on_both_domains():
    model = test_cyclegan.build(**{"loss.name": "ragan", "model.lambda_identity": 0.0})
    G, D = copy.deepcopy(model.G), copy.deepcopy(model.D)
    a, b = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    logs = model.train_phase("G", {"a": a, "b": b}, 0)
    expected = ragan_g(D["B"](G["AB"](a)), D["B"](b)) + ragan_g(D["A"](G["BA"](b)), D["A"](a))
    assert_close(logs["loss/G/gan"], expected.detach())


def test_other_objectives_draw_no_d_forward_on_reals_in_g_step():
    model = test_pix2pix.build(**{"model.dropout": 0.0})
    calls = []
    model.D.register_forward_hook(lambda *_: calls.append(1))
    model.train_phase("G", test_pix2pix.pair(), 0)
    assert len(calls) == 1  # the fakes alone, as before the wider contract


@pytest.mark.parametrize("loss", ["ragan", "rsgan"])
def test_flow_gan_trains_with_a_relativistic_objective(tmp_path, loss):
    cfg = load_config(None, ["data.source=ring8", "data.toy_samples=256", "data.batch_size=32",
                             "model.kind=flow", "model.objective=adversarial", "model.n_couplings=2",
                             "G.width=8", "G.depth=1", "D.name=mlp", "D.width=8", "D.depth=1",
                             "D.norm=none", f"loss.name={loss}", "train.steps=4", "train.log_every=2",
                             "train.sample_every=0", "train.ckpt_every=0", "train.progress=false",
                             "train.ema=0"])
    trainer = Trainer(cfg, tmp_path)
    assert trainer.model.schedule()[-1].needs_batch
    trainer.run_steps(4)
    assert math.isfinite(trainer.model.train_phase("G", {"x": torch.randn(32, 2)}, 4)["loss/G"].item())


def test_ragan_trains_toy_ring8_through_the_command_line(tmp_path):
    out = tmp_path / "run"
    main(["train", "toy_ring8", "--out", str(out), "loss.name=ragan", "train.steps=60",
          "train.log_every=20", "train.sample_every=0", "train.ckpt_every=0", "train.progress=false",
          "train.threads=1"])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss/G"] for r in records if "loss/G" in r]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    # RaGAN's G loss is two BCE means of sigmoids: each at least 0, log 4 where D cannot tell
    assert all(0 < v for v in losses)
    assert (out / "checkpoints" / "last.pt").is_file()
