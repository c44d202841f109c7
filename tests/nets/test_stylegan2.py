import math

import pytest
import torch
from torch.testing import assert_close

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets import build_discriminator, build_generator
from gankit.nets.stylegan2 import (
    EqualConv2d,
    EqualLinear,
    ModulatedConv2d,
    minibatch_stddev,
    path_length_penalty,
    set_truncation,
)


def nets(size=16, c_dim=0, width=4, channels=3, mode="projection"):
    info = DataInfo("image", (channels, size, size), name="t")
    G = build_generator(NetConfig(name="stylegan2", width=width, depth=2), info, 8, c_dim)
    D = build_discriminator(NetConfig(name="stylegan2", width=width, norm="none"), info, c_dim, mode)
    return G, D


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("c_dim,mode", [(0, "projection"), (3, "projection"), (3, "concat")])
def test_shapes(size, c_dim, mode):
    torch.manual_seed(0)
    G, D = nets(size, c_dim, channels=1 if size == 8 else 3, mode=mode)
    c = torch.randn(5, c_dim) if c_dim else None
    x = G(torch.randn(5, 8), c)
    assert x.shape == (5, 1 if size == 8 else 3, size, size)
    assert D(x, c).shape == (5,)
    # 8 px: one conv at 4x4, two at 8x8, and the last to-RGB has a style of its own
    if size == 8:
        assert G.num_ws == 4


def test_unsupported_size_and_spectral_norm_are_errors():
    with pytest.raises(ConfigError, match="stylegan2 supports square images"):
        nets(size=28)
    info = DataInfo("image", (3, 16, 16), name="t")
    with pytest.raises(ConfigError, match="spectral_norm"):
        build_discriminator(NetConfig(name="stylegan2", width=4, spectral_norm=True), info)


def test_demodulation_keeps_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, w_dim=8)
    plain = ModulatedConv2d(64, 32, 3, w_dim=8, demodulate=False)
    plain.load_state_dict(conv.state_dict())
    with torch.no_grad():
        for m in (conv, plain):
            m.affine.bias.fill_(4.0)  # styles around 4: the modulation scales the input by ~4
    x, w = torch.randn(16, 64, 12, 12), torch.randn(16, 8)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the zero padding
    with torch.no_grad():
        std_demod = conv(x, w)[inner].std().item()
        std_plain = plain(x, w)[inner].std().item()
    assert 0.93 < std_demod < 1.07
    assert std_plain > 3.0  # without demodulation the style's scale passes straight through


def test_equalised_learning_rate_scales_weights_and_gradients():
    torch.manual_seed(0)
    layer = EqualLinear(16, 4, bias_init=0.5, lr_mul=0.5)
    x = torch.randn(3, 16)
    y = layer(x)
    # scale = lr_mul / sqrt(fan_in) = 0.5 / 4; the stored bias is bias_init / lr_mul = 1
    assert_close(y, x @ (layer.weight * 0.125).t() + layer.bias * 0.5)
    assert_close(layer.bias, torch.full((4,), 1.0))
    y.sum().backward()
    assert_close(layer.weight.grad, 0.125 * torch.ones(4, 3) @ x)
    conv = EqualConv2d(4, 2, 3)
    assert conv.scale == pytest.approx(1 / 6)  # 1 / sqrt(4 * 3 * 3)
    mapping_layer = EqualLinear(256, 256, lr_mul=0.01)  # stored at 1/lr_mul, used at N(0, 1/fan_in)
    assert 90 < mapping_layer.weight.std().item() < 110


def test_minibatch_stddev_by_hand():
    x = torch.tensor([0.0, 2.0, 1.0, 1.0]).reshape(4, 1, 1, 1)
    out = minibatch_stddev(x, group=2)
    # groups pair items (0, 2) and (1, 3): std of {0, 1} = 0.5, of {2, 1} = 0.5
    assert_close(out[:, 1].flatten(), torch.full((4,), math.sqrt(0.25 + 1e-8)))
    out = minibatch_stddev(torch.tensor([0.0, 4.0]).reshape(2, 1, 1, 1), group=4)
    assert_close(out[:, 1].flatten(), torch.full((2,), 2.0))


def test_truncation_pulls_towards_the_mean_style():
    torch.manual_seed(0)
    G, _ = nets(16)
    G.train()
    G(torch.randn(64, 8))  # w_avg moves away from zero
    G.eval()
    z = torch.randn(4, 8)
    assert (G(z)[0] - G(z)[1]).abs().max() > 1e-3
    set_truncation(G, 0.0)
    out = G(z)
    assert_close(out[0], out[1])  # psi = 0: every latent gives the mean style's image
    set_truncation(G, 1.0)
    assert (G(z)[0] - G(z)[1]).abs().max() > 1e-3
    dcgan = build_generator(NetConfig(name="dcgan", width=8), DataInfo("image", (1, 32, 32)), 8)
    with pytest.raises(ConfigError, match="stylegan2"):
        set_truncation(dcgan, 0.7)


def test_style_mixing_only_in_training():
    torch.manual_seed(0)
    G, _ = nets(16)
    z = torch.randn(32, 8)
    G.train()
    same = G.styles(z)
    assert torch.equal(same[:, 0], same[:, -1])
    G.mixing_prob = 1.0
    mixed = G.styles(z)
    assert_close(mixed[:, 0], same[:, 0])  # the first layer always keeps the first latent
    assert not torch.allclose(mixed[:, -1], same[:, -1])
    G.eval()
    unmixed = G.styles(z)
    assert torch.equal(unmixed[:, 0], unmixed[:, -1])


def test_path_length_penalty_updates_its_mean():
    torch.manual_seed(0)
    G, _ = nets(8, c_dim=2, channels=1)
    pl_mean = torch.zeros(())
    penalty, length = path_length_penalty(G, torch.randn(6, 8), torch.randn(6, 2), pl_mean)
    assert_close(pl_mean, 0.01 * length)
    penalty.backward()
    assert G.mapping.layers[0].weight.grad is not None


def test_projection_embedding_has_no_bias():
    _, D = nets(16, c_dim=3)
    assert D.embed.bias is None
