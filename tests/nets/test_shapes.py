"""Output shapes, value ranges and layer plans of every (net, size, channels) combination."""
import pytest
import torch
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.nets import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator

W = 8  # base width of the small nets built here
# (net, channels, size, feature_dim computed by hand for width W)
IMAGE_CASES = [
    ("mlp", 1, 8, W), ("mlp", 3, 8, W),
    ("dcgan", 1, 28, 2 * W * 7 * 7), ("dcgan", 3, 28, 2 * W * 7 * 7),
    ("dcgan", 1, 32, 4 * W * 4 * 4), ("dcgan", 3, 32, 4 * W * 4 * 4),
    ("dcgan", 1, 64, 8 * W * 4 * 4), ("dcgan", 3, 64, 8 * W * 4 * 4),
    ("resnet", 1, 32, W), ("resnet", 3, 32, W),
    ("resnet", 1, 64, 8 * W), ("resnet", 3, 64, 8 * W),
]


@torch.no_grad()
def scale_weights(net, factor):
    for p in net.parameters():
        if p.dim() > 1:
            p.mul_(factor)


def image_info(channels, size):
    return DataInfo("image", (channels, size, size))


@pytest.mark.parametrize("net,channels,size,feature_dim", IMAGE_CASES)
def test_image_nets_shapes_and_tanh_range(net, channels, size, feature_dim):
    torch.manual_seed(0)
    info = image_info(channels, size)
    G = build_generator(NetConfig(name=net, width=W, depth=2), info, z_dim=6).eval()
    D = build_discriminator(NetConfig(name=net, width=W, depth=2, norm="none"), info)
    scale_weights(G, 10.0)  # pushes the pre-activations far beyond [-1, 1]
    x = G(torch.randn(5, 6))
    assert x.shape == (5, channels, size, size)
    assert x.abs().max() <= 1.0
    assert x.abs().max() > 0.9
    assert D(x).shape == (5,)
    assert D.feature_dim == feature_dim
    assert D.features(x).shape == (5, feature_dim)


@pytest.mark.parametrize("dim", [2, 5])
def test_vector_nets_are_linear_at_the_output(dim):
    torch.manual_seed(0)
    info = DataInfo("vector", (dim,))
    G = build_generator(NetConfig(name="mlp", width=16, depth=3), info, z_dim=4).eval()
    D = build_discriminator(NetConfig(name="mlp", width=16, depth=3, norm="layer"), info)
    scale_weights(G, 10.0)
    x = G(torch.randn(7, 4))
    assert x.shape == (7, dim)
    assert x.abs().max() > 1.5  # no squashing for vectors
    assert D(x).shape == (7,)
    assert D.features(x).shape == (7, D.feature_dim) == (7, 16)


@pytest.mark.parametrize("net", ["mlp", "dcgan", "resnet"])
def test_discriminator_scores_are_raw(net):
    info = DataInfo("vector", (3,)) if net == "mlp" else image_info(3, 32)
    D = build_discriminator(NetConfig(name=net, width=W, norm="none"), info)
    with torch.no_grad():
        D.head.weight.zero_()
        D.head.bias.fill_(5.0)
    x = torch.randn((4, 3) if net == "mlp" else (4, 3, 32, 32))
    torch.testing.assert_close(D(x), torch.full((4,), 5.0))  # a sigmoid would give 0.9933


def test_auto_picks_mlp_for_vectors_and_dcgan_for_images():
    cfg = NetConfig(name="auto", width=W)
    assert isinstance(build_generator(cfg, DataInfo("vector", (2,)), 3), MLPGenerator)
    assert isinstance(build_discriminator(cfg, DataInfo("vector", (2,))), MLPDiscriminator)
    assert isinstance(build_generator(cfg, image_info(1, 28), 3), DCGANGenerator)
    assert isinstance(build_discriminator(cfg, image_info(1, 28)), DCGANDiscriminator)


def test_registries_hold_the_three_families():
    for registry in (GENERATORS, DISCRIMINATORS):
        assert {"mlp", "dcgan", "resnet"} <= set(registry.names())


def test_mlp_has_depth_hidden_layers_of_width():
    info = DataInfo("vector", (5,))
    G = build_generator(NetConfig(name="mlp", width=32, depth=3), info, z_dim=4)
    D = build_discriminator(NetConfig(name="mlp", width=32, depth=3), info)
    g_shapes = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    assert g_shapes == [(4, 32), (32, 32), (32, 32), (32, 5)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 3
    d_shapes = [(m.in_features, m.out_features) for m in D.body if isinstance(m, nn.Linear)]
    assert d_shapes == [(5, 32), (32, 32), (32, 32)]
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules()) == 3


def test_dcgan_64_follows_radford_channel_plan():
    G = build_generator(NetConfig(name="dcgan", width=64), image_info(3, 64), z_dim=100)
    D = build_discriminator(NetConfig(name="dcgan", width=64, norm="batch"), image_info(3, 64))
    g_out = [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert g_out == [512, 256, 128, 64, 3]
    d_out = [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert d_out == [64, 128, 256, 512]
    # D has no batch norm on its first layer: three BN layers for four convs.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3


@pytest.mark.parametrize("net", ["dcgan", "resnet"])
@pytest.mark.parametrize("norm", ["batch", "layer", "instance", "none"])
def test_channels_last_gives_the_same_outputs(net, norm):
    torch.manual_seed(0)
    info = image_info(3, 32)
    G = build_generator(NetConfig(name=net, width=W, norm=norm), info, z_dim=5)
    D = build_discriminator(NetConfig(name=net, width=W, norm=norm), info, c_dim=2, cond_mode="concat")
    z, c, x = torch.randn(3, 5), torch.randn(3, 2), torch.randn(3, 3, 32, 32)
    fake, score = G(z), D(x, c)
    G.to(memory_format=torch.channels_last)
    D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(G(z), fake)
    torch.testing.assert_close(D(x.contiguous(memory_format=torch.channels_last), c), score)


def test_maxout_layer_takes_the_max_of_five_pieces():
    from gankit.nets.mlp import Maxout

    layer = Maxout(3, 2, 5)
    x = torch.randn(4, 3)
    pre = layer.linear(x).view(4, 2, 5)
    torch.testing.assert_close(layer(x), pre.max(dim=2).values)
    assert layer.linear.out_features == 10


def test_pacgan_2d_nets_are_the_published_sizes():
    from gankit.config import load_config
    from gankit.data.info import DataInfo
    from gankit.nets import build_discriminator, build_generator
    from gankit.nets.mlp import Maxout

    cfg = load_config("toy_ring8_pacgan", [])
    info = DataInfo("vector", (2,))
    G, D = build_generator(cfg.G, info, cfg.model.z_dim), build_discriminator(cfg.D, info)
    g_linear = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in g_linear] == [400, 400, 400, 400, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == 4
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.width, m.pieces) for m in maxouts] == [(200, 5)] * 3
    assert D(torch.randn(6, 2)).shape == (6,)
