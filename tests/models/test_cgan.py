"""The conditional GAN: encoders, matching-aware and ACGAN losses against hand-computed values,
one training step per conditioning mode, and `gankit sample --cond` end to end."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.cli import main
from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, GankitError
from gankit.models import MODELS
from gankit.nets.condition import (
    ConditionSpace,
    LabelEncoder,
    TextEncoder,
    matching_aware_d_loss,
    mismatched_partners,
)
from gankit.objectives import get_objective
from gankit.training.trainer import Trainer

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# scikit-learn's 8x8 digits with small MLPs: a conditional GAN in a fraction of a second.
TINY = {"data.source": "digits", "data.batch_size": 20, "data.condition": "label", "model.z_dim": 4,
        "G.name": "mlp", "G.width": 16, "G.depth": 1, "G.norm": "none", "D.name": "mlp",
        "D.width": 16, "D.depth": 1, "D.norm": "none", "train.steps": 2, "train.log_every": 1,
        "train.sample_every": 0, "train.ckpt_every": 0, "train.progress": False, "train.ema": 0.0}
INFO = DataInfo("image", (1, 8, 8), name="digits", num_classes=10, class_names=DIGIT_WORDS)


def tiny_config(**overrides):
    items = {**TINY, **overrides}
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def build(info=INFO, **overrides):
    cfg = tiny_config(**overrides)
    if cfg.data.condition == "text":
        from gankit.data.conditions import build_vocab

        info = DataInfo(**{**vars(info), "vocab": build_vocab(info.class_names)})
    torch.manual_seed(0)
    model = MODELS.get("gan")(cfg, info)
    model.optimizers = model.configure_optimizers()
    return model


def batch_of(labels):
    y = torch.tensor(labels)
    return {"x": torch.rand(len(y), 1, 8, 8) * 2 - 1, "y": y}


class Recorder:
    """Stands in for D.forward (or score_and_logits), keeping each call and its output."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args):
        out = self.fn(*args)
        self.calls.append((args, out))
        return out


# ---- encoders and the condition space --------------------------------------------------------
def test_label_encoder_one_hot_and_embedding():
    torch.testing.assert_close(LabelEncoder(4)(torch.tensor([2, 0])),
                               torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]]))
    enc = LabelEncoder(4, embed_dim=3)
    assert enc.out_dim == 3
    torch.testing.assert_close(enc(torch.tensor([1])), enc.embed.weight[1:2])


def test_text_encoder_mean_pools_real_tokens_only():
    enc = TextEncoder(6, embed_dim=5, pooling="mean")
    tokens = torch.tensor([[2, 3, 0, 0], [4, 0, 0, 0], [0, 0, 0, 0]])
    w = enc.embed.weight
    expected = torch.stack([(w[2] + w[3]) / 2, w[4], torch.zeros(5)])
    torch.testing.assert_close(enc(tokens), expected)


def test_gru_encoder_ignores_trailing_padding_and_reads_word_order():
    torch.manual_seed(1)
    enc = TextEncoder(6, embed_dim=5, pooling="gru")
    short = enc(torch.tensor([[2, 3]]))
    padded = enc(torch.tensor([[2, 3, 0, 0, 0]]))
    torch.testing.assert_close(short, padded)
    assert (enc(torch.tensor([[3, 2]])) - short).abs().max() > 1e-4
    torch.testing.assert_close(enc(torch.tensor([[0, 0]])), torch.zeros(1, 5))


def test_parse_condition_by_name_number_and_unknown_word():
    space = ConditionSpace("label", INFO)
    torch.testing.assert_close(space.parse("seven", 3), torch.tensor([7, 7, 7]))
    torch.testing.assert_close(space.parse(" Seven ", 1), torch.tensor([7]))
    torch.testing.assert_close(space.parse("3", 2), torch.tensor([3, 3]))
    with pytest.raises(GankitError, match="unknown condition 'eleven'; known classes: zero, one"):
        space.parse("eleven", 1)


