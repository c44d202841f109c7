"""data.on_bad: an image that breaks after training started (streamed folder)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import load_config
from gankit.errors import ConfigError, DataError
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer


def make_folder(root, n=8):
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8), 25 * i, np.uint8), "L").save(root / f"{i}.png")
    return root


def folder_config(root, **overrides):
    items = {"data.source": root, "data.resident_max_mb": 0, "data.workers": 0, "data.image_size": 8,
             "data.channels": 1, "data.batch_size": 4, "model.z_dim": 4,
             "G.name": "mlp", "G.width": 16, "G.depth": 1, "G.norm": "none",
             "D.name": "mlp", "D.width": 16, "D.depth": 1, "D.norm": "none",
             "train.steps": 12, "train.log_every": 2, "train.sample_every": 0,
             "train.ckpt_every": 2, "train.progress": False, "train.ema": 0}
    items.update(overrides)
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def truncate_after_step(path, step):
    """A phase callback that cuts ``path`` short once ``step`` steps are done."""
    def callback(trainer):
        if trainer.step == step and path.stat().st_size > 20:
            path.write_bytes(path.read_bytes()[:20])
    return callback


def test_on_bad_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="data.on_bad must be one of error, skip; got 'ignore'"):
        folder_config(tmp_path, **{"data.on_bad": "ignore"})
    assert folder_config(tmp_path).data.on_bad == "error"  # the default


def test_error_stops_naming_the_file_and_keeps_the_checkpoint(tmp_path):
    bad = make_folder(tmp_path / "img") / "5.png"
    trainer = Trainer(folder_config(tmp_path / "img"), tmp_path / "run")
    trainer.phase_callbacks.append(truncate_after_step(bad, 3))
    with pytest.raises(DataError) as info:
        trainer.fit()
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot read image '{bad}' (truncated" in message
    assert "data.on_bad=skip" in message and f"--resume {tmp_path / 'run'}" in message
    kept = int(message.split("checkpoint of step ")[1].split()[0])
    # every file comes once per 2-step epoch: the bad one is met at step 3 (its epoch is 2-3,
    # cut during step 3) or in the epoch of steps 4-5, after the checkpoint of step 4
    assert kept in (2, 4) and trainer.step in (3, 4, 5)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == kept
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))


@pytest.mark.parametrize("workers", [0, 1])
def test_skip_counts_each_bad_file_once_and_logs_it(tmp_path, workers):
    root = make_folder(tmp_path / "img")
    cfg = folder_config(root, **{"data.on_bad": "skip", "data.workers": workers})
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.phase_callbacks += [truncate_after_step(root / "2.png", 3),
                                truncate_after_step(root / "6.png", 3)]
    trainer.fit()  # 12 steps: the two bad files come up in each of 4 more epochs
    assert trainer.step == 12
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    counts = [r["data/skipped"] for r in logs]  # logged at steps 2, 4, ..., 12
    if workers == 0:  # read on demand: both files are met in the epoch of steps 4-5
        assert counts == [0, 0, 2, 2, 2, 2]
    else:  # a worker reads 4 batches ahead, so it meets the files up to 4 steps later
        assert counts[:2] == [0, 0] and counts[-1] == 2 and counts == sorted(counts)
    assert trainer.source.bad_files == {2, 6}
    cfg.train.steps = 14
    resumed = Trainer(cfg, tmp_path / "run", resume=True)  # the count is in the checkpoint
    assert resumed.source.bad_files == {2, 6}
    resumed.fit()
    last = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert (last["step"], last["data/skipped"]) == (14, 2)


def test_skip_replaces_a_bad_item_by_the_next_readable_one(tmp_path):
    from gankit.data import build_source

    root = make_folder(tmp_path / "img", n=4)
    cfg = folder_config(root, **{"data.on_bad": "skip", "data.batch_size": 4})
    source = build_source(cfg.data, 0, torch.device("cpu"))
    (root / "1.png").write_bytes(b"\x89PNG not really")  # after the scan, which saw 4 images
    # 1.png's place in the batch is taken by the next readable image, 2.png
    batch = source.next_batch()
    values = sorted(round(float(v)) for v in (batch["x"][:, 0, 0, 0] + 1) * 127.5)
    assert values == [0, 50, 50, 75]
    assert set(batch) == {"x", "y"} and source.bad_files == {1}


def test_cli_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    from gankit.data import folders

    root = make_folder(tmp_path / "img")
    calls = {"n": 0}
    real = folders._decode

    def decode_breaking_later(path, size, channels):
        calls["n"] += 1
        if calls["n"] > 16 and str(path).endswith("3.png"):  # two epochs in
            raise OSError("image file is truncated (5 bytes not processed)")
        return real(path, size, channels)

    monkeypatch.setattr(folders, "_decode", decode_breaking_later)
    args = ["train", f"data.source={root}", "data.resident_max_mb=0", "data.workers=0", "data.image_size=8",
            "data.channels=1", "data.batch_size=4", "G.name=mlp", "D.name=mlp", "G.width=16",
            "D.width=16", "train.steps=12", "train.ckpt_every=2", "train.progress=false",
            "--out", str(tmp_path / "run")]
    code = main(args)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("error") or "Traceback" in l]
    assert code == 2
    assert len(lines) == 1 and "3.png" in lines[0] and "checkpoint of step 4 is kept" in lines[0]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4
