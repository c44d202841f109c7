from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.viz import grid_layout, image_grid, write_sample_grid


def _ramp(n, h=4, w=4):
    """n grayscale images, image i filled with the value that maps to uint8 i * 10."""
    return (torch.arange(n).float() * 10 / 127.5 - 1).view(n, 1, 1, 1).expand(n, 1, h, w).contiguous()


def test_scale_repeats_every_pixel():
    x = torch.tensor([[[[-1.0, 1.0]]]])  # one 1x2 image: black, white
    plain = np.asarray(image_grid(x, pad=0))
    big = np.asarray(image_grid(x, pad=0, scale=3))
    assert plain.tolist() == [[0, 255]]
    assert big.shape == (3, 6) and (big[:, :3] == 0).all() and (big[:, 3:] == 255).all()


def test_class_columns_align_each_class_under_its_label():
    n, classes = 25, 10  # samples cycle through the classes: item i has class i % 10
    grid = np.asarray(image_grid(_ramp(n, 16, 16), nrow=classes, pad=1, columns=[str(k) for k in range(classes)]))
    header = grid.shape[0] - (3 * 17 + 1)  # 3 rows of 16 px + pads, at scale 1 (a digit fits)
    assert header == 16 and grid.shape[1] == classes * 17 + 1
    body = grid[header:]
    for i in range(n):
        row, col = divmod(i, classes)
        assert body[1 + row * 17, 1 + col * 17] == i * 10  # item i sits in column i % 10
    assert (grid[:header] < 128).any()  # the labels are drawn


def test_labels_enlarge_small_pictures_until_they_fit():
    x = _ramp(4, h=8, w=24)  # three 8-px panels per item: too narrow for "target"
    grid = image_grid(x, nrow=2, pad=2, panels=["input", "output", "target"])
    assert grid.width % (2 * (24 + 2) + 2) == 0 and grid.width // (2 * 26 + 2) >= 4


def test_grid_layout_follows_the_model():
    conditional = SimpleNamespace(space=SimpleNamespace(num_classes=3, class_names=["a", "b", "c"]))
    assert grid_layout(conditional) == {"nrow": 3, "columns": ["a", "b", "c"]}
    assert grid_layout(SimpleNamespace(space=None, panels=("input", "output"))) == {"panels": ["input", "output"]}
    assert grid_layout(SimpleNamespace(space=None)) == {}


def test_write_sample_grid_paths_and_errors(tmp_path):
    model = SimpleNamespace(space=None)
    assert write_sample_grid(_ramp(4), model, tmp_path / "g.png", scale=2).name == "g.png"
    assert write_sample_grid(_ramp(4), model, tmp_path / "folder") == tmp_path / "folder" / "grid.png"
    with pytest.raises(GankitError, match="not images"):
        write_sample_grid(torch.zeros(5, 2), model, tmp_path / "v.png")
    with pytest.raises(GankitError, match="--scale"):
        write_sample_grid(_ramp(4), model, tmp_path / "s.png", scale=0)


def test_toy_grids_draw_a_thousand_points_and_translation_models_name_their_panels(tmp_path):
    from gankit.models.cyclegan import CycleGAN
    from gankit.models.pix2pix import Pix2Pix
    from gankit.training.trainer import Trainer
    from tests.conftest import tiny_toy_config

    trainer = Trainer(tiny_toy_config(**{"train.n_grid": 64}), tmp_path / "run")
    assert trainer.fixed["z"].shape[0] == 1000  # 64 points show no modes
    trainer.logger.close()
    assert grid_layout(SimpleNamespace(space=None, panels=Pix2Pix.panels)) == {"panels": ["input", "output", "target"]}
    assert len(CycleGAN.panels) == 3