def test_text_space_encodes_class_texts_and_rejects_unknown_words():
    info = DataInfo("image", (1, 8, 8), num_classes=2, class_names=["red_hair blue_eyes", "smile"],
                    vocab=["<pad>", "<unk>", "blue_eyes", "red_hair", "smile"])
    space = ConditionSpace("text", info, max_len=3)
    torch.testing.assert_close(space.from_labels(torch.tensor([1, 0])),
                               torch.tensor([[4, 0, 0], [3, 2, 0]]))
    torch.testing.assert_close(space.parse("smile red_hair", 2), torch.tensor([[4, 3, 0]] * 2))
    with pytest.raises(GankitError, match="unknown word.*'green'.*known words: blue_eyes, red_hair, smile"):
        space.parse("green smile", 1)


def test_mismatched_partners_always_differ_in_condition():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    for seed in range(20):
        p = mismatched_partners(labels, torch.rand(6, 6, generator=torch.Generator().manual_seed(seed)))
        assert (labels[p] != labels).all()
    tokens = torch.tensor([[2, 3], [2, 3], [2, 4]])
    p = mismatched_partners(tokens, torch.rand(3, 3))
    assert p.tolist() == [2, 2, p[2].item()] and p[2] in (0, 1)


# ---- loss wiring -----------------------------------------------------------------------------
def test_matching_aware_loss_by_hand():
    real, fake, mism = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0]), torch.tensor([1.0, -3.0])
    bce = get_objective("nonsaturating").d_loss
    got = matching_aware_d_loss(bce, real, fake, mism, 0.5)
    sp = F.softplus
    expected = sp(-real).mean() + 0.5 * sp(fake).mean() + 0.5 * sp(mism).mean()
    torch.testing.assert_close(got, expected)
    lsgan = get_objective("lsgan").d_loss
    expected_ls = 0.5 * (real - 1).square().mean() + 0.25 * 0.5 * fake.square().mean() \
        + 0.75 * 0.5 * mism.square().mean()
    torch.testing.assert_close(matching_aware_d_loss(lsgan, real, fake, mism, 0.75), expected_ls)


