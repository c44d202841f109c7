"""DCGAN's initialisation, and gradients reaching every parameter of G through D."""
import pytest
import torch
from torch import nn

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.nets import build_discriminator, build_generator


def test_dcgan_init_is_normal_002_with_unit_norm_scales():
    torch.manual_seed(0)
    info = DataInfo("image", (3, 64, 64))
    nets = [build_generator(NetConfig(name="dcgan", width=32), info, z_dim=100),
            build_discriminator(NetConfig(name="dcgan", width=32, norm="batch"), info)]
    convs = [m for net in nets for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for m in convs:
        if m.weight.numel() >= 20_000:  # large enough for a tight estimate
            assert abs(m.weight.std().item() - 0.02) < 1e-3
            assert abs(m.weight.mean().item()) < 1e-3
        if m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
    norms = [m for net in nets for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 4 + 3
    scales = torch.cat([m.weight.detach() for m in norms])
    assert abs(scales.mean().item() - 1.0) < 0.005
    assert abs(scales.std().item() - 0.02) < 0.004
    assert torch.count_nonzero(torch.cat([m.bias.detach() for m in norms])) == 0


# (net, data shape, G norm, D norm)
CASES = [("mlp", (2,), "batch", "layer"), ("mlp", (5,), "none", "none"),
         ("mlp", (1, 8, 8), "batch", "batch"),
         ("dcgan", (1, 28, 28), "batch", "none"), ("dcgan", (3, 32, 32), "none", "layer"),
         ("dcgan", (3, 64, 64), "instance", "instance"), ("resnet", (3, 32, 32), "batch", "none"),
         ("resnet", (1, 64, 64), "layer", "batch")]


@pytest.mark.parametrize("net,shape,g_norm,d_norm", CASES)
@pytest.mark.parametrize("c_dim", [0, 2])
def test_gradients_reach_every_generator_parameter(net, shape, g_norm, d_norm, c_dim):
    torch.manual_seed(0)
    info = DataInfo("vector" if len(shape) == 1 else "image", shape)
    G = build_generator(NetConfig(name=net, width=8, depth=2, norm=g_norm), info, 5, c_dim)
    D = build_discriminator(NetConfig(name=net, width=8, depth=2, norm=d_norm), info, c_dim)
    c = torch.randn(6, c_dim) if c_dim else None
    D(G(torch.randn(6, 5), c), c).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().max() > 0, name
