"""The real reference of a metric: a seeded, stratified subset, recorded and part of the cache key."""
import numpy as np
import torch

from gankit.config import load_config
from gankit.data import build_source, data_identity
from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, reference_indices
from gankit.metrics.compute import compute_metrics


def _sorted_source(per_class=(500,) * 10):
    """Labels stored sorted by class, as MNIST-5k is; x holds each item's label."""
    y = torch.cat([torch.full((k,), c) for c, k in enumerate(per_class)])
    x = y.float().unsqueeze(1).repeat(1, 2)
    info = DataInfo("vector", (2,), name="sorted", size=len(y))
    return ResidentSource({"x": x, "y": y}, info, 10, 0, torch.device("cpu"))


def test_a_thousand_of_sorted_data_cover_every_class_equally():
    source = _sorted_source()
    seen = torch.cat([b["y"] for b in source.iter_items(250, max_items=1000)])
    # the first 1,000 in stored order would be 500 zeros and 500 ones
    assert torch.bincount(seen, minlength=10).tolist() == [100] * 10
    assert source.reference_subset(1000) == "random 1000 of 5000, stratified by class, seed 0"
    assert source.reference_subset(None) == "all 5000"


def test_stratified_quota_hands_remainders_to_the_largest_shares():
    # shares of 7 items over classes of 5, 3, 2: exact 3.5, 2.1, 1.4 -> 3, 2, 1 and one left
    # over, which goes to class 0 (fraction .5 beats .4 and .1)
    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    idx = reference_indices(10, 7, y)
    assert torch.bincount(y[idx], minlength=3).tolist() == [4, 2, 1]
    assert idx.tolist() == sorted(set(idx.tolist()))  # sorted, no repeats
    assert torch.equal(idx, reference_indices(10, 7, y))  # seeded
    assert reference_indices(10, 20, y).tolist() == list(range(10))


def test_cache_key_depends_on_subset_and_data_identity(tmp_path):
    info = DataInfo("vector", (2,), name="pts", size=40)
    real = lambda: iter([torch.randn(40, 2, generator=torch.Generator().manual_seed(1))])
    fake = lambda: iter([torch.randn(30, 2)])
    for reference in ({"subset": "all 40", "data_id": "a"}, {"subset": "random 20 of 40", "data_id": "a"},
                      {"subset": "all 40", "data_id": "b"}):
        scores = compute_metrics(["fid"], fake(), real(), info, cache_dir=tmp_path,
                                 reference=reference)
        assert scores.protocol["fid"]["real_subset"] == reference["subset"]
    assert len(list((tmp_path / "stats").glob("*.npz"))) == 3


def test_data_identity_names_toy_seed_and_folder_contents(tmp_path):
    cfg = load_config(None, ["data.source=ring8", "data.toy_samples=64", "data.batch_size=8"])
    info = build_source(cfg.data, 0, torch.device("cpu")).info
    assert data_identity(cfg.data, 0, info) != data_identity(cfg.data, 1, info)
    points = tmp_path / "p.npy"
    np.save(points, np.zeros((16, 2), dtype=np.float32))
    cfg = load_config(None, [f"data.source={points}", "data.batch_size=8"])
    info = build_source(cfg.data, 0, torch.device("cpu")).info
    assert data_identity(cfg.data, 0, info) == f"{points} at {points.resolve()} (16 items)"


def test_training_evaluation_records_the_reference(tmp_path):
    import json

    from gankit.training.trainer import Trainer
    from tests.conftest import tiny_toy_config

    cfg = tiny_toy_config(**{"eval.metrics": "fid", "eval.n_samples": 100, "eval.extractor": "identity",
                             "train.steps": 4})
    Trainer(cfg, tmp_path / "run").fit()
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["protocol"]["fid"]["real_subset"] == "random 100 of 512, stratified by class, seed 0"
    assert record["protocol"]["fid"]["n_real"] == 100
    # the cache (GANKIT_CACHE, a temporary folder here) holds the statistics under that key
    (cached,) = (tmp_path / "gankit-cache" / "stats").glob("*.npz")
    assert "seed=0 n=512" in json.loads(str(np.load(cached)["protocol"]))["data_id"]
