"""Projection recovers images the generator can make, in z and in w+; its pieces by hand."""
import math

import pytest
import torch

from gankit.errors import ConfigError, Unsupported
from gankit.use.generator import GeneratorHandle
from gankit.use.project import ProjectionSettings, noise_regulariser, project, psnr


def test_psnr_by_hand():
    a = torch.zeros(2, 1, 4, 4)
    b = a.clone()
    b[0] += 0.2  # mse 0.04 on a range of 2: 10 log10(4 / 0.04) = 20 dB
    b[1, :, :2] += 1.0  # half the pixels off by 1: mse 0.5 -> 10 log10(8) = 9.03 dB
    torch.testing.assert_close(psnr(b, a), torch.tensor([20.0, 10 * math.log10(8)]))


def test_noise_regulariser_is_zero_for_white_noise_and_not_for_smooth_maps():
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(4, 1, 64, 64, generator=g), torch.randn(64, 1, 8, 8, generator=g)]
    ones = [torch.ones(1, 1, 16, 16)]  # autocorrelation 1 across and down, at 16 and 8 px
    # each term is the square of a mean of N products, about 1/N for white noise (N >= 4096)
    assert float(noise_regulariser(white)) < 5e-3
    assert float(noise_regulariser(ones)) == pytest.approx(4.0)


@pytest.mark.parametrize("net,space,steps", [("dcgan", "z", 300), ("stylegan2", "w+", 300)])
def test_projecting_a_sample_recovers_it(make_vivid_gan, net, space, steps):
    model = make_vivid_gan(net, channels=1)
    h = GeneratorHandle.from_model(model)
    targets = h.generate(3, seed=11)
    before = psnr(h.generate(3, seed=12), targets)
    p = project(h, targets, settings=ProjectionSettings(steps=steps, space="auto"), seeds=[0, 1, 2])
    assert p.space == space and p.latents.shape[0] == 3
    assert (p.psnr > 25).all(), p.psnr
    assert (p.psnr > before + 5).all()
    assert p.strip.shape == (3, 8, *targets.shape[1:])
    # the latents (and noise maps) reproduce the reconstruction
    with torch.no_grad():
        if p.noise:
            h.net.set_noise_inputs(p.noise)
        again = h.synthesize(p.latents, None, p.space).cpu()
    torch.testing.assert_close(again, p.images, atol=1e-4, rtol=0)
    assert len(p.noise) == (len(h.net.synthesis.layers) if net == "stylegan2" else 0)


def test_projection_is_seeded_and_refuses_spaces_the_net_lacks(make_gan):
    h = GeneratorHandle.from_model(make_gan("dcgan", channels=1))
    targets = h.generate(2, seed=3)
    s = ProjectionSettings(steps=5)
    a, b = project(h, targets, settings=s, seeds=[4, 5]), project(h, targets, settings=s, seeds=[4, 5])
    assert torch.equal(a.latents, b.latents)
    with pytest.raises(Unsupported, match="dcgan generator has no mapping net"):
        project(h, targets, settings=ProjectionSettings(steps=5, space="w"))
    with pytest.raises(ConfigError, match="cannot be projected"):
        project(h, torch.zeros(1, 3, 8, 8), settings=s)
