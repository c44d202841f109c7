import pytest
import torch
from torch.testing import assert_close

from gankit.errors import ConfigError
from gankit.nets.augment import AdaptiveAugment, DiffAugment, build_augment, rand_cutout, rand_translation


def test_diffaugment_is_differentiable():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = DiffAugment()(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_is_a_whole_pixel_shift_with_zero_fill():
    torch.manual_seed(1)
    x = torch.arange(1, 8 * 16 * 16 + 1, dtype=torch.float32).reshape(8, 1, 16, 16)
    y = rand_translation(x, ratio=0.125)  # shifts of up to 2 pixels
    for img, out in zip(x, y):
        padded = torch.nn.functional.pad(img, [2, 2, 2, 2])
        shifts = [(dy, dx) for dy in range(5) for dx in range(5)
                  if torch.equal(padded[:, dy:dy + 16, dx:dx + 16], out)]
        assert len(shifts) == 1


def test_cutout_zeros_one_square_of_at_most_half_the_side():
    torch.manual_seed(2)
    y = rand_cutout(torch.ones(16, 3, 16, 16), ratio=0.5)
    for img in y:
        zero = (img[0] == 0).nonzero()
        assert len(zero) > 0
        rows, cols = zero[:, 0], zero[:, 1]
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert h <= 8 and w <= 8 and len(zero) == h * w  # a full rectangle
        assert torch.equal(img[0], img[2])  # the same hole in every channel


@pytest.mark.parametrize("pick, rows, cols", [
    ("low", range(0, 8), range(0, 8)),  # centre (0, 0): half the hole hangs off the top left
    ("high", range(24, 32), range(24, 32)),  # centre (H, W): half hangs off the bottom right
    ("middle", range(8, 24), range(8, 24)),  # inside: the whole 16x16 hole, half the side
])
def test_cutout_is_half_the_side_centred_anywhere_in_0_to_h(monkeypatch, pick, rows, cols):
    """DiffAugment's reference at 32 px: a 16x16 hole (not 15x15), centre in [0, 32]."""
    def randint(low, high, size, device=None):
        value = {"low": low, "high": high - 1, "middle": (low + high) // 2}[pick]
        return torch.full(size, value, dtype=torch.long)

    monkeypatch.setattr(torch, "randint", randint)
    y = rand_cutout(torch.ones(1, 1, 32, 32), ratio=0.5)[0, 0]
    expected = torch.ones(32, 32)
    expected[rows.start:rows.stop, cols.start:cols.stop] = 0
    assert torch.equal(y, expected)


def test_ada_is_identity_at_zero_and_differentiable_above():
    torch.manual_seed(0)
    aug = AdaptiveAugment()
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    assert aug(x) is x
    aug.p.fill_(0.8)
    y = aug(x)
    assert not torch.allclose(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ada_p_moves_the_right_way():
    aug = AdaptiveAugment(target=0.6, kimg=1.0)  # 1,000 images move p from 0 to 1
    for _ in range(3):
        aug.observe(torch.tensor(32.0), 32)  # D sure of every real: overfitting
    assert aug.p.item() == 0.0  # adjusted every 4 D steps only
    aug.observe(torch.tensor(32.0), 32)
    assert aug.p.item() == pytest.approx(128 / 1000)  # r_t = 1 > 0.6: up by 128 images' worth
    for _ in range(4):
        aug.observe(torch.tensor(16.0), 32)  # r_t = 0.5 < 0.6: down again
    assert aug.p.item() == pytest.approx(0.0, abs=1e-7)
    for _ in range(4):
        aug.observe(torch.tensor(-32.0), 32)
    assert aug.p.item() == 0.0  # clamped at 0


def test_build_augment_names():
    assert build_augment("none") is None
    assert isinstance(build_augment("ada", 0.6, 100), AdaptiveAugment)
    with pytest.raises(ConfigError, match="diffaugment"):
        build_augment("diffaug")
