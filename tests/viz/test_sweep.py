import json
import statistics

import pytest

from gankit.errors import GankitError
from gankit.metrics.describe import format_mean_std
from gankit.viz.sweep import parse_grid, plan_sweep, run_sweep

TINY = ["data.toy_samples=256", "data.batch_size=32", "G.width=16", "D.width=16", "G.depth=2",
        "D.depth=2", "train.steps=6", "train.log_every=3", "train.sample_every=0", "train.ckpt_every=0",
        "eval.metrics=[toy]", "eval.n_samples=200"]


def test_parse_grid_splits_axes_from_fixed_overrides():
    axes, fixed = parse_grid(["loss.name=hinge,wgan", "train.steps=5", "eval.metrics=[toy,fid]"])
    assert axes == [["loss.name=hinge", "loss.name=wgan"]]
    assert fixed == ["train.steps=5", "eval.metrics=[toy,fid]"]
    with pytest.raises(GankitError, match="key=value"):
        parse_grid(["hinge"])


def test_plan_is_the_product_of_axes_and_seeds(tmp_path):
    runs = plan_sweep(["loss.name=a,b", "optim.lr_d=1,2", "train.steps=5"], seeds=2, out=tmp_path)
    assert len(runs) == 8
    assert runs[0].overrides == ["train.steps=5", "loss.name=a", "optim.lr_d=1", "train.seed=0"]
    assert runs[0].path == tmp_path / "loss.name=a,optim.lr_d=1" / "seed0"
    assert runs[-1].setting == "loss.name=b optim.lr_d=2" and runs[-1].seed == 1
    with pytest.raises(GankitError, match="--seeds"):
        plan_sweep(["train.seed=1,2"], seeds=1, out=tmp_path)


def test_sweep_trains_every_seed_and_summarises_mean_and_std(tmp_path):
    out = tmp_path / "sweep"
    echoed = []
    assert run_sweep("toy_ring8", TINY, seeds=2, jobs=2, out=out, echo=echoed.append) == 0
    finals = [json.loads((out / "default" / f"seed{k}" / "metrics.jsonl").read_text().splitlines()[-1])
              for k in (0, 1)]
    modes = [f["metrics/modes"] for f in finals]
    table = (out / "summary.md").read_text().splitlines()
    assert table[0] == ("| setting | seeds | beyond_10std | high_quality | mode_kl | modes | "
                        "modes_fair | within_1std |")
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:2] == ["default", "2"]
    assert cells[5] == format_mean_std(statistics.fmean(modes), statistics.stdev(modes))
    html = (out / "report.html").read_text()
    assert html.count("<figure>") == 4  # each seed's final samples and toy scatter
    assert html.count("<figcaption>final (step") == 2
    # a second call finds both runs finished and trains nothing
    echoed.clear()
    assert run_sweep("toy_ring8", TINY, seeds=2, jobs=2, out=out, echo=echoed.append) == 0
    assert echoed[0] == "sweep: 2 runs, 2 already finished, 2 at a time"


def test_summary_has_one_row_per_setting(tmp_path, make_run):
    from gankit.viz.sweep import SweepRun, summary_table

    runs = []
    for loss, modes in (("hinge", (6.0, 8.0)), ("wgan", (5.0, 5.0))):
        for k, m in enumerate(modes):
            path = make_run(f"{loss}/seed{k}", loss, k, modes=m, kl=0.5)
            runs.append(SweepRun(f"loss.name={loss}", k, [], path))
    assert summary_table(runs).splitlines() == [
        "| setting | seeds | mode_kl | modes |", "|---|---|---|---|",
        "| loss.name=hinge | 2 | 0.5 ± 0 | 7.0 ± 1.4 |", "| loss.name=wgan | 2 | 0.5 ± 0 | 5 ± 0 |"]


def test_a_bad_key_fails_before_any_run(tmp_path):
    from gankit.errors import ConfigError

    with pytest.raises(ConfigError):
        run_sweep("toy_ring8", ["loss.nam=hinge,lsgan"], seeds=1, jobs=1, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()
