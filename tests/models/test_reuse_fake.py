"""model.reuse_fake: G's first update of a step takes the batch D just judged. One G forward
less per step, the same gradient as a fresh forward of the same latents through the updated D,
stops only between steps, and bit-identical resume."""
import copy

import pytest
import torch

from gankit.errors import ConfigError, TrainingInterrupted
from gankit.models import MODELS
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer
from tests.conftest import stop_after, tiny_toy_config
from tests.models.test_cgan import INFO, batch_of, tiny_config
from tests.training.test_trainer import assert_states_equal, final_state


def g_forwards(cfg, tmp_path) -> int:
    trainer = Trainer(cfg, tmp_path)
    calls = []
    trainer.model.G.register_forward_hook(lambda *_: calls.append(1))
    trainer.run_steps(3)
    return len(calls)


@pytest.mark.parametrize("n_gen", [1, 2])
def test_one_g_forward_less_per_step(tmp_path, n_gen):
    plain = g_forwards(tiny_toy_config(**{"train.n_gen": n_gen}), tmp_path / "plain")
    reused = g_forwards(tiny_toy_config(**{"train.n_gen": n_gen, "model.reuse_fake": True}),
                        tmp_path / "reused")
    assert plain == 3 * (1 + n_gen)  # D's batch, then one per G phase
    assert reused == 3 * n_gen  # the first G phase takes D's


def build(**overrides):
    torch.manual_seed(0)
    model = MODELS.get("gan")(tiny_config(**overrides), INFO)
    model.optimizers = model.configure_optimizers()
    return model


@pytest.mark.parametrize("condition", ["none", "label"])
def test_g_gets_the_gradient_of_its_latents_through_the_updated_d(condition):
    model = build(**{"data.condition": condition, "model.reuse_fake": True})
    for group in model.optimizers["G"].param_groups:
        group["lr"] = 0.0  # G keeps its weights: its gradient stays readable after the step
    batch = batch_of([3, 1, 4, 1, 5, 9, 2, 6, 5, 3] * 2)
    d_before = copy.deepcopy(model.D)
    model.train_phase("D", batch, 0)
    raw, z, c, y = model._kept_fake
    g_copy = copy.deepcopy(model.G)
    if condition == "label":  # G is shown the labels of D's real batch
        assert torch.equal(c, model.batch_conditions(batch)) and torch.equal(y, batch["y"])
    else:
        assert c is None
    assert torch.equal(raw.detach(), g_copy(z, c))  # the batch D judged
    model.train_phase("G", None, 0)
    assert "_kept_fake" not in model.__dict__  # used once
    got = [p.grad.clone() for p in model.G.parameters()]

    def expected(d):
        g = copy.deepcopy(g_copy)
        model.loss.g_loss(d(g(z, c), c).float()).backward()
        return [p.grad for p in g.parameters()]

    for a, b in zip(got, expected(model.D)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # and not the gradient through D as it was before its update
    assert any(not torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(got, expected(d_before)))


def test_schedule_takes_no_batch_for_the_reused_phase_only():
    model = build(**{"data.condition": "label", "model.reuse_fake": True, "train.n_gen": 2})
    assert [(p.name, p.needs_batch) for p in model.schedule()] == [("D", True), ("G", False), ("G", True)]
    plain = build(**{"data.condition": "label", "train.n_gen": 2})
    assert [(p.name, p.needs_batch) for p in plain.schedule()] == [("D", True), ("G", True), ("G", True)]
    assert model.step_is_atomic and not plain.step_is_atomic


@pytest.mark.parametrize("overrides,word", [
    ({"model.mode_seeking": 0.3}, "mode_seeking"),
    ({"train.n_critic": 2}, "n_critic=1"),
])
def test_refused_where_there_is_no_single_batch_to_reuse(overrides, word):
    with pytest.raises(ConfigError, match=word):
        build(**{"model.reuse_fake": True, **overrides})


def test_a_stop_waits_for_the_end_of_the_step_and_resumes_bit_identically(tmp_path):
    cfg = tiny_toy_config(**{"model.reuse_fake": True})
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()

    first = Trainer(cfg, tmp_path / "split")
    first.phase_callbacks.append(stop_after(9))  # asked between D and G of step 4 (index 4)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        first.fit()
    ckpt = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert (ckpt["step"], ckpt["phase"]) == (5, 0)  # G's phase of step 4 ran first

    second = Trainer(cfg, tmp_path / "split", resume=True)
    second.fit()
    assert second.step == whole.step == cfg.train.steps
    assert_states_equal(final_state(whole), final_state(second))
