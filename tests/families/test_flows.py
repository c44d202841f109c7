"""RealNVP: log-determinants against autograd, exact inverses, a density that integrates to 1."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.nets.flow_nets import (
    AffineCoupling,
    ConvCouplingNet,
    MLPCouplingNet,
    MultiScaleFlow,
    Squeeze,
    VectorFlow,
    channel_mask,
    checkerboard_mask,
    vector_mask,
)
from gankit.models.likelihood import standard_normal_log_prob


def randomise(module, std=0.3, seed=0):
    """Move every parameter off its identity initialisation, so couplings do something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def autograd_log_det(layer, x):
    """log|det J| of ``layer`` at one item ``x`` (any shape), from autograd's full Jacobian."""
    def flat(v):
        out = layer(v.view(1, *x.shape))
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(-1)

    jac = torch.autograd.functional.jacobian(flat, x.reshape(-1))
    return torch.linalg.slogdet(jac)[1]


def check_log_det(layer, x):
    _, log_det = layer(x)
    expected = torch.stack([autograd_log_det(layer, item) for item in x])
    assert_close(log_det, expected, rtol=1e-6, atol=1e-7)
    assert expected.abs().max() > 0.01  # the check means something only for a non-volume-preserving map


@pytest.mark.parametrize("dim,parity", [(2, 0), (2, 1), (5, 0), (5, 1)])
def test_vector_coupling_log_det_matches_autograd(dim, parity):
    layer = randomise(AffineCoupling(vector_mask(dim, parity), MLPCouplingNet(dim, 0, 8, 2))).double()
    check_log_det(layer, torch.randn(3, dim, dtype=torch.float64))


@pytest.mark.parametrize("mask", [checkerboard_mask(2, 4, 4, 0), checkerboard_mask(2, 4, 4, 1),
                                  channel_mask(2, 4, 4, 0), channel_mask(4, 3, 3, 1)])
def test_image_coupling_log_det_matches_autograd(mask):
    layer = randomise(AffineCoupling(mask, ConvCouplingNet(mask.shape[1], 0, 4, 1)), std=0.1).double()
    check_log_det(layer, torch.randn(2, *mask.shape[1:], dtype=torch.float64))


def test_squeeze_is_volume_preserving_and_inverts():
    x = torch.randn(2, 3, 4, 6)
    y, log_det = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    assert_close(log_det, torch.zeros(2))
    assert torch.equal(Squeeze().inverse(y), x)
    assert_close(autograd_log_det(Squeeze(), x[0].double()), torch.tensor(0.0, dtype=torch.float64))


def test_whole_multiscale_flow_log_det_matches_autograd():
    flow = randomise(MultiScaleFlow((1, 4, 4), n_scales=2, width=4, blocks=1), std=0.1).double()
    check_log_det(flow, torch.randn(2, 1, 4, 4, dtype=torch.float64))


@pytest.mark.parametrize("shape,n_scales", [((1, 28, 28), 2), ((1, 8, 8), 3), ((3, 8, 8), 1)])
def test_multiscale_inverse_of_forward_is_the_identity(shape, n_scales):
    torch.manual_seed(1)
    flow = randomise(MultiScaleFlow(shape, n_scales, width=8, blocks=1), std=0.05)
    x = torch.randn(4, *shape)
    z, _ = flow(x)
    assert z.shape == (4, math.prod(shape))
    assert_close(flow.inverse(z), x, rtol=0, atol=1e-5)
    # and the other way round, from the latent
    assert_close(flow(flow.inverse(z))[0], z, rtol=0, atol=1e-5)


def test_vector_flow_inverse_of_forward_is_the_identity():
    flow = randomise(VectorFlow(2, n_couplings=6, width=16, depth=2))
    x = torch.randn(64, 2)
    assert_close(flow.inverse(flow(x)[0]), x, rtol=0, atol=1e-5)


def test_multiscale_factored_latent_order():
    """Factored-out channels go to the front of the latent in the order they leave."""
    flow = MultiScaleFlow((1, 8, 8), n_scales=3, width=4, blocks=1)
    assert flow.kept_channels == [2, 4]
    assert flow._latent_shapes() == [(2, 4, 4), (4, 2, 2), (4, 2, 2)]


def test_a_2d_flow_density_integrates_to_one():
    flow = randomise(VectorFlow(2, n_couplings=4, width=16, depth=2), std=0.2, seed=3).double()
    side = torch.linspace(-9, 9, 601, dtype=torch.float64)
    gx, gy = torch.meshgrid(side, side, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        z, log_det = flow(grid)
        density = (standard_normal_log_prob(z).sum(1) + log_det).exp()
    cell = (side[1] - side[0]) ** 2
    assert_close((density * cell).sum(), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=5e-3)
    # the flow did warp the Gaussian: its density is not the base density
    base = standard_normal_log_prob(grid).sum(1).exp()
    assert (density - base).abs().max() > 0.01
