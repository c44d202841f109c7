import json

import pytest

from gankit.cli import main
from gankit.errors import GankitError
from gankit.viz.runs import differing_keys, find_runs, format_runs_table, group_by_setting, read_run
from tests.viz.conftest import toy_config, write_run


def test_state_finished_stopped_diverged_new(tmp_path, make_run):
    assert read_run(make_run("a", done=100)).state == "finished"
    assert read_run(make_run("b", done=40)).state == "stopped"
    diverged = make_run("c", done=40)
    with open(diverged / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 40, "event": "diverged", "keys": ["loss/D"]}) + "\n")
    assert read_run(diverged).state == "diverged"
    assert read_run(write_run(tmp_path / "d", toy_config(), [])).state == "new"


def test_curves_drop_bookkeeping_bools_and_non_finite(tmp_path):
    run = read_run(write_run(tmp_path / "r", toy_config(), [
        {"step": 20, "loss/D": 2.0, "time": 5.0}, {"step": 10, "loss/D": 1.0, "time": 4.0},
        {"step": 30, "loss/D": float("nan"), "time": 6.0}],
        [{"step": 10, "metrics/mode_kl": float("inf"), "final": False},
         {"step": 20, "metrics/mode_kl": 0.5, "final": False},
         {"step": 20, "metrics/mode_kl": 0.5, "final": True}]))
    curves = run.curves()
    assert curves == {"loss/D": [(10, 1.0), (20, 2.0)], "metrics/mode_kl": [(20, 0.5)]}


def test_the_final_evaluation_is_the_last_point_of_a_metric_curve(tmp_path):
    """Training evaluates its last step once, as the final evaluation: that is the curve's
    last point (a later gankit eval's record is not a point)."""
    run = read_run(write_run(tmp_path / "r", toy_config(), [], [
        {"step": 10, "metrics/modes": 5.0, "final": False},
        {"step": 20, "metrics/modes": 8.0, "final": True},
        {"step": 20, "metrics/modes": 7.0, "source": "gankit eval", "n": 100}]))
    assert run.curves() == {"metrics/modes": [(10, 5.0), (20, 8.0)]}


def test_timing_from_first_to_last_record(make_run):
    # records at steps 10..100, time 1000 + step / 10: 9 s for 90 steps
    seconds, rate = read_run(make_run("r")).timing()
    assert seconds == pytest.approx(9.0)
    assert rate == pytest.approx(10.0)


def test_final_metrics_take_the_last_value(tmp_path):
    run = read_run(write_run(tmp_path / "r", toy_config(), [], [
        {"step": 10, "metrics/modes": 3.0}, {"step": 20, "metrics/modes": 7.0, "metrics/kl": 0.2}]))
    assert run.final_metrics() == {"modes": 7.0, "kl": 0.2}


def test_torn_last_line_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path, make_run):
    run = make_run("r")
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 110, "loss/D"')  # killed mid-write
    assert read_run(run).steps_done == 100
    text = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(["garbage"] + text[:-1]) + "\n")
    with pytest.raises(GankitError, match="log.jsonl:1 is not JSON"):
        read_run(run)


def test_differing_keys_and_seed_groups():
    configs = [toy_config("hinge", 0), toy_config("hinge", 1), toy_config("wgan", 0)]
    assert differing_keys(configs) == ["loss.name", "train.seed"]
    assert differing_keys(configs[:1] + [dict(configs[0], extra={"k": 1})]) == ["extra.k"]


def test_group_by_setting_ignores_seeds(make_run):
    runs = [read_run(make_run(f"{loss}{seed}", loss, seed)) for loss in ("hinge", "wgan") for seed in (0, 1)]
    groups = group_by_setting(runs)
    assert {k: [r.name for r in v] for k, v in groups.items()} == {
        "loss.name=hinge": ["hinge0", "hinge1"], "loss.name=wgan": ["wgan0", "wgan1"]}


def test_runs_table_lists_every_run(tmp_path, make_run):
    make_run("sub/x", done=100, modes=6.0, kl=0.25)
    make_run("y", done=30)
    lines = format_runs_table(tmp_path).splitlines()
    assert len(lines) == 3 and lines[0].split()[:4] == ["run", "what", "steps", "state"]
    x, y = (next(l for l in lines if name in l) for name in ("sub/x", "/y"))
    assert "100/100" in x and "finished" in x and "mode_kl 0.25 modes 6" in x
    assert "30/100" in y and "stopped" in y
    assert [p.name for p in find_runs(tmp_path)] == ["x", "y"]


def test_cli_runs_and_bad_folder(tmp_path, make_run, capsys):
    make_run("r")
    assert main(["runs", str(tmp_path)]) == 0
    assert "hinge on ring8" in capsys.readouterr().out
    assert main(["runs", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_real_diverged_run_is_listed_as_diverged(tmp_path):
    from gankit.errors import TrainingDiverged
    from gankit.training.trainer import Trainer
    from tests.conftest import poison_d_at, tiny_toy_config

    trainer = Trainer(tiny_toy_config(**{"train.steps": 20}), tmp_path / "run")
    trainer.phase_callbacks.append(poison_d_at(6))
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    run = read_run(tmp_path / "run")
    assert run.state == "diverged" and run.steps_done == 8


def test_a_run_shorter_than_log_every_is_read_from_its_checkpoint_and_files(tmp_path):
    """A finished run with nothing logged (train.log_every > train.steps, before the trainer
    logged a run's last step whatever log_every is): its steps, state and final samples come
    from checkpoints/last.pt and samples/final.png."""
    from gankit.training.trainer import Trainer
    from gankit.viz.report import Report
    from tests.conftest import tiny_toy_config

    cfg = tiny_toy_config(**{"train.steps": 12, "train.log_every": 500, "train.sample_every": 500,
                             "train.ckpt_every": 500})
    Trainer(cfg, tmp_path / "short").fit()
    (tmp_path / "short" / "log.jsonl").unlink()  # its last step's record, which older runs lack
    run = read_run(tmp_path / "short")
    assert run.logs == [] and run.sample_pictures() == []  # nothing in the log, no step grids
    assert (run.steps_done, run.state) == (12, "finished")
    report = Report([run])
    assert '<td class="num">12/12</td><td>finished</td>' in report.summary()
    samples = report.samples(6)
    assert "final (step 12)" in samples and "no samples" not in samples
    assert "train.log_every is longer than the steps trained" in report.curves()


def test_a_run_whose_lock_holds_a_live_pid_is_running(tmp_path, make_run):
    import os
    import subprocess
    import sys

    path = make_run("live", done=50)
    assert read_run(path).state == "stopped"
    (path / ".lock").write_text(f"{os.getpid()}\n")  # a live process holds it
    assert read_run(path).state == "running"
    assert "running" in format_runs_table(path).splitlines()[1]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (path / ".lock").write_text(f"{gone}\n")  # a killed trainer's pid, no longer alive
    assert read_run(path).state == "stopped"
    (path / ".lock").write_text("")  # a finished trainer clears it
    assert read_run(path).state == "stopped"
