"""The generator handle: what each net declares, sampling identical to the model's, the
exporter's path (bare net + spec), truncation for every net, one-line refusals."""
import math

import pytest
import torch

from gankit.errors import ConfigError, Unsupported
from gankit.use.generator import GeneratorHandle, GeneratorSpec, truncated_normal


@pytest.mark.parametrize("net", ["dcgan", "resnet", "stylegan2", "mlp"])
def test_generate_matches_the_models_own_samples(make_gan, net):
    model = make_gan(net, channels=1)
    h = GeneratorHandle.from_model(model)
    ours = h.generate(6, seed=3)
    theirs = model.generate(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, h.generate(6, seed=4))


def test_conditional_generate_takes_parsed_conditions(make_gan):
    model = make_gan("dcgan", condition="label")
    h = GeneratorHandle.from_model(model)
    assert h.conditioning.kind == "labels" and h.conditioning.n_classes == 10
    c = h.conditions(4, "three")
    assert c.tolist() == [3, 3, 3, 3]
    theirs = model.generate(4, generator=torch.Generator().manual_seed(0), c=c)
    torch.testing.assert_close(h.generate(4, seed=0, c=c), theirs)


def test_declared_spaces_and_capabilities(make_gan):
    dc = GeneratorHandle.from_model(make_gan("dcgan"))
    sg = GeneratorHandle.from_model(make_gan("stylegan2"))
    assert list(dc.latent_spaces()) == ["z"] and dc.num_ws == 0 and dc.noise_inputs() == []
    net = sg.net
    assert list(sg.latent_spaces()) == ["z", "w", "w+"]
    assert sg.latent_spaces()["w+"].shape == (net.num_ws, net.w_dim)
    assert sg.num_ws == net.synthesis.num_ws == len(net.synthesis.layers) + 1
    assert len(sg.noise_inputs()) == len(net.synthesis.layers)
    d = sg.describe()
    assert d["truncation"] == "psi toward w_avg" and d["style_layers"] == net.num_ws
    assert dc.describe()["truncation"] == "z threshold"


def test_nets_without_a_mapping_net_refuse_in_their_own_words(make_gan):
    h = GeneratorHandle.from_model(make_gan("dcgan"))
    with pytest.raises(Unsupported, match="dcgan generator has no mapping net"):
        h.mapping(h.sample_z(2))
    with pytest.raises(Unsupported, match="dcgan"):
        h.synthesize(torch.zeros(2, 4, 8), space="w+")
    with pytest.raises(Unsupported, match="dcgan"):
        h.w_avg()


@pytest.mark.parametrize("model_kind", ["pix2pix", "mle"])
def test_models_without_a_latent_generator_refuse(model_kind):
    from gankit.models.base import GenerativeModel
    from gankit.models import MODELS

    cls = MODELS.get(model_kind)
    fake = GenerativeModel.__new__(cls)  # the declaration is on the class: no nets needed
    with pytest.raises(Unsupported, match=f"model kind '{model_kind}' is"):
        cls.latent_generator(fake)


def test_a_bare_net_and_its_spec_rebuild_the_same_generator(make_gan):
    """The exporter's path: a net rebuilt from saved config + weights, wrapped with its spec."""
    model = make_gan("stylegan2", condition="label")
    h = GeneratorHandle.from_model(model)
    spec = GeneratorSpec.from_dict(h.spec.to_dict())
    assert spec == h.spec
    twin = make_gan("stylegan2", condition="label")
    twin.G.load_state_dict(model.G.state_dict())
    rebuilt = GeneratorHandle(twin.G, spec)  # no model, no ConditionSpace given
    c = rebuilt.conditions(3, "seven")
    torch.testing.assert_close(rebuilt.generate(3, seed=1, c=c), h.generate(3, seed=1, c=c))
    with pytest.raises(ConfigError, match="not a generator spec"):
        GeneratorSpec.from_dict({"net": "dcgan"})


