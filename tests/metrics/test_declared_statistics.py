"""A metric declares what it accumulates; the single pass and the statistics cache follow.

The new metric here (mean brightness) is one function and its glossary entry: nothing in
gankit/metrics/compute.py names it. It evaluates through ``gankit eval`` with the cache on.
"""
import pytest
import torch

from gankit.cli import main
from gankit.data.info import DataInfo
from gankit.errors import DataError
from gankit.metrics import compute
from gankit.metrics.accumulate import per_item
from gankit.metrics.compute import METRICS, compute_metrics, metric
from gankit.metrics.describe import GLOSSARY, LOWER, Entry
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

BRIGHTNESS = per_item("brightness", lambda x: x.flatten(1).mean(1))


@pytest.fixture
def brightness_metric(monkeypatch):
    """Registers ``brightness`` for one test (the registry and glossary restored after)."""
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))
    monkeypatch.setitem(GLOSSARY, "brightness_gap", Entry(
        "brightness gap", LOWER, "|mean pixel of the samples - mean pixel of the real images|"))

    @metric("brightness", fake=[BRIGHTNESS], real=[BRIGHTNESS])
    def _brightness(fake, ref, plan, info, out):
        real = ref.side()
        gap = abs(float(fake["brightness"].mean()) - float(real["brightness"].mean()))
        return {"brightness_gap": gap}, {"metric": "brightness", "n_fake": fake.n, "n_real": real.n}


def _spy_scans(monkeypatch):
    scanned = []
    original = compute._scan

    def spy(batches, plan, data, *args, **kwargs):
        side = original(batches, plan, data, *args, **kwargs)
        scanned.append((data, side.n))
        return side

    monkeypatch.setattr(compute, "_scan", spy)
    return scanned


INFO = DataInfo("image", (1, 2, 2), name="squares", size=3)


def test_a_new_statistic_is_accumulated_and_cached_by_its_declaration(brightness_metric, tmp_path,
                                                                        monkeypatch):
    # generated: mean pixels 0.5 and -0.25 (mean 0.125); real: 1, 0, -0.5 (mean 1/6)
    fake = [torch.full((1, 1, 2, 2), 0.5), torch.tensor([[[[-1.0, 0.5], [0.0, -0.5]]]])]
    real = [torch.stack([torch.full((1, 2, 2), v) for v in (1.0, 0.0, -0.5)])]
    scores = compute_metrics(["brightness"], fake, real, INFO, cache_dir=tmp_path)
    assert scores["brightness_gap"] == pytest.approx(1 / 6 - 0.125, abs=1e-7)
    # no extractor ran: the metric declared statistics of the items alone
    assert "extractor" not in scores.protocol["brightness_gap"]
    (entry,) = (tmp_path / "stats").glob("*.npz")
    assert "-brightness-" in entry.name
    scanned = _spy_scans(monkeypatch)
    again = compute_metrics(["brightness"], [torch.full((2, 1, 2, 2), 0.125)], None, INFO, cache_dir=tmp_path)
    assert again["brightness_gap"] == pytest.approx(1 / 6 - 0.125, abs=1e-7)
    assert scanned == [("generated", 2)]  # the real side came from the brightness entry


def test_an_entry_written_for_fid_never_answers_for_another_statistic(brightness_metric, tmp_path):
    real = [torch.stack([torch.full((1, 2, 2), v) for v in (1.0, 0.0, -0.5)])]
    fake = [torch.rand(4, 1, 2, 2)]
    compute_metrics(["fid"], fake, real, INFO, extractor="identity", cache_dir=tmp_path)
    # the cache holds FID's moments of these very items; brightness needs the items again
    with pytest.raises(DataError, match="need the real data"):
        compute_metrics(["brightness"], fake, None, INFO, cache_dir=tmp_path)
    # and FID, declared over features, is not answered by a brightness entry either
    compute_metrics(["brightness"], fake, real, INFO, cache_dir=tmp_path / "other")
    with pytest.raises(DataError, match="need the real data"):
        compute_metrics(["fid"], fake, None, INFO, extractor="identity", cache_dir=tmp_path / "other")


def _value(out, key):
    for line in out.splitlines():
        if line.split()[:1] == [key]:
            return float(line.split()[1]), line
    raise AssertionError(f"{key} not printed in {out!r}")


def test_gankit_eval_runs_a_registered_metric_with_the_cache_on(brightness_metric, tmp_path, capsys,
                                                                 monkeypatch):
    from gankit.api import load_run
    from gankit.metrics.cli import sample_batches

    run_dir = tmp_path / "run"
    cfg = tiny_toy_config(**{"data.source": "digits", "train.steps": 2})
    Trainer(cfg, run_dir).fit()
    capsys.readouterr()
    args = ["eval", str(run_dir), "--metrics", "fid,brightness", "--n", "50", "--n-real", "100",
            "--extractor", "identity", "--cache-dir", str(tmp_path / "cache"), "--no-reference",
            "--device", "cpu"]
    scanned = _spy_scans(monkeypatch)
    assert main(args) == 0
    gap, line = _value(capsys.readouterr().out, "brightness_gap")
    assert "brightness gap" in line and "lower is better" in line
    # by hand: the mean pixel of the samples gankit sample draws, and of the reference digits
    run = load_run(run_dir)
    fake = torch.cat(list(sample_batches(run, 50, 0, True, 50)))
    real = torch.cat(list(run.real_batches(100, max_items=100)))
    assert len(real) == 100
    assert gap == pytest.approx(abs(float(fake.mean()) - float(real.mean())), abs=1e-5)
    assert sorted(scanned) == sorted([("generated", 50), (run.info.name, 100)])
    scanned.clear()
    assert main(args) == 0  # the second time every real statistic comes from the cache
    assert scanned == [("generated", 50)]
    assert _value(capsys.readouterr().out, "brightness_gap")[0] == gap
    assert main(["eval", "--explain"]) == 0
    assert "brightness_gap" in capsys.readouterr().out
