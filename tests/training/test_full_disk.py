"""A disk that fills in the middle of each kind of write the trainer does (checkpoints are in
test_faults.py): the CLI says so in one line, exits 2, and the previous good file survives."""
import builtins
import errno
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from gankit.cli import main
from gankit.errors import GankitError
from gankit import files
from tests.training.test_faults import TINY, one_error_line

FULL = os.strerror(errno.ENOSPC)
EVAL = ["eval.metrics=fid", "eval.extractor=identity", "eval.n_samples=64", "eval.every=4",
        "eval.best=fid"]


class FillingFile:
    """A file on a disk with ``budget`` bytes free: the write that crosses it writes what fits,
    then fails as a full disk does."""

    def __init__(self, f, budget: int):
        self.f, self.budget = f, budget

    def write(self, data) -> int:
        n = len(data) if isinstance(data, str) else memoryview(data).nbytes
        if n > self.budget:  # what fits is written (in characters for a text file)
            part = data[:self.budget] if isinstance(data, str) else bytes(memoryview(data).cast("B")[:self.budget])
            self.f.write(part)
            self.budget = 0
            raise OSError(errno.ENOSPC, FULL)
        self.budget -= n
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.fixture
def full_disk(monkeypatch):
    """``fill(part, nth, budget)``: the ``nth`` opening for writing of a file whose name holds
    ``part`` (a temporary one too) finds ``budget`` bytes free."""
    real_open, plan = builtins.open, {}

    def opener(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        name = os.path.basename(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else ""
        for part, todo in plan.items():
            if part in name and any(c in mode for c in "wax+"):
                todo["seen"] += 1
                if todo["seen"] == todo["nth"]:
                    return FillingFile(f, todo["budget"])
        return f

    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)  # pathlib writes through io.open

    def fill(part: str, nth: int = 1, budget: int = 100) -> None:
        plan[part] = {"nth": nth, "budget": budget, "seen": 0}

    return fill


def train(run: Path, *extra: str, resume: bool = False) -> int:
    if resume:
        return main(["train", "--resume", str(run), *extra])
    return main(["train", *TINY, "train.ckpt_every=4", *extra, "--out", str(run)])


def no_temporaries(run: Path) -> bool:
    return not [p for p in run.rglob(".*") if files.TEMPORARY in p.name]


def test_full_disk_in_a_sample_grid_keeps_the_previous_grid(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    assert train(run, "train.steps=4") == 0
    final = run / "samples" / "final.png"
    before = final.read_bytes()
    full_disk("final.png", budget=200)  # the next final grid meets a full disk
    assert train(run, "train.steps=8", resume=True) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"error: could not write '{final}' ({FULL}); free space or fix the folder; "
                    f"the checkpoint of step 8 is kept; continue with: gankit train --resume {run}")
    assert final.read_bytes() == before and Image.open(final).size[0] > 0
    assert no_temporaries(run)


def test_full_disk_in_a_log_record_keeps_the_whole_records(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    full_disk("log.jsonl", nth=2, budget=10)  # the second record (step 8) fits 10 bytes
    assert train(run, "train.steps=12") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not write '{run / 'log.jsonl'}' ({FULL}); ")
    assert "the checkpoint of step 4 is kept" in line
    records = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4]  # the 10 bytes written were cut away again


def test_full_disk_in_a_metrics_record(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    full_disk("metrics.jsonl", nth=2, budget=30)
    assert train(run, "train.steps=12", *EVAL) == 2
    assert f"could not write '{run / 'metrics.jsonl'}' ({FULL})" in one_error_line(capsys.readouterr().err)
    records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4]


def test_full_disk_in_best_pt(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    full_disk("best.pt", budget=4096)
    assert train(run, "train.steps=12", *EVAL) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not write checkpoint '{run / 'checkpoints' / 'best.pt'}' ({FULL}); ")
    assert not (run / "checkpoints" / "best.pt").exists() and no_temporaries(run)


def test_full_disk_in_config_yaml_keeps_the_stored_config(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    assert train(run, "train.steps=4") == 0
    before = (run / "config.yaml").read_text()
    full_disk("config.yaml", budget=50)
    assert train(run, "train.steps=8", resume=True) == 2
    assert f"could not write '{run / 'config.yaml'}' ({FULL})" in one_error_line(capsys.readouterr().err)
    assert (run / "config.yaml").read_text() == before and no_temporaries(run)


def test_samples_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples").write_text("a file where the samples folder goes")
    assert train(run, "train.steps=8", "train.sample_every=4") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not write '{run / 'samples' / 'step_0000004.png'}' (")
    assert "the checkpoint of step 4 is kept" not in line  # the grid comes before the checkpoint


TOY_EVAL = ["eval.metrics=[toy]", "eval.n_samples=256", "eval.every=4"]


def test_full_disk_in_gankit_evals_metrics_record_keeps_the_old_records(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    assert train(run, "train.steps=4", *TOY_EVAL) == 0
    before = (run / "metrics.jsonl").read_text()
    assert before.count("\n") >= 1
    capsys.readouterr()
    full_disk("metrics.jsonl", budget=30)  # gankit eval's record meets a full disk
    assert main(["eval", str(run), "--metrics", "toy", "--n", "256"]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert line == (f"error: could not write '{run / 'metrics.jsonl'}' ({FULL}); free space or "
                    "fix the folder; the earlier records are kept and the scores are printed above")
    assert "high_quality" in captured.out  # the scores were printed before the write
    assert (run / "metrics.jsonl").read_text() == before  # the 30 bytes written were cut away


def test_full_disk_in_an_evaluation_picture_keeps_the_previous_picture(tmp_path, full_disk, capsys):
    run = tmp_path / "run"
    assert train(run, "train.steps=4", *TOY_EVAL) == 0
    scatter = run / "eval" / "toy_scatter.png"
    before = scatter.read_bytes()
    full_disk("toy_scatter.png", budget=200)  # the evaluation at step 8 meets a full disk
    assert train(run, "train.steps=12", resume=True) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (f"error: could not write '{scatter}' ({FULL}); free space or fix the folder; "
                    f"the checkpoint of step 4 is kept; continue with: gankit train --resume {run}")
    assert scatter.read_bytes() == before and Image.open(scatter).size[0] > 0
    assert no_temporaries(run)


def test_append_line_cuts_a_failed_record_away(tmp_path, full_disk):
    path = tmp_path / "log.jsonl"
    files.append_line(path, "first")
    full_disk("log.jsonl", budget=3)
    with pytest.raises(OSError):
        files.append_line(path, "second")
    assert path.read_text() == "first\n"


def test_translated_names_the_file_and_what_survives(tmp_path):
    with pytest.raises(GankitError, match=r"^could not write 'x' \(Permission denied\); it is kept$"):
        with files.translated(Path("x"), "it is kept"):
            raise PermissionError(errno.EACCES, "Permission denied")


def test_a_failing_tensorboard_mirror_stops_with_a_note_and_the_jsonl_goes_on(tmp_path, capsys):
    from gankit.training.logger import RunLogger

    class FullTensorBoard:
        def add_scalar(self, *args):
            raise OSError(errno.ENOSPC, FULL)  # as its writer thread reports a full disk

        def close(self):
            raise AssertionError("a failed mirror is not flushed again")

    logger = RunLogger(tmp_path, tensorboard=False)
    logger._tb = FullTensorBoard()
    logger.write({"step": 1, "loss/D": 1.0})
    logger.write({"step": 2, "loss/D": 0.5})
    logger.close()
    assert [json.loads(l)["step"] for l in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2]
    err = capsys.readouterr().err
    assert err == (f"note: the TensorBoard mirror in '{tmp_path / 'tb'}' stopped ({FULL}); "
                   "log.jsonl and metrics.jsonl go on\n")


def test_a_tensorboard_folder_that_cannot_be_made_is_a_note(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from gankit.training.logger import RunLogger

    (tmp_path / "tb").write_text("a file where the TensorBoard folder goes")
    logger = RunLogger(tmp_path)
    logger.write({"step": 1, "loss/D": 1.0})
    logger.close()
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 1
    assert capsys.readouterr().err.startswith(f"note: no TensorBoard mirror in '{tmp_path / 'tb'}' (")
