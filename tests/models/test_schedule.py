"""The D/G update schedule as data: n_critic D phases, then n_gen G phases, per step."""
import pytest

from gankit.errors import ConfigError
from gankit.models.base import Phase
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config


def adam_steps(opt):
    return {int(s["step"]) for s in opt.state_dict()["state"].values()}


@pytest.mark.parametrize("n_critic,n_gen", [(1, 1), (1, 2), (3, 1), (2, 3)])
def test_each_step_runs_n_critic_d_then_n_gen_g_updates(tmp_path, n_critic, n_gen):
    cfg = tiny_toy_config(**{"train.n_critic": n_critic, "train.n_gen": n_gen, "train.steps": 5})
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.model.schedule() == [Phase("D")] * n_critic + [Phase("G", False)] * n_gen
    trainer.fit()
    opts = trainer.model.optimizers
    assert adam_steps(opts["D"]) == {5 * n_critic} and adam_steps(opts["G"]) == {5 * n_gen}


def test_n_gen_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="train.n_gen must be at least 1"):
        tiny_toy_config(**{"train.n_gen": 0})
