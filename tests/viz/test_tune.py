"""gankit tune on Optuna: two worker processes sharing one SQLite study, and pruning."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gankit.errors import GankitError
from gankit.viz.tune import make_objective, parse_space

optuna = pytest.importorskip("optuna")
ROOT = Path(__file__).resolve().parents[2]
TINY = ["data.toy_samples=256", "data.batch_size=32", "G.width=16", "D.width=16", "G.depth=2",
        "D.depth=2", "train.steps=6", "train.log_every=3", "train.sample_every=0", "train.ckpt_every=0",
        "train.progress=false", "train.threads=1", "eval.metrics=[toy]", "eval.n_samples=200", "eval.every=3"]


def test_parse_space():
    assert parse_space(["optim.lr_d=log:1e-4:1e-2", "loss.name=choice:hinge,wgan", "G.depth=int:1:3"]) == {
        "optim.lr_d": ("log", ["1e-4", "1e-2"]), "loss.name": ("choice", ["hinge", "wgan"]),
        "G.depth": ("int", ["1", "3"])}
    for bad in ("optim.lr_d=log:0:1", "optim.lr_d=float:2:1", "x=cubic:1:2", "x=float:a:b"):
        with pytest.raises(GankitError):
            parse_space([bad])


def test_two_workers_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = [sys.executable, "-m", "gankit", "tune", "toy_ring8", *TINY, "--metric", "high_quality",
           "--param", "optim.lr_d=log:1e-4:1e-2", "--param", "loss.name=choice:hinge,lsgan",
           "--trials", "4", "--storage", storage, "--study", "s", "--out", str(tmp_path / "trials")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="s", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # 4 to stop; a trial the other worker had under way at that moment still ends
    assert 4 <= len(done) <= 5 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    for t in done:
        records = [json.loads(l) for l in (tmp_path / "trials" / f"trial_{t.number:04d}" / "metrics.jsonl")
                   .read_text().splitlines()]
        assert t.value == records[-1]["metrics/high_quality"] and records[-1]["final"]
        # every evaluation during training was reported to Optuna at its step
        assert t.intermediate_values == {r["step"]: r["metrics/high_quality"] for r in records if not r["final"]}
        assert set(t.params) == {"optim.lr_d", "loss.name"}
    assert all(f"best high_quality = {study.best_value:.4g}" in out for out, _ in outputs)


class _PruneAlways:
    number, reported = 7, []

    def suggest_categorical(self, name, choices):
        return choices[0]

    def report(self, value, step):
        self.reported.append(step)

    def should_prune(self):
        return True


def test_a_pruned_trial_stops_at_its_first_evaluation(tmp_path):
    objective = make_objective("toy_ring8", TINY, parse_space(["loss.name=choice:hinge,lsgan"]),
                               "high_quality", tmp_path, optuna)
    trial = _PruneAlways()
    with pytest.raises(optuna.TrialPruned):
        objective(trial)
    logged = [json.loads(l)["step"] for l in (tmp_path / "trial_0007" / "log.jsonl").read_text().splitlines()]
    assert trial.reported == [3] and logged == [3]  # stopped before step 6