def test_mismatched_pairs_enter_the_d_loss(monkeypatch):
    model = build(**{"model.mismatch_weight": 0.5})
    rec = Recorder(model.D.forward)
    monkeypatch.setattr(model.D, "forward", rec)
    batch = batch_of([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    logs = model.train_phase("D", batch, 0)
    (real_args, real_out), (fake_args, fake_out), (mis_args, mis_out) = rec.calls
    torch.testing.assert_close(real_args[0], batch["x"])
    torch.testing.assert_close(real_args[1], batch["y"])
    torch.testing.assert_close(mis_args[0], batch["x"])  # real images ...
    assert (mis_args[1] != batch["y"]).all()  # ... each with another item's (different) label
    sp = F.softplus
    expected = sp(-real_out).mean() + 0.5 * sp(fake_out).mean() + 0.5 * sp(mis_out).mean()
    torch.testing.assert_close(logs["loss/D"], expected.detach())


def test_without_matching_awareness_d_sees_only_real_and_generated(monkeypatch):
    model = build(**{"model.matching_aware": False})
    rec = Recorder(model.D.forward)
    monkeypatch.setattr(model.D, "forward", rec)
    logs = model.train_phase("D", batch_of([1, 2, 3, 4]), 0)
    assert len(rec.calls) == 2
    (_, real_out), (_, fake_out) = rec.calls
    torch.testing.assert_close(logs["loss/D"], (F.softplus(-real_out).mean() + F.softplus(fake_out).mean()).detach())


def test_acgan_adds_class_losses_to_d_and_g(monkeypatch):
    model = build(**{"model.cond_mode": "acgan", "model.matching_aware": False, "model.aux_weight": 2.0})
    rec = Recorder(model.D.score_and_logits)
    monkeypatch.setattr(model.D, "score_and_logits", rec)
    batch = batch_of([3, 1, 4, 1, 5])
    logs = model.train_phase("D", batch, 0)
    (_, (real_s, real_l)), (_, (fake_s, fake_l)) = rec.calls
    y = batch["y"]
    aux = F.cross_entropy(real_l, y) + F.cross_entropy(fake_l, y)
    adv = F.softplus(-real_s).mean() + F.softplus(fake_s).mean()
    torch.testing.assert_close(logs["loss/D"], (adv + 2.0 * aux).detach())
    torch.testing.assert_close(logs["loss/D/aux"], aux.detach())
    rec.calls.clear()
    logs = model.train_phase("G", batch, 0)
    (_, (s, logits)), = rec.calls
    expected = F.softplus(-s).mean() + 2.0 * F.cross_entropy(logits, y)
    torch.testing.assert_close(logs["loss/G"], expected.detach())


def test_conditional_g_uses_the_batch_conditions(monkeypatch):
    model = build(**{"model.cond_mode": "concat"})
    rec_g, rec_d = Recorder(model.G.forward), Recorder(model.D.forward)
    monkeypatch.setattr(model.G, "forward", rec_g)
    monkeypatch.setattr(model.D, "forward", rec_d)
    batch = batch_of([9, 8, 7])
    model.train_phase("G", batch, 0)
    (z, c), fake = rec_g.calls[0]
    assert z.shape == (3, 4)
    torch.testing.assert_close(c, batch["y"])
    (x_d, c_d), _ = rec_d.calls[0]
    torch.testing.assert_close(x_d, fake)
    torch.testing.assert_close(c_d, batch["y"])


def test_unconditional_gan_builds_nothing_conditional():
    model = build(**{"data.condition": "none"})
    assert all(k.startswith(("G.", "D.")) for k in model.state_dict())
    assert not any("encoder" in k or "aux" in k for k in model.state_dict())
    assert model.schedule()[-1].needs_batch is False
    with pytest.raises(GankitError, match="unconditional"):
        model.parse_condition("seven", 1)


@pytest.mark.parametrize("overrides,match", [
    ({"model.cond_mode": "acgan"}, "matching_aware=false"),
    ({"model.cond_mode": "bogus"}, "model.cond_mode must be one of"),
    ({"data.condition": "none", "model.cond_mode": "acgan", "model.matching_aware": False}, "data.condition=label"),
    ({"model.mismatch_weight": 1.5}, "mismatch_weight"),
])
def test_bad_condition_options(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build(**overrides)


# ---- training and the command line -----------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    {"model.cond_mode": "projection"},
    {"model.cond_mode": "concat", "model.embed_dim": 6},
    {"model.cond_mode": "acgan", "model.matching_aware": False},
    {"data.condition": "text", "model.text_encoder": "gru"},
])
def test_one_training_run_per_mode_trains_both_nets_and_g_reads_c(tmp_path, overrides):
    cfg = tiny_config(**overrides)
    trainer = Trainer(cfg, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.fit()
    model = trainer.model
    # every parameter of G and D got a gradient and an Adam step (a net left out of the
    # update, or a conditioning layer cut off from the loss, keeps its initial values)
    unchanged = [k for k, v in model.named_parameters()
                 if k.split(".")[0] in ("G", "D") and torch.equal(before[k], v)]
    # the class names are one word each: a GRU reads one token from h0 = 0, so its
    # hidden-to-hidden weights get no gradient
    assert [k for k in unchanged if "weight_hh" not in k] == []
    # the same noise with two different conditions gives two different images: a generator
    # that ignored c would give the same one
    z = torch.randn(4, cfg.model.z_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        a = model.decode({"z": z, "c": model.space.from_labels(labels)}, use_ema=False)
        b = model.decode({"z": z, "c": model.space.from_labels(labels.flip(0))}, use_ema=False)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-4


def test_sample_cond_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    args = [f"{k}={v}" for k, v in {**TINY, "data.condition": "text"}.items()]
    assert main(["train", *args, "--out", str(run)]) == 0
    for cond, out in (("seven", "a"), ("seven", "b"), ("one", "c")):
        assert main(["sample", str(run), "--cond", cond, "--n", "4", "--out", str(tmp_path / out)]) == 0
    pngs = {d: np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / d).glob("*.png"))])
            for d in "abc"}
    assert pngs["a"].shape == (4, 8, 8)
    np.testing.assert_array_equal(pngs["a"], pngs["b"])  # the same seed and condition
    assert (pngs["a"] != pngs["c"]).any()  # another condition, other digits
    capsys.readouterr()
    code = main(["sample", str(run), "--cond", "eleven", "--n", "4", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: unknown word(s) 'eleven'") and "seven" in err[0]


def test_conditional_resume_between_d_and_g_is_exact(tmp_path):
    from gankit.errors import TrainingInterrupted

    cfg = tiny_config(**{"train.steps": 3, "train.ema": 0.9})
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()
    first = Trainer(cfg, tmp_path / "split")
    calls = {"n": 0}

    def stop_after_three(trainer):
        calls["n"] += 1
        if calls["n"] == 3:  # after the D phase of step 2: the G phase (with its batch) is next
            trainer.request_stop()

    first.phase_callbacks.append(stop_after_three)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    second = Trainer(cfg, tmp_path / "split", resume=True)
    second.fit()
    a, b = whole.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_acgan_score_is_the_discriminators_own_and_logits_read_its_features():
    model = build(**{"model.cond_mode": "acgan", "model.matching_aware": False}).eval()
    x = torch.rand(3, 1, 8, 8)
    score, logits = model.D.score_and_logits(x)
    torch.testing.assert_close(score, model.D(x))
    torch.testing.assert_close(logits, model.D.aux(model.D.features(x)))
    assert logits.shape == (3, 10)


# ---- the mode-seeking term (MSGAN) -----------------------------------------------------------
def test_mode_seeking_term_by_hand():
    from gankit.models.gan import mode_seeking_term

    fake = torch.tensor([[1.0, 2.0], [0.0, 0.0], [1.0, 4.0], [0.0, 1.0]])
    z = torch.tensor([[0.0], [1.0], [2.0], [-1.0]])
    logs = {}
    # |x1 - x2| = [0, 2, 0, 1] -> mean 0.75; |z1 - z2| = [2, 2] -> mean 2; ratio 0.375
    term = mode_seeking_term(fake, z, logs)
    assert logs["G/mode_seeking"].item() == pytest.approx(0.375)
    assert term.item() == pytest.approx(1 / (0.375 + 1e-5))
    # two latents on one image: the term is as large as the epsilon allows
    same = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert mode_seeking_term(same, torch.tensor([[0.0], [1.0]]), {}).item() == pytest.approx(1e5)


def test_mode_seeking_pairs_conditions_and_adds_the_term(monkeypatch):
    model = build(**{"model.cond_mode": "concat", "model.mode_seeking": 2.0})
    rec_g = Recorder(model.G.forward)
    monkeypatch.setattr(model.G, "forward", rec_g)
    batch = batch_of([9, 8, 7, 6, 5])
    logs = model.train_phase("G", batch, 0)
    (z, c), fake = rec_g.calls[0]
    # the second half repeats the first half's conditions, with other latents
    torch.testing.assert_close(c, torch.tensor([9, 8, 9, 8]))
    assert not torch.equal(z[:2], z[2:])
    ratio = (fake[:2] - fake[2:]).abs().mean() / (z[:2] - z[2:]).abs().mean()
    torch.testing.assert_close(logs["G/mode_seeking"], ratio.detach())
    # G's loss is the adversarial loss plus the weighted term
    with torch.no_grad():
        adversarial = model.loss.g_loss(model.D(fake, c).float())
    torch.testing.assert_close(logs["loss/G"], adversarial + 2.0 / (ratio.detach() + 1e-5))


def test_mode_seeking_off_keeps_the_batch_and_refuses_bad_values():
    model = build(**{"model.cond_mode": "concat"})
    logs = model.train_phase("G", batch_of([9, 8, 7]), 0)
    assert "G/mode_seeking" not in logs
    with pytest.raises(ConfigError, match="model.mode_seeking must be >= 0"):
        build(**{"model.mode_seeking": -1.0})
    with pytest.raises(ConfigError, match="at least 2"):
        build(**{"model.mode_seeking": 1.0, "data.batch_size": 1})
