"""benchmarks/faces.py: the held-out faces are the faces training sees, pixel for pixel."""
from pathlib import Path

import numpy as np
from PIL import Image

from gankit.config import load_config
from gankit.data.folders import to_uint8
from gankit.data.sources import _builtin_images


def test_held_out_faces_are_rendered_as_the_training_faces(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from benchmarks.faces import real_folder

    folder = real_folder(tmp_path, "real", 3, 500)
    written = np.stack([np.asarray(Image.open(folder / f"{i:06d}.png")) for i in (500, 501, 502)])
    cfg = load_config("faces32", ["data.source=faces503"])  # drawn at 64, resized to 32
    training = to_uint8(_builtin_images(cfg.data, 0)[0]["x"][500:])
    assert written.shape == (3, 32, 32, 3)
    assert np.array_equal(written, training)
