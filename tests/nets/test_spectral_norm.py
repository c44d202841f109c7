"""Spectral normalisation: every weight of D ends up with largest singular value 1."""
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.nets import apply_spectral_norm, build_discriminator, build_generator

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
# (net, data shape, c_dim): every family, conditional ones included (their embedding too)
CASES = [("mlp", (2,), 0), ("mlp", (1, 8, 8), 3), ("dcgan", (1, 28, 28), 3),
         ("dcgan", (3, 32, 32), 0), ("dcgan", (3, 64, 64), 2), ("resnet", (3, 32, 32), 3),
         ("resnet", (1, 64, 64), 0)]


def info_for(shape):
    return DataInfo("vector" if len(shape) == 1 else "image", shape)


def weighted_layers(net):
    return [m for m in net.modules() if isinstance(m, WEIGHTED)]


def top_singular_value(layer):
    """sigma_max of the weight as a matrix (output units x everything else)."""
    w = layer.weight.detach()
    if isinstance(layer, nn.ConvTranspose2d):  # [in, out, k, k]: outputs are dim 1
        w = w.transpose(0, 1)
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)


@torch.no_grad()
def run_power_iterations(net, x, c, n=5):
    net.train()
    for _ in range(n):
        net(x, c)
    net.eval()


@pytest.mark.parametrize("net,shape,c_dim", CASES)
def test_spectral_norm_bounds_every_weight(net, shape, c_dim):
    torch.manual_seed(0)
    cfg = NetConfig(name=net, width=8, depth=2, norm="none")
    D = build_discriminator(cfg, info_for(shape), c_dim=c_dim)
    with torch.no_grad():
        for layer in weighted_layers(D):
            layer.weight.mul_(10)
    before = torch.stack([top_singular_value(m) for m in weighted_layers(D)])
    assert before.min() > 1.2  # the measure sees unnormalised weights

    apply_spectral_norm(D)
    x, c = torch.randn(4, *shape), torch.randn(4, c_dim) if c_dim else None
    run_power_iterations(D, x, c)
    after = torch.stack([top_singular_value(m) for m in weighted_layers(D)])
    torch.testing.assert_close(after, torch.ones_like(after), atol=1e-2, rtol=0)


@pytest.mark.parametrize("net,shape,c_dim", CASES)
def test_config_flag_wraps_every_weight_of_d_once(net, shape, c_dim):
    cfg = NetConfig(name=net, width=8, depth=2, norm="none", spectral_norm=True)
    D = build_discriminator(cfg, info_for(shape), c_dim=c_dim)
    layers = weighted_layers(D)
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    apply_spectral_norm(D)  # a second call leaves wrapped weights alone
    assert all(len(m.parametrizations.weight) == 1 for m in layers)
    x, c = torch.randn(4, *shape), torch.randn(4, c_dim) if c_dim else None
    assert D(x, c).shape == (4,)


def test_mlp_projection_d_has_hidden_head_and_embedding_wrapped():
    cfg = NetConfig(name="mlp", width=8, depth=2, spectral_norm=True)
    D = build_discriminator(cfg, DataInfo("vector", (2,)), c_dim=3)
    wrapped = [m for m in D.modules() if parametrize.is_parametrized(m, "weight")]
    assert len(wrapped) == 4  # two hidden layers, the head, the projection embedding


def test_generator_transposed_convs_are_normalised_when_asked():
    torch.manual_seed(0)
    cfg = NetConfig(name="dcgan", width=8, norm="none", spectral_norm=True)
    G = build_generator(cfg, info_for((3, 32, 32)), z_dim=6)
    assert all(parametrize.is_parametrized(m, "weight") for m in weighted_layers(G))
    z = torch.randn(4, 6)
    with torch.no_grad():
        for _ in range(5):
            G(z)
    G.eval()
    sigmas = torch.stack([top_singular_value(m) for m in weighted_layers(G)])
    torch.testing.assert_close(sigmas, torch.ones_like(sigmas), atol=1e-2, rtol=0)
