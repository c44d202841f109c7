"""Directions: SeFa's eigenvectors, GANSpace's axes, InterFaceGAN's separating normals; the
file format; edit and mix grids."""
import numpy as np
import pytest
import torch

from gankit.errors import ConfigError, DataError, GankitError, Unsupported
from gankit.use import directions as d
from gankit.nets.common import Generator
from gankit.use.generator import GeneratorHandle, GeneratorSpec
from gankit.use.mix import mix_grid, parse_layers


@pytest.mark.parametrize("net", ["dcgan", "stylegan2"])
def test_sefa_directions_are_unit_eigenvectors_of_a_t_a(make_gan, net):
    h = GeneratorHandle.from_model(make_gan(net))
    found = d.sefa(h, k=4)
    space, m = d.sefa_matrix(h)
    _, a = h.latent_weight()
    sigma = torch.linalg.svdvals(a.double())  # eigenvalues of A^T A are A's squared singular values
    assert found.space == space == ("w" if net == "stylegan2" else "z")
    for v, lam in zip(found.vectors.double(), found.scores.double()):
        assert abs(float(v.norm()) - 1) < 1e-5
        torch.testing.assert_close(m @ v, lam * v, rtol=1e-4, atol=1e-6 * float(lam))
    torch.testing.assert_close(found.scores.double(), sigma[:4] ** 2, rtol=1e-4, atol=0)


def test_pca_in_w_finds_the_axes_of_largest_variance(make_gan):
    h = GeneratorHandle.from_model(make_gan("stylegan2"))
    found = d.pca(h, k=3, n=2000)
    assert found.space == "w"
    torch.testing.assert_close(found.vectors @ found.vectors.t(), torch.eye(3), atol=1e-5, rtol=0)
    w = d._samples(h, "w", 2000, 5).cpu()  # other latents than the ones PCA saw
    along = (w @ found.vectors[0]).var()
    g = torch.Generator().manual_seed(0)
    randoms = torch.nn.functional.normalize(torch.randn(50, w.shape[1], generator=g), dim=1)
    assert along > 1.5 * (w @ randoms.t()).var(0).max()


def test_pca_in_z_agrees_with_sefa_for_a_linear_first_layer(make_gan):
    """PCA of A z over z ~ N(0, I) has the covariance A A^T; carried back to z its axes are
    A's right singular vectors, which are SeFa's: two computations, one answer."""
    h = GeneratorHandle.from_model(make_gan("resnet"))
    w = h.net.project.weight  # [out, z_dim]: give it well separated singular values 8, 4, 2, ...
    u, _, vt = torch.linalg.svd(w.detach(), full_matrices=False)
    with torch.no_grad():
        w.copy_(u @ torch.diag(2.0 ** -torch.arange(-3.0, w.shape[1] - 3)) @ vt)
    p, s = d.pca(h, k=3, n=5000), d.sefa(h, k=3)
    cos = (p.vectors * s.vectors).sum(1).abs()
    assert (cos > 0.99).all(), cos
    torch.testing.assert_close(s.vectors.abs(), vt[:3].abs(), atol=1e-4, rtol=0)


class NearlyLinearG(Generator):
    """Images ``tanh(A z)`` with a small ``A``: brightness is nearly linear in z, so a linear
    classifier on z can read it (as it reads an attribute a trained net lays out linearly)."""

    def __init__(self, z_dim=8, shape=(1, 8, 8)):
        super().__init__(z_dim, 0, shape)
        self.a = torch.nn.Linear(z_dim, 64, bias=False)
        torch.nn.init.normal_(self.a.weight, 0, 0.1, generator=torch.Generator().manual_seed(0))

    def synthesize(self, zc):
        return torch.tanh(self.a(zc)).reshape(-1, *self.out_shape)


def test_labels_direction_separates_its_classes_on_held_out_latents():
    h = GeneratorHandle(NearlyLinearG(), GeneratorSpec("test", 8, (1, 8, 8), True))
    with torch.no_grad():
        level = h.generate(400, seed=1).mean((1, 2, 3)).median()
    judge = lambda x: (x.mean((1, 2, 3)) > level).long()  # noqa: E731
    found = d.labels(h, judge, ["dark", "bright"], n=1000, seed=0)
    assert found.names == ["dark", "bright"] and (found.scores > 0.9).all(), found.scores
    z = h.sample_z(600, seed=77)  # latents the classifier never saw
    with torch.no_grad():
        y = judge(h.synthesize(z)).cpu()
    proj = (z.cpu() @ found.get("bright")[0]).numpy()
    # the share of (bright, dark) pairs the direction orders right: the AUC
    auc = (proj[y == 1][:, None] > proj[y == 0][None, :]).mean()
    assert auc > 0.95, auc
    # a random direction orders them no better than chance
    rand = torch.nn.functional.normalize(torch.randn(8, generator=torch.Generator().manual_seed(3)), dim=0)
    proj_r = (z.cpu() @ rand).numpy()
    assert abs((proj_r[y == 1][:, None] > proj_r[y == 0][None, :]).mean() - 0.5) < 0.35
    # moving along it turns dark latents bright
    bright, scale = found.get("bright")
    with torch.no_grad():
        assert judge(h.synthesize(z[y == 0] + 3 * scale * bright)).float().mean() > 0.9


