import numpy as np
import torch
from PIL import Image

from gankit.metrics.nearest import memorisation


def _images(n, seed):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_exact_copy_is_flagged_and_new_sample_is_not(tmp_path):
    train = _images(60, 0)
    fake = torch.cat([train[17:18].clone(), _images(1, 1)])
    result = memorisation(fake, train, neighbours=20, out_path=tmp_path / "pairs.png", n_pairs=2)
    assert result["near_copies"] == 1 and result["nn_min"] == 0.0
    assert result["near_copy_fraction"] == 0.5
    # The closest pair comes first: the copy over its training image, identical tiles.
    grid = np.asarray(Image.open(tmp_path / "pairs.png"))
    top, bottom = grid[2:10, 2:10], grid[12:20, 2:10]
    np.testing.assert_array_equal(top, bottom)


def test_streamed_training_set_gives_the_same_result():
    train, fake = _images(40, 2), _images(5, 3)
    whole = memorisation(fake, train, neighbours=10)
    streamed = memorisation(fake, iter(train.split(7)), neighbours=10)
    assert whole.keys() == streamed.keys()
    for key in whole:
        torch.testing.assert_close(torch.tensor(streamed[key]), torch.tensor(whole[key]))


def test_distances_are_rms_pixels():
    train = torch.full((3, 1, 2, 2), -1.0)
    fake = torch.full((1, 1, 2, 2), -0.5)
    result = memorisation(fake, train, neighbours=3)
    torch.testing.assert_close(torch.tensor(result["nn_min"]), torch.tensor(0.5))
    assert result["near_copies"] == 0
