import json

import pytest
import torch

from gankit.errors import CheckpointError, TrainingDiverged, TrainingInterrupted
from gankit.training.checkpoint import load_checkpoint, restore
from gankit.training.trainer import Trainer
from tests.conftest import poison_d_at, stop_after, tiny_toy_config


def final_state(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def opt_state(trainer):
    return {name: o.state_dict()["state"] for name, o in trainer.model.optimizers.items()}


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_seed_seeds_torch_numpy_and_random(tmp_path):
    import random

    import numpy as np

    for seed in (3, 4):
        Trainer(tiny_toy_config(**{"train.seed": seed}), tmp_path / str(seed))
        assert np.random.rand() == np.random.RandomState(seed).rand()
        assert random.random() == random.Random(seed).random()


@pytest.mark.parametrize("loss,n_critic,stop_phase", [
    ("wgan-gp", 3, 14),        # step 3, between the second and third critic step
    ("nonsaturating", 1, 9),   # between D and G of step 4
])
def test_resume_is_bit_identical(tmp_path, loss, n_critic, stop_phase):
    cfg = tiny_toy_config(**{"loss.name": loss, "train.n_critic": n_critic})
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()

    first = Trainer(cfg, tmp_path / "split")
    first.phase_callbacks.append(stop_after(stop_phase))
    with pytest.raises(TrainingInterrupted, match="--resume"):
        first.fit()
    ckpt = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert (ckpt["step"] * (n_critic + 1) + ckpt["phase"]) == stop_phase
    assert ckpt["phase"] != 0  # really stopped inside a step

    second = Trainer(cfg, tmp_path / "split", resume=True)
    assert (second.step, second.phase) == (ckpt["step"], ckpt["phase"])
    second.fit()
    assert second.step == whole.step == cfg.train.steps
    assert_states_equal(final_state(whole), final_state(second))
    for name in ("G", "D"):
        a, b = opt_state(whole)[name], opt_state(second)[name]
        for pid in a:
            for key in a[pid]:
                assert torch.equal(torch.as_tensor(a[pid][key]), torch.as_tensor(b[pid][key]))


def test_ema_tracks_the_generator(tmp_path):
    cfg = tiny_toy_config(**{"train.ema": 0.5, "train.steps": 1})
    trainer = Trainer(cfg, tmp_path / "run")
    before = [p.clone() for p in trainer.model.ema_nets["G"].parameters()]
    trainer.fit()
    for old, ema, live in zip(before, trainer.model.ema_nets["G"].parameters(), trainer.model.G.parameters()):
        torch.testing.assert_close(ema, 0.5 * old + 0.5 * live)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny_toy_config(**{"train.ckpt_every": 4, "train.steps": 20})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.phase_callbacks.append(poison_d_at(6))
    with pytest.raises(TrainingDiverged, match=r"loss/D.*non-finite by step 8.*step 4"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    cfg = tiny_toy_config(**{"train.steps": 2})
    Trainer(cfg, tmp_path / "run").fit()
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run; resume it with --resume"):
        Trainer(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_checkpoint_of_another_model_kind_is_refused(tmp_path):
    cfg = tiny_toy_config(**{"train.steps": 1})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.fit()
    ckpt = load_checkpoint(trainer.ckpt_path)
    ckpt["kind"] = "vae"
    with pytest.raises(CheckpointError, match="holds a 'vae' model but the config builds 'gan'"):
        restore(trainer.model, trainer.source, ckpt, "x.pt")


def test_logs_are_written_every_log_every_steps(tmp_path):
    cfg = tiny_toy_config(**{"train.steps": 8, "train.log_every": 4})
    Trainer(cfg, tmp_path / "run").fit()
    lines = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [4, 8]
    assert {"loss/D", "loss/G", "D/real", "D/fake", "steps_per_s"} <= set(lines[0])
    assert (tmp_path / "run" / "samples" / "final.png").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_lr_factor_by_hand():
    from gankit.training.trainer import lr_factor

    assert [lr_factor(s, 8, 0.5) for s in range(9)] == [1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert [lr_factor(s, 4, 1.0) for s in range(4)] == [1, 1, 1, 1]
    assert [lr_factor(s, 4, 0.0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert [lr_factor(s, 10, 0.5) for s in range(10)] == pytest.approx([1] * 6 + [0.8, 0.6, 0.4, 0.2])


def test_lr_decay_reaches_the_optimizers_and_resumes_bit_identically(tmp_path):
    over = {"train.steps": 8, "optim.decay_start": 0.5, "optim.lr_g": 0.01, "optim.lr_d": 0.02,
            "train.ckpt_every": 0, "train.log_every": 8}
    whole = Trainer(tiny_toy_config(**over), tmp_path / "whole")
    whole.fit()
    # the last step (7) ran at a quarter of the configured rates
    assert whole.model.optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.0025)
    assert whole.model.optimizers["D"].param_groups[0]["lr"] == pytest.approx(0.005)
    first = Trainer(tiny_toy_config(**over), tmp_path / "split")
    first.phase_callbacks.append(stop_after(11))  # inside step 5, during the decay
    with pytest.raises(TrainingInterrupted):
        first.fit()
    second = Trainer(tiny_toy_config(**over), tmp_path / "split", resume=True)
    assert second.base_lrs["G"] == [0.01]  # the configured rate, not the checkpoint's decayed one
    second.fit()
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    constant = Trainer(tiny_toy_config(**{**over, "optim.decay_start": 1.0}), tmp_path / "const")
    constant.fit()
    assert constant.model.optimizers["G"].param_groups[0]["lr"] == 0.01
    differs = any(not torch.equal(v, constant.model.state_dict()[k]) for k, v in whole.model.state_dict().items())
    assert differs


def test_non_finite_loss_is_caught_before_a_grid_or_an_evaluation_between_log_ticks(tmp_path):
    # log ticks every 100 steps; a grid and an evaluation at step 7, a checkpoint every 4
    cfg = tiny_toy_config(**{"train.log_every": 100, "train.sample_every": 7, "train.ckpt_every": 4,
                             "train.steps": 20, "eval.every": 7, "eval.metrics": "fid",
                             "eval.extractor": "identity", "eval.n_samples": 64})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.phase_callbacks.append(poison_d_at(6))
    with pytest.raises(TrainingDiverged, match=r"loss/.*non-finite by step 7;.*step 4"):
        trainer.fit()
    assert not (tmp_path / "run" / "samples" / "step_0000007.png").exists()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4