def test_labels_from_the_conditions_of_a_conditional_mapping_net(make_gan):
    h = GeneratorHandle.from_model(make_gan("stylegan2", condition="label"))
    found = d.labels(h, None, [str(k) for k in range(10)], n=1000)
    assert found.space == "w" and len(found.names) == 10 and (found.scores > 0.9).all()
    with pytest.raises(GankitError, match="give a --judge"):
        d.labels(GeneratorHandle.from_model(make_gan("dcgan", condition="label")), None, ["a"], n=50)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_directions_files_round_trip_without_pickle(make_gan, tmp_path, suffix):
    found = d.sefa(GeneratorHandle.from_model(make_gan("dcgan")), k=3)
    found.meta["note"] = "x"
    back = d.Directions.load(found.save(tmp_path / f"dirs{suffix}"))
    assert back.names == found.names and back.space == "z" and back.meta == {"note": "x"}
    torch.testing.assert_close(back.vectors, found.vectors)
    torch.testing.assert_close(back.scales, found.scales)
    with pytest.raises(GankitError, match="no direction 'nope'"):
        back.get("nope")


def test_a_pickled_or_foreign_file_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npy").rename(tmp_path / "obj.npz")
    with pytest.raises(DataError, match="not a gankit directions file"):
        d.Directions.load(tmp_path / "obj.npz")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="not a gankit directions file"):
        d.Directions.load(tmp_path / "x.json")


def test_edit_grid_column_zero_is_the_unedited_sample(make_vivid_gan):
    h = GeneratorHandle.from_model(make_vivid_gan("dcgan"))
    z = h.sample_z(3, seed=4)
    v = torch.nn.functional.normalize(torch.ones(h.z_dim), dim=0)
    x = d.edit_grid(h, z, "z", None, v, 0.5, [-2.0, 0.0, 2.0])
    with torch.no_grad():
        torch.testing.assert_close(x[:, 1], h.synthesize(z).cpu())
        torch.testing.assert_close(x[:, 2], h.synthesize(z + v).cpu())
    assert d.parse_strengths("-3:3:7") == [-3, -2, -1, 0, 1, 2, 3]
    assert d.parse_seeds("0-2,7") == [0, 1, 2, 7]


def _layer_outputs(h, fn):
    """What each synthesis layer (modulated conv block) of ``h`` puts out while ``fn`` runs."""
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o)) for layer in h.net.synthesis.layers]
    try:
        fn()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize("k", [1, 3])
def test_mixing_at_layer_k_keeps_the_row_seeds_coarse_styles(make_gan, k):
    """Layers before k come from the row seed: the features they make are the row image's
    exactly; from layer k on they follow the column seed, and so does the picture's detail."""
    h = GeneratorHandle.from_model(make_gan("stylegan2", size=32))
    n, rows, cols = h.num_ws, [0, 1, 2], [100, 101]
    grid_feats = _layer_outputs(h, lambda: mix_grid(h, rows, cols, parse_layers(f"{k}-{n - 1}", n)))
    # mix_grid synthesises the mixed cells (rows x cols), then the column and the row images
    n_layers = len(h.net.synthesis.layers)
    mixed = [f.reshape(len(rows), len(cols), *f.shape[1:]) for f in grid_feats[:n_layers]]
    alone = grid_feats[2 * n_layers:]  # the row seeds' own images
    for i in range(k):  # coarse layers: the row seed's features, whatever the column
        torch.testing.assert_close(mixed[i], alone[i][:, None].expand_as(mixed[i]))
    assert not torch.allclose(mixed[k][:, 0], alone[k], atol=1e-4)
    grid = mix_grid(h, rows, cols, parse_layers(f"{k}-{n - 1}", n))
    assert torch.equal(grid[0, 0], torch.full_like(grid[0, 0], -1.0))  # the blank corner
    # every layer from the columns: each cell is its column's image
    full_cols = mix_grid(h, rows, cols, parse_layers(f"0-{n - 1}", n))
    torch.testing.assert_close(full_cols[1:, 1:], full_cols[0, 1:][None].expand(len(rows), -1, -1, -1, -1))


def test_mix_refuses_nets_without_style_layers(make_gan):
    with pytest.raises(Unsupported, match="dcgan generator has no mapping net"):
        mix_grid(GeneratorHandle.from_model(make_gan("dcgan")), [0], [1], [0])
    with pytest.raises(ConfigError, match="within 0-7"):
        parse_layers("2-8", 8)


def test_a_conditioned_direction_leaves_the_kept_coordinates_alone():
    g = torch.Generator().manual_seed(0)
    keep = torch.nn.functional.normalize(torch.randn(3, 10, generator=g), dim=1)
    v = d.conditioned(torch.nn.functional.normalize(torch.randn(10, generator=g), dim=0), keep)
    assert abs(float(v.norm()) - 1) < 1e-6
    torch.testing.assert_close(keep @ v, torch.zeros(3), atol=1e-6, rtol=0)
    with pytest.raises(GankitError, match="span"):
        d.conditioned(keep[0] + keep[1], keep)


def test_labels_from_tag_conditions_name_their_classes_in_order(make_gan):
    h = GeneratorHandle.from_model(make_gan("stylegan2", condition="text"))
    names = list(h.conditioning.class_names)
    found = d.labels(h, None, names, n=600)
    assert found.names == names and (found.scores > 0.9).all()
    # the "seven" direction points from the other classes' w towards the w of "seven"
    with torch.no_grad():
        w7 = h.mapping(h.sample_z(200, seed=9), h.conditions(200, "seven"))
        w3 = h.mapping(h.sample_z(200, seed=9), h.conditions(200, "three"))
    v = found.get("seven")[0]
    assert float((w7.cpu() @ v).mean()) > float((w3.cpu() @ v).mean())
