"""Metrics of conditional and image-to-image models against values computed by hand."""
import numpy as np
import pytest
import torch

from gankit.errors import DataError
from gankit.metrics.conditional import (
    class_agreement,
    cyclegan_scores,
    gaussian_window,
    intra_class_fid,
    paired_scores,
    psnr,
    ssim,
)


def test_psnr_by_hand():
    target = torch.zeros(2, 1, 4, 4)  # 0.5 on the [0, 1] scale
    pred = target.clone()
    pred[0] += 0.2  # off by 0.1 on [0, 1]: MSE 0.01, PSNR 20 dB
    pred[1, 0, 0, 0] = 1.0  # one pixel of 16 off by 0.5: MSE 0.25 / 16
    expected = torch.tensor([20.0, 10 * np.log10(16 / 0.25)])
    torch.testing.assert_close(psnr(pred, target), expected.float())


def test_ssim_of_constant_images_is_the_luminance_term():
    a = torch.full((1, 1, 12, 12), 2 * 0.2 - 1)  # 0.2 on [0, 1]
    b = torch.full((1, 1, 12, 12), 2 * 0.6 - 1)
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    torch.testing.assert_close(ssim(a, b), torch.tensor([expected], dtype=torch.float32))
    torch.testing.assert_close(ssim(a, a), torch.ones(1))


def test_ssim_of_one_window_against_weighted_statistics():
    rng = np.random.default_rng(0)
    x, y = rng.random((11, 11)), rng.random((11, 11))
    w = gaussian_window().numpy()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cov = (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    expected = (2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    to_t = lambda a: torch.tensor(a * 2 - 1, dtype=torch.float32)[None, None]  # noqa: E731
    torch.testing.assert_close(ssim(to_t(x), to_t(y)), torch.tensor([expected], dtype=torch.float32))
    assert abs(gaussian_window().sum().item() - 1) < 1e-12


def test_ssim_needs_windows_that_fit():
    with pytest.raises(DataError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_paired_scores_l1_on_the_data_scale():
    target = torch.zeros(1, 1, 12, 12)
    scores = paired_scores(target + 0.5, target)
    assert scores["l1"] == pytest.approx(0.5)
    assert scores["psnr"] == pytest.approx(10 * np.log10(1 / 0.25 ** 2))


def test_class_agreement_counts_argmax_hits():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert class_agreement(probs, torch.tensor([0, 1, 1, 0])) == 0.5


def test_intra_class_fid_is_the_squared_mean_shift_for_equal_spreads():
    torch.manual_seed(0)
    real = torch.randn(400, 3)
    y = torch.arange(400) % 2
    shift = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    fake = real + shift[y]  # same covariance per class, means moved by 5 and by 9 (squared)
    scores = intra_class_fid(fake, y, real, y, ["even", "odd"])
    assert scores["intra_fid/even"] == pytest.approx(5.0, abs=1e-6)
    assert scores["intra_fid/odd"] == pytest.approx(9.0, abs=1e-6)
    assert scores["intra_fid"] == pytest.approx(7.0, abs=1e-6)


class SwapModel:
    """A 'translator' that negates images one way and leaves them alone the other way."""

    def translate(self, x, forward=True, use_ema=True):
        return -x if forward else x


def test_cycle_error_of_a_known_translator():
    a, b = torch.full((3, 1, 4, 4), 0.5), torch.full((2, 1, 4, 4), -0.25)
    scores = cyclegan_scores(SwapModel(), a, b)
    # A: -a comes back as -a, an error of |(-0.5) - 0.5| = 1; B: b -> b -> -b, error 0.5
    assert scores == {"cycle_l1/A": pytest.approx(1.0), "cycle_l1/B": pytest.approx(0.5)}


class ValueClassifier:
    """An extractor whose class is an image's first pixel (as an integer) and whose features
    are the pixels themselves."""

    name, num_classes = "value", 3

    def __call__(self, x):
        from gankit.metrics.extractors import Extracted

        probs = torch.nn.functional.one_hot(x[:, 0, 0, 0].round().long().clamp(0, 2), 3).float()
        return Extracted(features=x.flatten(1), probs=probs)


class LabelPainter:
    """A conditional 'generator' that draws class k as k plus small noise, except class 2,
    which it draws as 0 (a wrong class)."""

    device = torch.device("cpu")

    def __init__(self):
        from gankit.data.info import DataInfo
        from gankit.nets.condition import ConditionSpace

        self.space = ConditionSpace("label", DataInfo("image", (1, 2, 2), num_classes=3,
                                                      class_names=["a", "b", "c"]))

    def generate(self, n, generator=None, c=None, use_ema=True):
        value = torch.where(c == 2, 0, c).float()
        return value.view(-1, 1, 1, 1) + 0.01 * torch.randn(n, 1, 2, 2, generator=generator)


def test_conditional_scores_ask_each_class():
    from gankit.metrics.conditional import conditional_scores

    torch.manual_seed(0)
    y = torch.arange(300) % 3
    real = y.float().view(-1, 1, 1, 1) + 0.01 * torch.randn(300, 1, 2, 2)
    scores = conditional_scores(LabelPainter(), real, y, ValueClassifier(), n_per_class=100)
    assert scores["class_accuracy"] == pytest.approx(2 / 3)
    assert scores["intra_fid/a"] < 0.01 and scores["intra_fid/b"] < 0.01
    assert scores["intra_fid/c"] == pytest.approx(16.0, abs=0.1)  # 4 pixels moved by 2: 4 * 2^2
    assert (scores["class_accuracy/a"], scores["class_accuracy/b"], scores["class_accuracy/c"]) == (1, 1, 0)
    # the painter's noise has the real data's spread: diversity ~1 in every class
    assert scores["within_class_diversity/a"] == pytest.approx(1.0, abs=0.1)
    assert scores["within_class_diversity"] == pytest.approx(1.0, abs=0.1)


class GlyphRepeater(LabelPainter):
    """Draws every sample of class k as the same image (collapse within the class), except
    class 'a', which keeps the real spread."""

    def generate(self, n, generator=None, c=None, use_ema=True):
        noise = 0.01 * torch.randn(n, 1, 2, 2, generator=generator)
        noise = torch.where((c == 0).view(-1, 1, 1, 1), noise, noise[:1])
        return c.float().view(-1, 1, 1, 1) + noise


def test_within_class_diversity_catches_a_repeated_glyph():
    from gankit.metrics.conditional import conditional_scores

    torch.manual_seed(0)
    y = torch.arange(300) % 3
    real = y.float().view(-1, 1, 1, 1) + 0.01 * torch.randn(300, 1, 2, 2)
    scores = conditional_scores(GlyphRepeater(), real, y, ValueClassifier(), n_per_class=100)
    assert scores["class_accuracy"] == 1.0  # every sample is of its class ...
    assert scores["within_class_diversity/a"] == pytest.approx(1.0, abs=0.1)
    assert scores["within_class_diversity/b"] == 0.0 and scores["within_class_diversity/c"] == 0.0  # ... but b, c repeat
    assert scores["within_class_diversity_min"] == 0.0


def test_mean_pairwise_distance_by_hand():
    from gankit.metrics.conditional import mean_pairwise_distance

    # distances 3 (0-1), 4 (0-2), 5 (1-2): mean 4
    assert mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])) == pytest.approx(4.0)
