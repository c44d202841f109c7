import pytest
import torch

from gankit.config import load_config


@pytest.fixture(autouse=True)
def _small_threads():
    # Two cores are shared by everything on CI machines; keep tests on one thread each.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session", autouse=True)
def _private_session_folders(tmp_path_factory):
    # Module-scoped fixtures (runs trained once per file, spawned rank processes) are set up
    # before the per-test fixture below: they get a private cache and working folder too.
    patch = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("session")
    patch.setenv("GANKIT_CACHE", str(base / "gankit-cache"))
    patch.chdir(base)
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _private_folders(tmp_path, monkeypatch):
    # Tests write only inside their temporary folder: a `gankit train` without --out makes
    # runs/ here, not in the checkout, and the statistics cache is not the user's ~/.cache.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "gankit-cache"))


def tiny_toy_config(**overrides):
    """A ring-8 GAN small enough to train a few dozen steps in well under a second."""
    items = {
        "data.source": "ring8", "data.toy_samples": 512, "data.batch_size": 32,
        "model.z_dim": 4, "G.name": "mlp", "G.width": 16, "G.depth": 2, "G.norm": "none",
        "D.name": "mlp", "D.width": 16, "D.depth": 2, "D.norm": "none",
        "train.steps": 12, "train.log_every": 4, "train.sample_every": 0, "train.ckpt_every": 0,
        "train.progress": False, "train.ema": 0.9,
    }
    items.update(overrides)
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def stop_after(n_phases):
    """A trainer phase callback that asks for a stop after ``n_phases`` phases."""
    count = {"n": 0}

    def callback(trainer):
        count["n"] += 1
        if count["n"] == n_phases:
            trainer.request_stop()

    return callback


def poison_d_at(step):
    """A trainer phase callback that fills D's weights with NaN once ``step`` is reached, so
    that the next losses are non-finite (a run made to diverge)."""

    def callback(trainer):
        if trainer.step == step:
            with torch.no_grad():
                for p in trainer.model.D.parameters():
                    p.fill_(float("nan"))

    return callback
