"""Which records log.jsonl and metrics.jsonl hold: the last step always, each step once
after a resume from an older checkpoint."""
import json
import shutil
import time

import pytest

from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

EVAL = {"eval.metrics": "fid", "eval.extractor": "identity", "eval.n_samples": 64, "eval.every": 4}


def steps(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("log_every, logged", [(500, [6]), (4, [4, 6]), (3, [3, 6])])
def test_the_last_step_is_logged_and_shown_whatever_log_every_is(tmp_path, capsys, log_every, logged):
    cfg = tiny_toy_config(**{"train.steps": 6, "train.log_every": log_every, "train.progress": True})
    Trainer(cfg, tmp_path / "run").fit()
    assert steps(tmp_path / "run" / "log.jsonl") == logged
    assert "step 6/6" in capsys.readouterr().err  # the progress shows it too


def trained_to_8_with_the_checkpoint_of_4(tmp_path):
    """``(run, cfg)``: a run that logged and evaluated up to step 8 and was then killed before
    the checkpoint of step 8 (its last.pt is the one of step 4)."""
    run = tmp_path / "run"
    cfg = tiny_toy_config(**{"train.steps": 8, "train.log_every": 2, "train.ckpt_every": 4, **EVAL})
    trainer = Trainer(cfg, run)
    last, at_4 = run / "checkpoints" / "last.pt", tmp_path / "step4.pt"
    trainer.phase_callbacks.append(lambda t: t.step == 4 and not at_4.exists() and shutil.copy(last, at_4))
    trainer.fit()
    shutil.copy(at_4, last)
    return run, cfg


def test_resume_from_an_older_checkpoint_drops_the_records_after_it(tmp_path):
    """A run killed after logging step 8 whose last checkpoint is step 4: resuming writes
    steps 6 and 8 again, and each stays in the logs once (a half-written line goes too)."""
    run, cfg = trained_to_8_with_the_checkpoint_of_4(tmp_path)
    first = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 9, "loss/D"')  # killed in the middle of a record
    assert steps(run / "metrics.jsonl") == [4, 8]  # step 8 is the final evaluation

    Trainer(cfg, run, resume=True).fit()
    again = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again] == [2, 4, 6, 8]
    assert steps(run / "metrics.jsonl") == [4, 8]
    for a, b in zip(first, again):  # the resumed steps are the same steps (exact resume)
        assert a["loss/D"] == b["loss/D"] and a["loss/G"] == b["loss/G"]


def test_resume_from_an_older_checkpoint_keeps_one_tensorboard_curve(tmp_path):
    """As above, read back from TensorBoard's event files: the killed run's events after step
    4 are hidden, so each step is one point (there were two curves over steps 6 and 8)."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run, cfg = trained_to_8_with_the_checkpoint_of_4(tmp_path)
    time.sleep(1.1)  # event files are read in the order of their names, which start with the second
    Trainer(cfg, run, resume=True).fit()
    assert len(list((run / "tb").iterdir())) == 2  # the killed run's file and the resumed one's

    acc = event_accumulator.EventAccumulator(str(run / "tb")).Reload()
    logged = {json.loads(line)["step"]: json.loads(line)["loss/D"]
              for line in (run / "log.jsonl").read_text().splitlines()}
    points = [(e.step, e.value) for e in acc.Scalars("loss/D")]
    assert [step for step, _ in points] == [2, 4, 6, 8]
    for step, value in points:  # the resumed run's values (float32 in the event file)
        assert value == pytest.approx(logged[step], rel=1e-6)
    assert [e.step for e in acc.Scalars("metrics/fid")] == [4, 8]


def test_the_last_step_is_evaluated_once_when_it_is_also_an_eval_step(tmp_path):
    """8 steps, eval.every 4: step 4 is a periodic evaluation, step 8 only the final one (it
    was evaluated twice, a periodic and a final record of the same samples)."""
    run = tmp_path / "run"
    cfg = tiny_toy_config(**{"train.steps": 8, "train.log_every": 4, **EVAL})
    trainer = Trainer(cfg, run)
    calls = []
    evaluate = trainer.evaluate
    trainer.evaluate = lambda final=False: calls.append((trainer.step, final)) or evaluate(final)
    trainer.fit()
    assert calls == [(4, False), (8, True)]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["final"]) for r in records] == [(4, False), (8, True)]


def test_a_run_restarted_without_a_checkpoint_drops_the_old_records(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 2, "loss/D": 1.0}\n')  # a killed first try's
    Trainer(tiny_toy_config(**{"train.steps": 4, "train.log_every": 4}), run).fit()
    assert steps(run / "log.jsonl") == [4]
