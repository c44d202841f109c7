import pytest

from gankit.config import load_config


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # sampled oracle data is cached on disk; keep the tests' copies out of the user's cache
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path_factory.getbasetemp() / "gankit-cache"))


def tiny_text_config(kind="mle", **overrides):
    """A 40-word, 6-token oracle task small enough to train a few steps in well under a second."""
    items = {
        "data.source": "oracle", "data.vocab_size": 40, "data.max_len": 6, "data.toy_samples": 256,
        "data.batch_size": 16, "model.kind": kind, "model.emb_dim": 8, "G.width": 8, "G.depth": 1,
        "train.steps": 6, "train.log_every": 2, "train.sample_every": 0, "train.ckpt_every": 0,
        "train.progress": False, "train.ema": 0.0,
    }
    if kind in ("seqgan", "gumbel", "dense"):
        items.update({"model.pretrain_steps": 2, "model.d_pretrain_steps": 1, "model.d_emb_dim": 8,
                      "model.d_windows": "[2,3]", "model.d_filters": "[4,4]"})
    if kind == "seqgan":
        items["model.rollouts"] = 2
    if kind == "dense":
        items["model.d_hidden"] = 8
    items.update(overrides)
    return load_config(None, [f"{k}={v}" for k, v in items.items()])
