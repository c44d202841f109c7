"""VAE, flows and GLO through the same CLI, trainer, checkpoints, sampling and metrics as the
GANs; the held-out split and binarised data they are measured on."""
import json

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gankit.api import load_run
from gankit.cli import main
from gankit.config import DataConfig, load_config
from gankit.data import held_out_tensors, load_tensors
from gankit.data.info import DataInfo
from gankit.metrics.compute import likelihood_scores
from gankit.errors import ConfigError, TrainingInterrupted
from gankit.models import MODELS
from gankit.training.trainer import Trainer
from tests.conftest import stop_after

TOY = ["data.source=ring8", "data.toy_samples=600", "data.batch_size=32", "data.held_out=0.1",
       "G.name=auto", "G.width=16", "G.depth=1", "G.norm=none", "train.steps=6", "train.log_every=3",
       "train.sample_every=0", "train.ckpt_every=0", "train.progress=false"]
FAMILIES = {
    "vae": ["model.kind=vae", "model.z_dim=2", "model.iwae_k=8"],
    "flow": ["model.kind=flow", "model.n_couplings=4"],
    "flowgan": ["model.kind=flow", "model.objective=hybrid", "model.n_couplings=4", "D.name=mlp",
                "D.width=16", "D.depth=1", "D.norm=none"],
    "glo": ["model.kind=glo", "model.z_dim=2"],
}
LIKELIHOOD_KEYS = {"vae": "nll_iwae_nats_continuous", "flow": "nll_nats_continuous",
                   "flowgan": "nll_nats_continuous"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    for name, opts in FAMILIES.items():
        assert main(["train", *TOY, *opts, "--out", str(root / name)]) == 0, name
    return root


@pytest.mark.parametrize("family", list(FAMILIES))
def test_train_sample_and_eval_from_the_cli(runs, family, tmp_path, capsys):
    run = runs / family
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 6]
    assert main(["sample", str(run), "--n", "20", "--out", str(tmp_path / "s")]) == 0
    samples = np.load(tmp_path / "s" / "samples.npy")
    assert samples.shape == (20, 2) and np.isfinite(samples).all()
    assert main(["eval", str(run), "--metrics", "toy,fid", "--n", "200", "--no-cache",
                 "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    printed = {l.split()[0]: float(l.split()[1]) for l in out.splitlines() if l.split()[0] in ("fid", "modes")}
    # the run's own 200 samples (one seeded batch) against its 540 training points: a sampler
    # that returned anything but this model's samples would print other values
    from gankit.metrics.compute import compute_metrics

    loaded = load_run(run)
    samples = loaded.generate(200, seed=0, batch_size=250)
    direct = compute_metrics(["fid", "toy"], [samples], loaded.real_batches(250), loaded.info,
                             extractor="identity", use_cache=False)
    assert printed["fid"] == pytest.approx(direct["fid"], rel=1e-5)
    assert printed["modes"] == direct["modes"]


@pytest.mark.parametrize("family", ["vae", "flow", "flowgan"])
def test_likelihood_of_the_held_out_split(runs, family):
    run = load_run(runs / family)
    test = held_out_tensors(run.cfg.data, run.cfg.train.seed)
    assert len(test["x"]) == 60 and run.info.size == 540
    scores = likelihood_scores(run.model, [test["x"][:30], test["x"][30:]])
    key = LIKELIHOOD_KEYS[family]
    assert np.isfinite(scores[key])
    assert scores.protocol[key]["n"] == 60 and scores.protocol[key]["unit"] == "nats per item"


def test_training_logs_carry_unit_and_variant(runs):
    vae = json.loads((runs / "vae" / "log.jsonl").read_text().splitlines()[-1])
    assert {"nll_elbo_nats_continuous", "vae/kl_nats", "vae/active_units"} <= set(vae)
    flowgan = json.loads((runs / "flowgan" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss/D", "loss/G", "nll_nats_continuous"} <= set(flowgan)


@pytest.mark.parametrize("family,stop", [("flowgan", 5), ("glo", 4), ("vae", 3)])
def test_resume_is_bit_identical(tmp_path, family, stop):
    """Stopping mid-run and resuming ends where an uninterrupted run ends: the codes' sparse
    Adam state, the flow's D/G phases and the VAE's noise are all in the checkpoint."""
    cfg = load_config(None, [*TOY, *FAMILIES[family], "train.ema=0.9"])
    whole = Trainer(cfg, tmp_path / "whole")
    whole.fit()
    first = Trainer(cfg, tmp_path / "split")
    first.phase_callbacks.append(stop_after(stop))
    with pytest.raises(TrainingInterrupted):
        first.fit()
    second = Trainer(cfg, tmp_path / "split", resume=True)
    second.fit()
    a, b = whole.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_image_families_run_on_digits(tmp_path):
    """One step of each family on 8x8 images (MLP VAE and GLO, a three-scale flow)."""
    base = ["data.source=digits", "data.batch_size=16", "data.held_out=0.1", "G.name=auto", "G.width=8",
            "G.depth=1", "G.norm=none", "train.steps=2", "train.log_every=1", "train.progress=false",
            "train.sample_every=0", "train.ckpt_every=0"]
    extra = {"vae": ["model.kind=vae", "G.name=mlp", "model.z_dim=4"],
             "vae_binary": ["model.kind=vae", "G.name=mlp", "data.binarize=true", "model.z_dim=4"],
             "flow": ["model.kind=flow", "model.n_scales=3"],
             "glo": ["model.kind=glo", "G.name=mlp", "model.z_dim=4", "model.lap_levels=2"]}
    for name, opts in extra.items():
        assert main(["train", *base, *opts, "--out", str(tmp_path / name)]) == 0, name
    log = json.loads((tmp_path / "vae" / "log.jsonl").read_text().splitlines()[-1])
    assert "nll_elbo_bpd_8bit" in log
    log = json.loads((tmp_path / "vae_binary" / "log.jsonl").read_text().splitlines()[-1])
    assert "nll_elbo_nats_binarised" in log
    log = json.loads((tmp_path / "flow" / "log.jsonl").read_text().splitlines()[-1])
    # the dequantised NLL bounds a discrete NLL from above, so it can never be negative
    assert 0 < log["nll_bpd_8bit_dequantised"] < float("inf")
    x = load_run(tmp_path / "flow").generate(4)
    assert x.shape == (4, 1, 8, 8) and x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("preset", ["toy_ring8_flow", "mnist_vae", "mnist_vae_binary",
                                    "mnist_realnvp", "mnist_flowgan", "mnist_glo"])
def test_presets_build_their_models(preset):
    cfg = load_config(preset)
    info = (DataInfo("vector", (2,), name="ring8", size=90_000) if cfg.data.source == "ring8"
            else DataInfo("image", (1, 28, 28), name="mnist5k", size=4500))
    model = MODELS.get(cfg.model.kind)(cfg, info)
    assert cfg.data.held_out == 0.1  # every family is measured on the same held-out split
    assert model.decode(model.sample_inputs(2)).shape == (2, *info.shape)


# ---- the data these families are measured on -------------------------------------------------
def test_held_out_split_is_disjoint_deterministic_and_complete():
    cfg = DataConfig(source="digits", held_out=0.2)
    train, _, info = load_tensors(cfg, seed=0)
    test = held_out_tensors(cfg, seed=5)  # the split does not move with the training seed
    full, _, _ = load_tensors(DataConfig(source="digits"), seed=0)
    assert len(train["x"]) + len(test["x"]) == len(full["x"]) == 1797
    assert info.size == len(train["x"]) and info.name == "digits[train 0.8]"
    assert torch.equal(train["index"], torch.arange(info.size))
    # every original item is in exactly one part
    both = torch.cat([train["x"], test["x"]]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == torch.unique(full["x"].flatten(1), dim=0).shape[0]
    assert_close(held_out_tensors(cfg, 0)["x"], test["x"])


def test_binarised_images_and_errors():
    train, _, info = load_tensors(DataConfig(source="digits", binarize=True), 0)
    assert set(train["x"].unique().tolist()) == {-1.0, 1.0}
    assert info.name == "digits-binarised"
    raw, _, _ = load_tensors(DataConfig(source="digits"), 0)
    assert torch.equal(train["x"] > 0, raw["x"] > 0)
    with pytest.raises(ConfigError, match="data.binarize applies to single images"):
        load_tensors(DataConfig(source="ring8", binarize=True, toy_samples=100), 0)
    with pytest.raises(ConfigError, match="data.held_out=0"):
        held_out_tensors(DataConfig(source="digits"), 0)
