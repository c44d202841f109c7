"""The CLI's listing, version, grid and signal behaviour."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit import __version__
from gankit.cli import main
from gankit.config import PRESET_DIR

ROOT = Path(__file__).resolve().parents[2]
TINY_DIGITS = ["data.source=digits", "G.name=mlp", "D.name=mlp", "G.width=16", "D.width=16",
               "data.batch_size=32", "train.steps=2", "train.log_every=1", "train.progress=false",
               "train.sample_every=0"]


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"gankit {__version__}"


def test_usage_errors_name_the_command_once(capsys):
    assert main(["nonsense"]) == 2
    assert "(see gankit --help)" in capsys.readouterr().err
    assert main(["report"]) == 2  # no run given
    assert "(see gankit report --help)" in capsys.readouterr().err


def test_presets_lists_every_builtin_preset(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    assert [l.split()[0] for l in lines[1:]] == names
    ring = next(l for l in lines if l.startswith("toy_ring8 "))
    assert ring.split()[1:6] == ["gan", "nonsaturating", "on", "ring8", "10000"]
    assert "Ring of 8 Gaussians" in ring


def test_presets_time_is_measured(capsys):
    assert main(["presets", "toy_ring8", "--time"]) == 0
    header, line, how = capsys.readouterr().out.splitlines()
    assert "time" in header and "measured" in header
    assert line.split()[7] in ("s", "min") and float(line.split()[6]) > 0  # "12 s" or "1.2 min"
    assert re.search(r"steps/s over \d+ steps after 10 warm-up", line)
    assert how.startswith("time: train.steps / a warm rate")
    assert main(["presets", "no_such"]) == 2


def test_presets_time_leaves_the_warm_up_out_of_the_rate(monkeypatch):
    """Slow first steps (warm-up) do not enter the rate: steps of 10 ms give ~100 steps/s."""
    from gankit.training import trainer
    from gankit.viz.presets import time_preset

    class FakeTrainer:
        def __init__(self, cfg, run_dir):
            self.done, self.logger = 0, type("L", (), {"close": lambda self: None})()

        def run_steps(self, n):
            for _ in range(n):
                self.done += 1
                time.sleep(0.3 if self.done <= 2 else 0.01)

    monkeypatch.setattr(trainer, "Trainer", FakeTrainer)
    t = time_preset("toy_ring8", warmup=2, seconds=0.3)
    assert t.warmup == 2 and t.steps >= 5
    assert 40 < t.rate < 110  # 0.01 s a step (plus sleep overhead); the 0.3 s steps would give < 10
    assert t.seconds == 10000 / t.rate


def test_preset_summaries_are_cut_between_words():
    from gankit.viz.presets import summary_of

    for path in PRESET_DIR.glob("*.yaml"):
        text = summary_of(path)
        assert len(text) <= 70
        if text.endswith("..."):
            whole = " ".join(l.lstrip("#").strip() for l in path.read_text().splitlines()
                             if l.startswith("#"))
            kept = text[:-3]
            # what is kept ends a word of the comment: the comment goes on with a space or a mark
            assert whole.startswith(kept) and whole[len(kept)] in " ,;:-(", (path.stem, text)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "run"
    assert main(["train", "--out", str(out), "data.condition=label", *TINY_DIGITS]) == 0
    return out


def test_sample_grid_is_class_aligned_and_scaled(conditional_run, tmp_path, capsys):
    assert main(["sample", str(conditional_run), "--grid", "--n", "20", "--out", str(tmp_path / "g.png")]) == 0
    assert main(["sample", str(conditional_run), "--scale", "5", "--n", "20", "--out", str(tmp_path / "big")]) == 0
    small = np.asarray(Image.open(tmp_path / "g.png"))
    big = np.asarray(Image.open(tmp_path / "big" / "grid.png"))
    cell = 8 + 2  # 8-px digits and a 2-px gap, 10 columns (one per class), 2 rows
    k = small.shape[1] // (10 * cell + 2)
    assert small.shape[1] == k * (10 * cell + 2) and small.shape[0] == 16 + k * (2 * cell + 2)
    assert big.shape == (16 + 5 * (2 * cell + 2), 5 * (10 * cell + 2))
    # with --cond every sample has one class: a plain square grid, no class header
    assert main(["sample", str(conditional_run), "--grid", "--cond", "3", "--n", "16",
                 "--out", str(tmp_path / "c.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "c.png")).shape[:2] == (4 * cell + 2, 4 * cell + 2)


def test_sigterm_saves_and_exits_143(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", "toy_ring8", "--out", str(out),
                             "train.steps=1000000", "train.threads=1", "train.log_every=5",
                             "train.progress=false", "train.sample_every=0", "train.ckpt_every=0"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert (out / "checkpoints" / "last.pt").exists() and "--resume" in err


def test_tune_without_optuna_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    assert main(["tune", "toy_ring8", "--metric", "modes", "--param", "optim.lr_d=log:1e-4:1e-2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gankit tune needs Optuna: pip install optuna") and err.count("\n") == 1
