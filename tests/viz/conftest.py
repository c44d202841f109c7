import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def write_run(path: Path, config: dict, logs: list[dict], metrics: list[dict] = (),
              samples: dict[int, tuple[int, int, int]] = None, eval_pictures: tuple[str, ...] = ()) -> Path:
    """A run folder written by hand: config, log and metric records, solid-colour PNGs."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    for step, colour in (samples or {}).items():
        (path / "samples").mkdir(exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), colour, np.uint8)).save(path / "samples" / f"step_{step:07d}.png")
    for name in eval_pictures:
        (path / "eval").mkdir(exist_ok=True)
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path / "eval" / name)
    return path


def toy_config(loss: str = "hinge", seed: int = 0, steps: int = 100) -> dict:
    return {"data": {"source": "ring8"}, "model": {"kind": "gan"}, "loss": {"name": loss},
            "train": {"steps": steps, "seed": seed}}


@pytest.fixture
def make_run(tmp_path):
    def make(name, loss="hinge", seed=0, steps=100, done=100, modes=8.0, kl=0.1, **kw):
        logs = [{"step": s, "loss/D": 1.0 + s / 100, "loss/G": 2.0 - s / 100, "time": 1000.0 + s / 10,
                 "steps_per_s": 10.0} for s in range(10, done + 1, 10)]
        metrics = [{"step": done, "metrics/modes": modes, "metrics/mode_kl": kl, "final": True}]
        return write_run(tmp_path / name, toy_config(loss, seed, steps), logs, metrics, **kw)

    return make
