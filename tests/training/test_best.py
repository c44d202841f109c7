"""eval.every and eval.best: when metrics are computed, which checkpoint best.pt holds, and
that a resumed run keeps a better best.pt."""
import json

import torch

from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

EVAL = {"eval.metrics": "fid", "eval.extractor": "identity", "eval.n_samples": 64,
        "eval.every": 2, "eval.best": "fid", "train.steps": 6}


def _records(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]


def test_eval_every_and_best_keep_the_lowest_fid(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_toy_config(**EVAL), run).fit()
    records = _records(run)
    # every 2 steps; step 6, the last, is the final evaluation alone
    assert [(r["step"], r["final"]) for r in records] == [(2, False), (4, False), (6, True)]
    lowest = min(records, key=lambda r: r["metrics/fid"])
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"] == {"fid": lowest["metrics/fid"]}
    assert best["step"] == lowest["step"]
    # best.pt holds the generator of that step: evaluating it again gives the same FID
    trainer = Trainer(tiny_toy_config(**EVAL), tmp_path / "again")
    trainer.model.load_state_dict(best["model"])
    torch.testing.assert_close(trainer.evaluate()["fid"], lowest["metrics/fid"])


def test_a_resumed_run_keeps_a_better_best(tmp_path):
    from gankit.training.checkpoint import atomic_save

    run = tmp_path / "run"
    Trainer(tiny_toy_config(**{**EVAL, "train.steps": 2}), run).fit()
    path = run / "checkpoints" / "best.pt"
    best = load_checkpoint(path)
    best["best"] = {"fid": -1.0}  # no later evaluation can beat it
    atomic_save(best, path)
    before = path.read_bytes()
    resumed = Trainer(tiny_toy_config(**EVAL), run, resume=True)
    resumed.fit()
    assert len(_records(run)) > 2  # the resumed run did evaluate
    assert path.read_bytes() == before
    assert load_checkpoint(run / "checkpoints" / "last.pt")["best"] == {"fid": -1.0}
