"""The PacGAN toy mixtures: exact means and stds, noise level, determinism, mode balance."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.data.toy import MIXTURES, mixture, sample_mixture
from gankit.errors import ConfigError

H = math.sqrt(0.5)


def test_ring8_means_and_std_are_the_pacgan_definition():
    means, std = MIXTURES["ring8"]
    expected = torch.tensor([[1, 0], [H, H], [0, 1], [-H, H],
                             [-1, 0], [-H, -H], [0, -1], [H, -H]], dtype=torch.float32)
    assert_close(means, expected, atol=1e-7, rtol=0)
    assert std == 0.01


def test_grid25_means_and_std_are_the_pacgan_definition():
    means, std = MIXTURES["grid25"]
    assert means.shape == (25, 2)
    assert_close(means[0], torch.tensor([-4.0, -4.0]))
    assert_close(means[1], torch.tensor([-4.0, -2.0]))
    assert_close(means[5], torch.tensor([-2.0, -4.0]))
    assert_close(means[12], torch.tensor([0.0, 0.0]))
    assert_close(means[24], torch.tensor([4.0, 4.0]))
    grid = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(m.tolist()) for m in means} == grid
    assert std == 0.05


def test_mixture_returns_a_copy():
    means, _ = mixture("ring8")
    means.zero_()
    assert MIXTURES["ring8"][0][0, 0] == 1.0


@pytest.mark.parametrize("name,std", [("ring8", 0.01), ("grid25", 0.05)])
def test_samples_sit_around_their_mode_with_the_right_std(name, std):
    x, modes = sample_mixture(name, 40_000, seed=1)
    assert x.dtype == torch.float32 and x.shape == (40_000, 2)
    assert modes.dtype == torch.int64 and modes.shape == (40_000,)
    means = MIXTURES[name][0]
    residual = x - means[modes]
    assert_close(residual.std(dim=0), torch.tensor([std, std]), rtol=0.03, atol=0)
    assert_close(residual.mean(dim=0), torch.zeros(2), rtol=0, atol=5 * std / 200)
    # Modes are far apart relative to the noise, so the nearest mean is the label.
    assert torch.equal(torch.cdist(x, means).argmin(dim=1), modes)


@pytest.mark.parametrize("name,k", [("ring8", 8), ("grid25", 25)])
def test_modes_are_used_uniformly(name, k):
    n = 1000 * k
    _, modes = sample_mixture(name, n, seed=2)
    counts = torch.bincount(modes, minlength=k)
    assert len(counts) == k
    # Binomial std is about sqrt(1000) ~ 32: 5 std either side.
    assert counts.min() > 1000 - 160 and counts.max() < 1000 + 160


def test_sampling_is_deterministic_per_seed_and_differs_across_seeds():
    a = sample_mixture("grid25", 500, seed=7)
    b = sample_mixture("grid25", 500, seed=7)
    c = sample_mixture("grid25", 500, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert not torch.allclose(a[0], c[0])


def test_unknown_mixture_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'ring8'"):
        sample_mixture("ring88", 10)


@pytest.mark.parametrize("n", [0, -5, 2.5])
def test_bad_sample_count_is_rejected(n):
    with pytest.raises(ConfigError, match="positive integer"):
        sample_mixture("ring8", n)
