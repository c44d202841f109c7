"""Every sequence model end to end: CLI training, sentences out, exact resume, warm start."""
import pytest
import torch

from gankit.cli import main
from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, TrainingInterrupted
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, build_model
from tests.sequences.conftest import tiny_text_config
from tests.conftest import stop_after

TINY = ["data.vocab_size=40", "data.max_len=6", "data.toy_samples=256",
        "data.batch_size=16", "model.emb_dim=8", "G.width=8", "G.depth=1", "train.steps=5",
        "train.log_every=5", "train.sample_every=0", "train.progress=false", "train.ema=0"]
GAN = ["model.pretrain_steps=2", "model.d_pretrain_steps=1", "model.d_emb_dim=8",
       "model.d_windows=[2,3]", "model.d_filters=[4,4]", "train.n_critic=1"]


@pytest.mark.parametrize("kind,extra", [
    ("mle", []), ("seqgan", GAN + ["model.rollouts=2"]), ("gumbel", GAN),
    ("dense", GAN + ["model.d_hidden=8"]),
])
def test_cli_trains_each_model_and_samples_sentences(tmp_path, capsys, kind, extra):
    run = tmp_path / kind
    assert main(["train", f"{kind}_oracle", *TINY, *extra, "--out", str(run)]) == 0
    assert main(["sample", str(run), "--n", "7", "--out", str(tmp_path / "s.txt")]) == 0
    lines = (tmp_path / "s.txt").read_text().splitlines()
    assert len(lines) == 7
    assert all(len(line.split()) == 6 and all(w[0] == "w" and 0 <= int(w[1:]) < 40
                                              for w in line.split()) for line in lines)
    assert "7 sentences" in capsys.readouterr().out


def states(trainer):
    model = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    opts = {n: o.state_dict()["state"] for n, o in trainer.model.optimizers.items()}
    return model, opts


@pytest.mark.parametrize("kind,stop_phase", [("seqgan", 13), ("dense", 11), ("gumbel", 13)])
def test_resume_inside_a_step_is_bit_identical(tmp_path, kind, stop_phase):
    cfg = tiny_text_config(kind, **{"train.steps": 7, "train.n_critic": 2})  # 3 phases a step
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()
    first = Trainer(cfg, tmp_path / "split")
    first.phase_callbacks.append(stop_after(stop_phase))  # in an adversarial step, after G
    with pytest.raises(TrainingInterrupted):
        first.fit()
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["phase"] != 0
    second = Trainer(cfg, tmp_path / "split", resume=True)
    second.fit()
    (model_a, opt_a), (model_b, opt_b) = states(whole), states(second)
    assert model_a.keys() == model_b.keys()
    for k in model_a:
        assert torch.equal(model_a[k], model_b[k]), k
    if kind != "gumbel":
        assert int(model_a["baseline.count"]) == 7 - 3  # the baseline's state came back too
    for name in opt_a:
        for pid in opt_a[name]:
            for key in opt_a[name][pid]:
                assert torch.equal(torch.as_tensor(opt_a[name][pid][key]),
                                   torch.as_tensor(opt_b[name][pid][key])), (name, key)


def test_init_from_copies_an_mle_generator_once(tmp_path):
    mle = Trainer(tiny_text_config("mle"), tmp_path / "mle")
    mle.fit()
    cfg = tiny_text_config("dense", **{"model.pretrain_steps": 0, "model.init_from": str(tmp_path / "mle")})
    gan = Trainer(cfg, tmp_path / "gan")
    gan.model.warm_start()
    for k, v in mle.model.G.state_dict().items():
        torch.testing.assert_close(gan.model.G.state_dict()[k], v)
    assert int(gan.model.warm_started) == 1
    with torch.no_grad():
        gan.model.G.out.bias.add_(1.0)
    gan.model.warm_start()  # already done: nothing is copied again
    torch.testing.assert_close(gan.model.G.out.bias, mle.model.G.out.bias + 1.0)


def test_conditional_generator_follows_the_label():
    cfg = load_config(None, ["model.kind=mle", "data.condition=label", "G.width=8", "G.depth=1",
                             "model.emb_dim=8", "data.batch_size=4", "optim.lr_g=0.02"])
    info = DataInfo("sequence", (5,), vocab=["<pad>", "<eos>", "<unk>", "a", "b"],
                    num_classes=2, class_names=["pos", "neg"])
    model = build_model(cfg, info)
    model.optimizers = model.configure_optimizers()
    batch = {"x": torch.tensor([[3, 3, 1, 0, 0], [4, 4, 1, 0, 0]] * 2), "y": torch.tensor([0, 1, 0, 1])}
    for step in range(150):
        model.train_phase("G", batch, step)
    c = model.parse_condition("neg", 3)
    assert c.tolist() == [[0.0, 1.0]] * 3
    x = model.decode(model.sample_inputs(3, torch.Generator().manual_seed(0), c=c))
    assert x.tolist() == [[4, 4, 1, 0, 0]] * 3


@pytest.mark.parametrize("kind,override,message", [
    ("dense", ["data.source=ring8", "data.toy_samples=64"], "trains on token sequences"),
    ("dense", ["D.name=cnn"], "use D.name=rnn"),
    ("seqgan", ["model.d_windows=[2,9]", "model.d_filters=[4,4]"], "do not fit"),
    ("gumbel", ["model.pretrain_steps=9"], "leaves no adversarial steps"),
    ("mle", ["G.name=dcgan"], "use G.name=lstm"),
    ("seqgan", ["model.baseline=mean"], "none, batch, ema"),
])
def test_bad_settings_raise_config_errors(kind, override, message):
    cfg = tiny_text_config(kind, **dict(o.split("=", 1) for o in override))
    from gankit.data import load_tensors

    _, _, info = load_tensors(cfg.data, 0)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, info)
