"""The command line end to end on tiny settings, and its one-line errors for bad input."""
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gankit.cli import main

TINY_TOY = ["toy_ring8", "data.toy_samples=256", "data.batch_size=32", "G.width=16", "D.width=16",
            "train.steps=6", "train.log_every=3", "train.sample_every=3", "train.progress=false"]
TINY_DIGITS = ["data.source=digits", "G.name=mlp", "D.name=mlp", "G.width=16", "D.width=16",
               "data.batch_size=32", "train.steps=3", "train.log_every=3", "train.progress=false"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, pattern):
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "toy"
    assert main(["train", *TINY_TOY, "--out", str(run)]) == 0
    return run


def test_train_writes_config_checkpoint_samples_and_logs(toy_run):
    for rel in ["config.yaml", "checkpoints/last.pt", "samples/step_0000003.png",
                "samples/final.png", "log.jsonl"]:
        assert (toy_run / rel).is_file(), rel


def test_sample_vectors_is_deterministic(toy_run, tmp_path, capsys):
    assert run_cli(["sample", toy_run, "--n", 20, "--out", tmp_path / "a"], capsys)[0] == 0
    assert run_cli(["sample", toy_run, "--n", 20, "--out", tmp_path / "b"], capsys)[0] == 0
    assert run_cli(["sample", toy_run, "--n", 20, "--out", tmp_path / "c", "--seed", 1], capsys)[0] == 0
    a, b, c = (np.load(tmp_path / d / "samples.npy") for d in "abc")
    assert a.shape == (20, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_images_sample_and_interpolate(tmp_path, capsys):
    run = tmp_path / "digits"
    assert run_cli(["train", *TINY_DIGITS, "--out", run], capsys)[0] == 0
    code, out, _ = run_cli(["sample", run, "--n", 5, "--out", tmp_path / "png"], capsys)
    assert code == 0
    files = sorted((tmp_path / "png").glob("*.png"))
    assert len(files) == 5 and Image.open(files[0]).size == (8, 8)
    assert run_cli(["interpolate", run, "--rows", 2, "--steps", 4], capsys)[0] == 0
    assert Image.open(run / "interpolation.png").size == (4 * 10 + 2, 2 * 10 + 2)


def test_dry_run_prints_config_and_writes_nothing(tmp_path, capsys):
    code, out, _ = run_cli(["train", "toy_ring8", "loss.name=hinge", "--out", tmp_path / "x", "--dry-run"], capsys)
    assert code == 0 and "name: hinge" in out
    assert not (tmp_path / "x").exists()


def _weights(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, capsys):
    # a constant learning rate, so that 6 steps then 3 more follow the 9-step schedule
    flat = [*TINY_TOY, "optim.decay_start=1"]
    run, straight = tmp_path / "more", tmp_path / "straight"
    assert run_cli(["train", *flat, "--out", run], capsys)[0] == 0
    code, _, err = run_cli(["train", "--resume", run, "train.steps=9", "train.log_every=1"], capsys)
    assert code == 0, err
    assert run_cli(["train", *flat, "train.steps=9", "--out", straight], capsys)[0] == 0
    a, b = _weights(run), _weights(straight)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == 9
    # config.yaml says what the run now is
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 9 and saved["train"]["log_every"] == 1


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(toy_run, tmp_path, capsys):
    # what kill -9 before the first checkpoint leaves: config.yaml, an empty checkpoints/, logs
    run = tmp_path / "killed"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((toy_run / "config.yaml").read_text())
    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "before its first checkpoint" in line]
    assert notes == [f"note: '{run}' stopped before its first checkpoint: training it from step 0 "
                     "with its stored config.yaml"]
    # the stored config, from step 0: the same weights as the run that was never killed
    a, b = _weights(run), _weights(toy_run)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    (run / "checkpoints" / "last.pt").unlink()
    (run / "config.yaml").unlink()  # nothing to resume from: the checkpoint's own error
    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert_one_line_error(code, err, "last.pt' does not exist; train first or give the right run folder")


