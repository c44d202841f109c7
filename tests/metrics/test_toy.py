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
    assert toy_metrics(far, "ring8") == {"modes": 0, "modes_fair": 0, "high_quality": 0.0,
                                         "kl": float("inf"), "within_1std": 0.0, "beyond_10std": 0.0}


def test_all_modes_evenly_give_zero_kl():
    result = toy_metrics(MIXTURES["grid25"][0].repeat(2, 1), "grid25")
    assert result == {"modes": 25, "modes_fair": 25, "high_quality": 1.0, "kl": 0.0,
                      "within_1std": 1.0, "beyond_10std": 0.0}


def test_uniform_scatter_covers_modes_but_not_their_fair_share():
    # A generator spread uniformly over the grid's square: PacGAN's count sees most modes
    # (one sample within 3 std is enough), the fair-share count sees none of them.
    gen = torch.Generator().manual_seed(0)
    uniform = torch.rand(10_000, 2, generator=gen) * 10 - 5
    result = toy_metrics(uniform, "grid25")
    assert result["modes"] == 25 and result["modes_fair"] == 0
    assert 0.005 < result["high_quality"] < 0.03  # 25 discs of radius 0.15 cover 1.8% of it


def test_fair_share_counts_modes_with_a_quarter_of_n_over_k():
    # 8 modes, 80 samples: a fair share is 10, a quarter of it 2.5 samples
    means = RING[[0, 1, 2]]
    samples = torch.cat([means[0].repeat(74, 1), means[1].repeat(3, 1), means[2].repeat(2, 1),
                         torch.tensor([[0.0, 0.0]])])
    result = toy_metrics(samples, "ring8")
    assert (result["modes"], result["modes_fair"]) == (3, 2)
    assert result["high_quality"] == 79 / 80
    assert result["beyond_10std"] == 1 / 80  # the centre lies 100 std from every mode


def test_any_cloud_by_means_and_std():
    means = torch.tensor([[10.0, 10.0], [20.0, 10.0]])
    samples = torch.tensor([[10.0, 10.5], [20.0, 12.0], [15.0, 10.0]])  # 0.5, 2 and 5 std away
    idx, hq = nearest_modes(samples, (means, 1.0))
    assert hq.tolist() == [True, True, False] and idx[:2].tolist() == [0, 1]
    result = toy_metrics(samples, (means, 1.0))
    assert result["within_1std"] == 1 / 3 and result["modes"] == 2


def test_grid_mode_numbering():
    idx, hq = nearest_modes(torch.tensor([[-4.0, -2.0], [4.0, 4.0], [0.9, 0.0]]), "grid25")
    assert idx.tolist() == [1, 24, 12] and hq.tolist() == [True, True, False]


def test_plot_is_written(tmp_path):
    path = plot_toy(RING.repeat(3, 1) + 0.001, "ring8", tmp_path / "sub" / "scatter.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
