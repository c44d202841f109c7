"""GLO: the Laplacian pyramid, codes kept on the ball or sphere, sparse code updates, and the
Gaussian that samples come from."""
import pytest
import torch
from torch.testing import assert_close

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.models.glo import GLO, fit_gaussian, laplacian_l1, laplacian_pyramid, project_codes, reconstruct


@pytest.mark.parametrize("size,levels", [(28, 4), (32, 3), (7, 3), (28, 1)])
def test_laplacian_pyramid_reconstructs_its_input_exactly(size, levels):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pyramid = laplacian_pyramid(x, levels)
    assert len(pyramid) == levels
    assert_close(reconstruct(pyramid), x, rtol=0, atol=1e-12)


def test_laplacian_pyramid_shapes_and_band_pass():
    pyramid = laplacian_pyramid(torch.full((1, 1, 28, 28), 0.7), 4)
    assert [p.shape[-1] for p in pyramid] == [28, 14, 7, 4]
    # a constant image has no detail: every band but the coarsest is zero
    for band in pyramid[:-1]:
        assert_close(band, torch.zeros_like(band))
    assert_close(pyramid[-1], torch.full((1, 1, 4, 4), 0.7))


def test_laplacian_l1_by_hand():
    a, b = torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)
    b[1] = 0.5  # a constant offset lives in the coarsest level only
    assert_close(laplacian_l1(a, b, levels=3), torch.tensor([0.0, 0.5]))
    assert_close(laplacian_l1(a, b, levels=3, weights=[1.0, 1.0, 4.0]), torch.tensor([0.0, 2.0]))
    c = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert_close(laplacian_l1(a, c, levels=1), c.flatten(1).mean(1))  # one level: plain L1
    with pytest.raises(ConfigError, match="one weight per level"):
        laplacian_l1(a, b, levels=3, weights=[1.0])


def test_projection_onto_ball_and_sphere():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert_close(project_codes(z, "ball"), torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert_close(project_codes(z, "sphere"), torch.tensor([[0.6, 0.8], [0.6, 0.8]]))


def test_fit_gaussian_recovers_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    chol = torch.tensor([[1.0, 0.0], [0.8, 0.5]])
    codes = torch.tensor([2.0, -1.0]) + torch.randn(20000, 2, generator=g) @ chol.T
    mean, fitted = fit_gaussian(codes)
    assert_close(mean, torch.tensor([2.0, -1.0]), rtol=0, atol=0.03)
    assert_close(fitted @ fitted.T, chol @ chol.T, rtol=0, atol=0.03)


def tiny_glo(space, latent="codes", n=40):
    cfg = load_config(None, ["model.kind=glo", "model.z_dim=3", f"model.code_space={space}",
                             f"model.latent={latent}", "model.code_lr=0.5", "G.name=mlp",
                             "G.width=16", "G.depth=1", "G.norm=none", "train.ema=0"])
    model = GLO(cfg, DataInfo("vector", (2,), name="pts", size=n))
    model.optimizers = model.configure_optimizers()
    return model


@pytest.mark.parametrize("space", ["ball", "sphere"])
def test_glo_codes_stay_inside_the_ball(space):
    model = tiny_glo(space)
    g = torch.Generator().manual_seed(0)
    x = 5.0 * torch.randn(40, 2, generator=g)  # far-away targets pull the codes outwards
    for step in range(15):
        index = torch.randperm(40, generator=g)[:8]
        model.train_phase("G", {"x": x[index], "index": index}, step)
    norms = model.codes.weight.detach().norm(dim=1)
    if space == "ball":
        assert norms.max() <= 1.0 + 1e-6
        assert norms.max() > 0.999  # the pull really reached the boundary
    else:
        assert_close(norms, torch.ones(40))
    samples = model.sample_inputs(100, torch.Generator().manual_seed(1))["z"]
    assert samples.norm(dim=1).max() <= 1.0 + 1e-6


def test_only_the_batch_codes_move():
    model = tiny_glo("ball")
    before = model.codes.weight.detach().clone()
    index = torch.tensor([3, 7, 11])
    model.train_phase("G", {"x": torch.randn(3, 2), "index": index}, 0)
    moved = (model.codes.weight.detach() != before).any(dim=1)
    assert moved.nonzero().flatten().tolist() == [3, 7, 11]


def test_gradient_origin_network_step_and_running_gaussian():
    model = tiny_glo("ball", latent="gon")
    x = torch.randn(16, 2)
    before = [p.detach().clone() for p in model.G.parameters()]
    logs = model.train_phase("G", {"x": x}, 0)
    assert torch.isfinite(logs["loss/G"])
    assert any(not torch.equal(a, p) for a, p in zip(before, model.G.parameters()))
    assert not torch.equal(model.latent_mean, torch.zeros(3))  # the sampling Gaussian follows the latents
    assert model.sample_inputs(5)["z"].shape == (5, 3)


def test_gon_refuses_batch_norm():
    cfg = load_config(None, ["model.kind=glo", "model.latent=gon", "G.norm=batch"])
    with pytest.raises(ConfigError, match="G.norm=none"):
        GLO(cfg, DataInfo("vector", (2,), name="pts", size=10))