def test_resume_refuses_overrides_that_change_the_run(toy_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    before = {p: p.read_bytes() for p in [run / "config.yaml", run / "checkpoints" / "last.pt"]}
    for extra in (["loss.name=hinge", "train.steps=9"], ["optim.lr_g=0.1", "train.steps=9"],
                  ["--data", "digits", "train.steps=9"]):
        code, _, err = run_cli(["train", "--resume", run, *extra], capsys)
        assert_one_line_error(code, err, "--resume cannot change")
    code, _, err = run_cli(["train", "--resume", run], capsys)
    assert_one_line_error(code, err, f"continue it with: gankit train --resume {run} train.steps=N (N > 6)")
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("args,pattern", [
    (["train", "train.n_critc=5"], "did you mean 'train.n_critic'"),
    (["train", "train.steps=abc"], "train.steps must be int"),
    (["train", "--data", "/nonexistent/folder"], "neither an existing path nor a built-in name"),
    (["train", "nosuchpreset"], "unknown preset 'nosuchpreset'"),
    (["sample", "/nonexistent/run", "--out", "x"], "does not exist"),
    (["train", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_gets_one_line_and_exit_2(args, pattern, capsys):
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, pattern)


def test_malformed_yaml_and_empty_folder(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [1,\n")
    assert_one_line_error(*run_cli(["train", bad], capsys)[::2], "malformed YAML")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["train", "--data", tmp_path / "empty", "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, "empty")


def test_corrupt_checkpoint_is_refused_and_left_alone(toy_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "corrupt"
    shutil.copytree(toy_run, run)
    ckpt = run / "checkpoints" / "last.pt"
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    half = ckpt.read_bytes()
    for args in (["train", "--resume", run], ["sample", run, "--out", tmp_path / "s"]):
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, "corrupt or not a gankit checkpoint")
    assert ckpt.read_bytes() == half
    assert (run / "log.jsonl").is_file() and (run / "config.yaml").is_file()


def test_checkpoint_that_does_not_fit_its_config(toy_run, tmp_path, capsys):
    ckpt = torch.load(toy_run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["config"]["G"]["width"] = 32
    (tmp_path / "odd" / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "odd" / "checkpoints" / "last.pt")
    code, _, err = run_cli(["sample", tmp_path / "odd", "--out", tmp_path / "s"], capsys)
    assert_one_line_error(code, err, "does not match its own config")


def test_training_into_an_existing_run_keeps_it(toy_run, capsys):
    before = (toy_run / "checkpoints" / "last.pt").read_bytes()
    code, _, err = run_cli(["train", *TINY_TOY, "--out", toy_run], capsys)
    assert_one_line_error(code, err, "already holds a run")
    assert (toy_run / "checkpoints" / "last.pt").read_bytes() == before


def test_failed_train_leaves_no_run_folder(tmp_path, capsys):
    # the working directory is tmp_path (conftest): a default run would go to ./runs/001
    code, _, err = run_cli(["train", *TINY_TOY, "--data", "/nonexistent/folder"], capsys)
    assert_one_line_error(code, err, "neither an existing path nor a built-in name")
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli(["train", *TINY_TOY, "G.name=nosuchnet", "--out", tmp_path / "r"], capsys)
    assert code == 2 and not (tmp_path / "r").exists()


def test_default_run_folder_is_numbered_under_runs(tmp_path, capsys):
    assert run_cli(["train", *TINY_TOY, "train.steps=1", "train.sample_every=0"], capsys)[0] == 0
    assert run_cli(["train", *TINY_TOY, "train.steps=1", "train.sample_every=0"], capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["001", "002"]


@pytest.mark.parametrize("args,pattern", [
    (["loss.name=bogus"], "unknown objective 'bogus'"),
    (["G.norm=bogus"], "G.norm='bogus' is not supported"),
    (["model.z_dim=-3"], "model.z_dim must be at least 1, got -3"),
    (["--data", "/nonexistent/folder"], "neither an existing path nor a built-in name"),
    (["model.kind=vae", "loss.name=hinge"], "does nothing for model.kind=vae"),
])
def test_dry_run_is_a_full_check(args, pattern, tmp_path, capsys):
    code, out, err = run_cli(["train", "toy_ring8", *args, "--out", tmp_path / "x", "--dry-run"], capsys)
    assert_one_line_error(code, err, pattern)
    assert out == "" and not (tmp_path / "x").exists()


def test_sigterm_stops_a_training_process_with_a_checkpoint_to_resume(tmp_path, capsys):
    import os
    import re
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    run = tmp_path / "run"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit", "train", *TINY_TOY, "train.steps=10000000", "train.log_every=1",
         "train.sample_every=0", "train.threads=1", "--out", str(run)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run / "log.jsonl", time.time() + 300
    try:
        while not (log.is_file() and log.read_text().strip()):  # training has started
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "training did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err  # 128 + SIGTERM, as shells report it
    found = re.search(r"stopped at step (\d+), phase \d+; checkpoint saved; continue with: "
                      rf"gankit train --resume {re.escape(str(run))}", err)
    assert found, err
    step = int(found.group(1))
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == step > 0
    code, _, err = run_cli(["train", "--resume", run, f"train.steps={step + 2}"], capsys)
    assert code == 0, err
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == step + 2
