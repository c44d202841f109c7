import math

import torch
from PIL import Image

from gankit.data.toy import MIXTURES
from gankit.metrics.toy import nearest_modes, plot_toy, toy_metrics

RING, RING_STD = MIXTURES["ring8"]


def test_samples_at_three_of_eight_modes():
    samples = RING[[0, 2, 5]].repeat(4, 1)  # 4 samples on each of modes 0, 2 and 5
    result = toy_metrics(samples, "ring8")
    assert result["modes"] == 3 and result["high_quality"] == 1.0
    # histogram 1/3 on three of eight modes: KL = 3 * 1/3 * ln((1/3) * 8)
    torch.testing.assert_close(torch.tensor(result["kl"]), torch.tensor(math.log(8 / 3)))


def test_quality_is_within_three_std():
    near = torch.tensor([[1.0 + 2 * RING_STD, 0.0]])  # 2 std out along the radius of mode 0
    far = torch.tensor([[1.0 + 4 * RING_STD, 0.0]])
    result = toy_metrics(torch.cat([near, far]), "ring8")
    assert result["high_quality"] == 0.5 and result["modes"] == 1
    torch.testing.assert_close(torch.tensor(result["kl"]), torch.tensor(math.log(8)))
    assert toy_metrics(far, "ring8") == {"modes": 0, "high_quality": 0.0, "kl": float("inf")}


def test_all_modes_evenly_give_zero_kl():
    result = toy_metrics(MIXTURES["grid25"][0].repeat(2, 1), "grid25")
    assert result == {"modes": 25, "high_quality": 1.0, "kl": 0.0}


def test_grid_mode_numbering():
    idx, hq = nearest_modes(torch.tensor([[-4.0, -2.0], [4.0, 4.0], [0.9, 0.0]]), "grid25")
    assert idx.tolist() == [1, 24, 12] and hq.tolist() == [True, True, False]


def test_plot_is_written(tmp_path):
    path = plot_toy(RING.repeat(3, 1) + 0.001, "ring8", tmp_path / "sub" / "scatter.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
