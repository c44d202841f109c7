"""The optional condition c: it changes the outputs, is required iff c_dim > 0, and enters D
by concatenation or by projection."""
import pytest
import torch
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets import build_discriminator, build_generator

C_DIM = 3
# (net, (D,) for vectors or (channels, size) for square images)
CASES = [("mlp", (2,)), ("mlp", (1, 8)), ("dcgan", (3, 28)), ("dcgan", (1, 32)), ("resnet", (3, 32))]


def info_for(shape):
    if len(shape) == 1:
        return DataInfo("vector", shape)
    channels, size = shape
    return DataInfo("image", (channels, size, size))


def item_shape(shape):
    return shape if len(shape) == 1 else (shape[0], shape[1], shape[1])


def one_hot(*labels):
    return torch.eye(C_DIM)[list(labels)]


def make_d(net, shape, cond_mode, c_dim=C_DIM):
    torch.manual_seed(0)
    cfg = NetConfig(name=net, width=8, depth=2, norm="none")
    return build_discriminator(cfg, info_for(shape), c_dim=c_dim, cond_mode=cond_mode).eval()


def make_g(net, shape, c_dim=C_DIM):
    torch.manual_seed(0)
    return build_generator(NetConfig(name=net, width=8, depth=2), info_for(shape), 4, c_dim).eval()


@pytest.mark.parametrize("net,shape", CASES)
@pytest.mark.parametrize("mode", ["concat", "projection"])
def test_d_score_depends_on_each_items_own_c(net, shape, mode):
    D = make_d(net, shape, mode)
    x = torch.randn(4, *item_shape(shape))
    base = D(x, one_hot(0, 0, 0, 0))
    changed = D(x, one_hot(1, 0, 0, 0))
    assert (changed[0] - base[0]).abs() > 1e-6
    torch.testing.assert_close(changed[1:], base[1:])


@pytest.mark.parametrize("net,shape", CASES)
def test_g_output_depends_on_each_items_own_c(net, shape):
    G = make_g(net, shape)
    z = torch.randn(4, 4)
    base = G(z, one_hot(0, 0, 0, 0))
    changed = G(z, one_hot(2, 0, 0, 0))
    assert (changed[0] - base[0]).abs().max() > 1e-6
    torch.testing.assert_close(changed[1:], base[1:])


@pytest.mark.parametrize("net,shape", CASES)
def test_projection_adds_inner_product_of_embedded_c_and_features(net, shape):
    D = make_d(net, shape, "projection")
    x = torch.randn(5, *item_shape(shape))
    c1, c2 = torch.randn(5, C_DIM), torch.randn(5, C_DIM)
    phi = D.features(x)
    expected = ((c1 - c2) @ D.embed.weight.T * phi).sum(dim=1)
    torch.testing.assert_close(D(x, c1) - D(x, c2), expected)
    assert D.embed.bias is None
    assert D.embed.weight.shape == (D.feature_dim, C_DIM)


@pytest.mark.parametrize("net,shape", CASES)
def test_projection_features_do_not_need_c(net, shape):
    D = make_d(net, shape, "projection")
    x = torch.randn(2, *item_shape(shape))
    torch.testing.assert_close(D.features(x), D.features(x, one_hot(1, 2)))


@pytest.mark.parametrize("net,shape", CASES)
def test_concat_features_include_c(net, shape):
    D = make_d(net, shape, "concat")
    x = torch.randn(2, *item_shape(shape))
    assert (D.features(x, one_hot(0, 1)) - D.features(x, one_hot(2, 1))).abs().max() > 1e-6
    with pytest.raises(ConfigError, match="c_dim=3"):
        D.features(x)


def test_concat_widens_the_first_layer_by_c_dim():
    D = make_d("mlp", (1, 8), "concat")
    first = next(m for m in D.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 64 + C_DIM
    for net in ("dcgan", "resnet"):
        D = make_d(net, (3, 32), "concat")
        first = next(m for m in D.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == 3 + C_DIM


@pytest.mark.parametrize("net,shape", CASES)
@pytest.mark.parametrize("mode", ["concat", "projection"])
def test_missing_or_unexpected_c_raises(net, shape, mode):
    x = torch.randn(2, *item_shape(shape))
    z = torch.randn(2, 4)
    with pytest.raises(ConfigError, match=r"needs c of shape \[B, 3\]"):
        make_d(net, shape, mode)(x)
    with pytest.raises(ConfigError, match=r"needs c of shape \[B, 3\]"):
        make_g(net, shape)(z)
    with pytest.raises(ConfigError, match="unconditional"):
        make_d(net, shape, mode, c_dim=0)(x, one_hot(0, 1))
    with pytest.raises(ConfigError, match="unconditional"):
        make_g(net, shape, c_dim=0)(z, one_hot(0, 1))


def test_malformed_c_and_z_raise():
    D, G = make_d("mlp", (2,), "projection"), make_g("mlp", (2,))
    x, z = torch.randn(2, 2), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"shape \[2, 3\]"):
        D(x, torch.randn(2, 4))
    with pytest.raises(ValueError, match="float"):
        G(z, torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"z of shape \[B, 4\]"):
        G(torch.randn(2, 5), one_hot(0, 1))


def test_unknown_cond_mode_raises():
    with pytest.raises(ConfigError, match="concat, projection"):
        make_d("mlp", (2,), "film")
