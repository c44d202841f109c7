"""Runs that survive faults: kill -9, a full disk, two trainers on one folder, an unwritable
folder, and checkpoints that would run code. (benchmarks/kill9.py is the 20-kill version.)"""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.errors import CheckpointError, GankitError
from gankit.training import checkpoint, lock
from gankit.training.checkpoint import SLOW_SAVE_ENV, load_checkpoint
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data.source=ring8", "data.toy_samples=512", "data.batch_size=32", "model.z_dim=4",
        "G.name=mlp", "G.width=16", "G.depth=2", "G.norm=none", "D.name=mlp", "D.width=16",
        "D.depth=2", "D.norm=none", "train.log_every=4", "train.sample_every=0",
        "train.progress=false", "train.ema=0.9", "train.threads=1"]


def one_error_line(err: str) -> str:
    """The one 'error: ' line of stderr (beside e.g. 'run folder: ...'), with no traceback."""
    lines = [l for l in err.strip().splitlines() if l.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def assert_same_weights(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    assert ca["step"] == cb["step"]
    assert ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    for name, opt in ca["optimizers"].items():
        for pid, state in opt["state"].items():
            for key, value in state.items():
                assert torch.equal(torch.as_tensor(value),
                                   torch.as_tensor(cb["optimizers"][name]["state"][pid][key]))


# ---- kill -9 -----------------------------------------------------------------------------
def spawn(run: Path, steps: int, resume: bool = False) -> subprocess.Popen:
    args = ["--resume", str(run)] if resume else [*TINY, f"train.steps={steps}",
                                                  "train.ckpt_every=5", "--out", str(run)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **{SLOW_SAVE_ENV: "0.0005"})
    return subprocess.Popen([sys.executable, "-m", "gankit", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, condition, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def test_kill9_inside_checkpoint_writes_then_resume_is_bit_identical(tmp_path):
    steps = 30  # a checkpoint (about 300 write calls, ~0.15 s here) every 5 steps
    assert main(["train", *TINY, f"train.steps={steps}", "train.ckpt_every=5",
                 "--out", str(tmp_path / "whole")]) == 0  # the reference, in this process
    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    writing = lambda: any(ckpts.glob(".last.pt.*.tmp"))  # noqa: E731

    def saved_at():
        return (ckpts / "last.pt").stat().st_mtime_ns if (ckpts / "last.pt").exists() else 0

    def kill_in_a_write_after_a_checkpoint(resume):
        """Start, wait for this start's first checkpoint, then kill inside its next write."""
        before = saved_at()
        proc = spawn(run, steps, resume)
        wait_for(proc, lambda: saved_at() != before)
        wait_for(proc, writing)
        kill9(proc)
        assert (ckpts / f".last.pt.{proc.pid}.tmp").exists()  # really cut inside the write
        return load_checkpoint(ckpts / "last.pt")["step"]  # ... and last.pt is whole

    first = kill_in_a_write_after_a_checkpoint(resume=False)
    assert first % 5 == 0 and first >= 5
    second = kill_in_a_write_after_a_checkpoint(resume=True)
    assert second % 5 == 0 and second > first

    last = spawn(run, steps, resume=True)
    assert last.wait() == 0, last.stderr.read()
    assert not writing()  # the killed writers' temporaries were removed
    assert_same_weights(tmp_path / "whole" / "checkpoints" / "last.pt", ckpts / "last.pt")


# ---- disk full ---------------------------------------------------------------------------
class FailingWriter:
    """A file that takes ``budget`` bytes, then fails like a full disk (or a dying one)."""

    def __init__(self, f, budget: int, code: int):
        self.f, self.budget, self.code = f, budget, code

    def write(self, data) -> int:
        if self.budget < len(data):
            raise OSError(self.code, os.strerror(self.code))
        self.budget -= len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def fail_saves_after(monkeypatch, n_good: int, code: int) -> None:
    """The first ``n_good`` checkpoint writes succeed; later ones fail part-way."""
    real, count = checkpoint._writer, {"n": 0}

    def writer(f):
        count["n"] += 1
        return real(f) if count["n"] <= n_good else FailingWriter(f, 4096, code)

    monkeypatch.setattr(checkpoint, "_writer", writer)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, capsys, code):
    fail_saves_after(monkeypatch, 1, code)  # the save at step 4 works, that at step 8 fails
    run = tmp_path / "run"
    assert main(["train", *TINY, "train.steps=12", "train.ckpt_every=4", "--out", str(run)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"could not write checkpoint '{run / 'checkpoints' / 'last.pt'}' ({os.strerror(code)})" in line
    assert "previous checkpoint (step 4) is intact" in line and f"--resume {run}" in line
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]  # no temporary

    monkeypatch.setattr(checkpoint, "_writer", lambda f: f)  # space again: continue as told
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["train", *TINY, "train.steps=12", "train.ckpt_every=4",
                 "--out", str(tmp_path / "whole")]) == 0
    assert_same_weights(tmp_path / "whole" / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")


def test_failed_first_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    fail_saves_after(monkeypatch, 0, errno.ENOSPC)
    trainer = Trainer(tiny_toy_config(**{"train.ckpt_every": 4}), tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"No space left on device\); no earlier checkpoint exists"):
        trainer.fit()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


# ---- one trainer per run folder ----------------------------------------------------------
HOLDER = ("import sys, time; from gankit.training import lock; lock.acquire(sys.argv[1]); "
          "print('locked', flush=True); time.sleep(120)")


def hold_lock(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def toy_run(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "train.steps=4", "--out", str(run)]) == 0
    return run


def test_second_trainer_is_refused_while_the_first_lives_then_takes_over(toy_run, capsys):
    holder = hold_lock(toy_run)
    try:
        capsys.readouterr()
        assert main(["train", "--resume", str(toy_run), "train.steps=8"]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"run folder '{toy_run}' is in use by another gankit process (pid {holder.pid})" in line
        assert main(["train", *TINY, "--out", str(toy_run)]) == 2  # a fresh start too
        assert "in use by another gankit process" in capsys.readouterr().err
        assert load_checkpoint(toy_run / "checkpoints" / "last.pt")["step"] == 4
    finally:
        holder.kill()
        holder.wait()
    assert (toy_run / ".lock").read_text().strip() == str(holder.pid)  # a crashed holder's lock
    assert main(["train", "--resume", str(toy_run), "train.steps=8"]) == 0
    assert load_checkpoint(toy_run / "checkpoints" / "last.pt")["step"] == 8
    assert (toy_run / ".lock").read_text() == ""  # released at the end


def test_without_record_locks_the_pid_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "fcntl", None)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / ".lock").write_text(dead.stdout)  # its process has exited
    lock.acquire(tmp_path)
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    lock.release(tmp_path)
    (tmp_path / ".lock").write_text(f"{os.getppid()}\n")  # a live process that is not us
    with pytest.raises(lock.RunFolderBusy, match=f"pid {os.getppid()}"):
        lock.acquire(tmp_path)
    assert not lock.is_held(tmp_path)


def test_lock_is_reentrant_within_a_process(tmp_path):
    lock.acquire(tmp_path)
    lock.acquire(tmp_path)
    lock.release(tmp_path)
    assert lock.is_held(tmp_path)
    lock.release(tmp_path)
    assert not lock.is_held(tmp_path)


# ---- unwritable output -------------------------------------------------------------------
@pytest.fixture
def no_training_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded before the run folder was checked")

    monkeypatch.setattr("gankit.training.trainer.build_source", refuse)


def test_run_folder_below_a_file_is_refused_before_any_work(tmp_path, capsys, no_training_work):
    (tmp_path / "file").write_text("x")
    assert main(["train", *TINY, "--out", str(tmp_path / "file" / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write to run folder '{tmp_path / 'file' / 'run'}' (Not a directory" in line
    assert main(["train", *TINY, "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a run folder" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "file").read_text() == "x"


def test_default_runs_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, capsys,
                                                             no_training_work):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    assert main(["train", *TINY]) == 2
    assert "cannot create the runs folder 'runs' (File exists)" in one_error_line(capsys.readouterr().err)


def test_missing_parent_folders_are_created(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    assert main(["train", *TINY, "train.steps=2", "--out", str(run)]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2


@pytest.mark.parametrize("resume", [False, True])
def test_read_only_run_folder_is_refused_before_any_work(toy_run, monkeypatch, capsys, resume,
                                                         no_training_work):
    # root ignores permission bits, so the read-only file system is simulated at os.open
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(toy_run)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    before = (toy_run / "checkpoints" / "last.pt").read_bytes()
    # a finished run is continued by raising train.steps (plain --resume says so first)
    args = ["--resume", str(toy_run), "train.steps=8"] if resume else [*TINY, "--out", str(toy_run / "new")]
    assert main(["train", *args]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "cannot write to run folder" in line and "(Read-only file system at '" in line
    assert (toy_run / "checkpoints" / "last.pt").read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_unwritable_run_folder_by_permissions(toy_run, capsys):
    os.chmod(toy_run, 0o555)
    try:
        assert main(["train", "--resume", str(toy_run)]) == 2
        assert "Permission denied" in one_error_line(capsys.readouterr().err)
    finally:
        os.chmod(toy_run, 0o755)


# ---- hostile checkpoints -----------------------------------------------------------------
class _Boom:
    """Unpickling this object would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": checkpoint.FORMAT, "payload": _Boom(marker)}, run / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="corrupt or not a gankit checkpoint"):
        load_checkpoint(run / "checkpoints" / "last.pt")
    for args in (["sample", str(run), "--out", str(tmp_path / "s")], ["train", "--resume", str(run)]):
        assert main(args) == 2
        assert "corrupt or not a gankit checkpoint" in one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_checkpoint_missing_parts_is_one_line(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "gan", "model": {}}, path)
    with pytest.raises(CheckpointError, match=r"incomplete \(no config, optimizers, step, phase, rng\)"):
        load_checkpoint(path)


def test_stale_temporaries_are_removed_only_by_the_lock_holder(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / ".last.pt.99999.tmp").write_bytes(b"half")
    (ckpts / "last.pt").write_bytes(b"kept")
    assert lock.claim_run_dir(tmp_path / "run", create=False)
    lock.release(tmp_path / "run")
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt"]
    with pytest.raises(GankitError):
        lock.claim_run_dir(ckpts / "last.pt", create=True)