@pytest.mark.parametrize("net", ["dcgan", "resnet", "mlp", "stylegan2"])
def test_latent_weight_is_the_linear_part_of_the_first_layer(make_gan, net):
    """``A @ latent`` is what the latent adds to the first layer's output (SeFa's premise)."""
    h = GeneratorHandle.from_model(make_gan(net, channels=1))
    space, a = h.latent_weight()
    n = h.net
    lat = torch.randn(3, a.shape[1])
    with torch.no_grad():
        if net == "dcgan":
            first = lambda v: n.net[0](v[:, :, None, None]).flatten(1)
        elif net == "resnet":
            first = n.project
        elif net == "mlp":
            first = n.net[0]
        else:  # every style affine of the synthesis net, stacked
            affines = [m.affine for m in n.synthesis.modules() if hasattr(m, "affine")]
            first = lambda v: torch.cat([f(v) for f in affines], 1)
        got = first(lat) - first(torch.zeros_like(lat))
    assert space == ("w" if net == "stylegan2" else "z")
    torch.testing.assert_close(got, lat @ a.t(), rtol=1e-4, atol=1e-5)


# ---- truncation ------------------------------------------------------------------------------
def test_truncated_normal_keeps_inside_entries_and_stays_within_the_threshold():
    plain = truncated_normal(500, 16, None, torch.Generator().manual_seed(7))
    cut = truncated_normal(500, 16, 0.8, torch.Generator().manual_seed(7))
    again = truncated_normal(500, 16, 0.8, torch.Generator().manual_seed(7))
    assert cut.abs().max() <= 0.8 and torch.equal(cut, again)
    inside = plain.abs() <= 0.8
    assert torch.equal(cut[inside], plain[inside])
    assert not torch.equal(cut[~inside], plain[~inside].clamp(-0.8, 0.8))


def test_truncated_normal_has_the_truncated_distributions_variance():
    t = 1.0
    z = truncated_normal(200_000, 1, t, torch.Generator().manual_seed(0))
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(t / math.sqrt(2))  # P(|z| <= t)
    expected = 1 - 2 * t * phi / mass  # 0.2911 for t = 1
    assert abs(float(z.var()) - expected) < 0.005 and abs(float(z.mean())) < 0.005
    # a uniform draw over [-t, t] would have variance t^2 / 3 = 0.333: the shape is normal
    assert abs(float(z.var()) - t * t / 3) > 0.03
    with pytest.raises(ConfigError, match="> 0"):
        truncated_normal(2, 2, 0.0)


def test_psi_pulls_w_towards_w_avg(make_gan):
    h = GeneratorHandle.from_model(make_gan("stylegan2"))
    h.net.mapping.w_avg.copy_(torch.linspace(-1, 1, h.net.w_dim))
    z = h.sample_z(4, seed=2)
    with torch.no_grad():
        w, w0, w_half = h.mapping(z), h.mapping(z, truncation=0.0), h.mapping(z, truncation=0.5)
    avg = h.w_avg()
    torch.testing.assert_close(w0, avg.expand_as(w0))
    torch.testing.assert_close(w_half, (w + avg) / 2)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        h.draw(2, truncation=1.5)


def test_truncation_for_nets_without_a_mapping_net(make_gan):
    h = GeneratorHandle.from_model(make_gan("dcgan"))
    z = h.draw(64, seed=5, truncation=0.5)
    assert z.abs().max() <= 0.5 and torch.equal(z, h.draw(64, seed=5, truncation=0.5))
    x = h.generate(8, seed=5, truncation=0.05)
    spread_cut = x.std(0).mean()
    spread = h.generate(8, seed=5).std(0).mean()
    assert spread_cut < 0.5 * spread  # less variety: the point of truncation
    with pytest.raises(ConfigError, match="threshold > 0"):
        h.draw(2, truncation=0.0)


def test_the_handle_leaves_a_training_net_in_training_mode(make_gan):
    model = make_gan("stylegan2").train()
    h = GeneratorHandle.from_model(model, use_ema=False)
    avg = model.G.mapping.w_avg.clone()
    a, b = h.generate(2, seed=0), h.generate(2, seed=0)
    assert torch.equal(a, b)  # eval mode inside: fixed noise maps
    assert model.G.training and torch.equal(model.G.mapping.w_avg, avg)  # no w_avg update
