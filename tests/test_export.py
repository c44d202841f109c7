"""gankit export: safetensors files that load without the run folder and sample the same
images, and ONNX graphs checked by onnxruntime, for every image generator family."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("safetensors")
ort = pytest.importorskip("onnxruntime")

from gankit import export  # noqa: E402
from gankit.api import LoadedRun, load_generator, load_run  # noqa: E402
from gankit.cli import main  # noqa: E402
from gankit.config import load_config  # noqa: E402
from gankit.data.conditions import build_vocab  # noqa: E402
from gankit.data.info import DataInfo  # noqa: E402
from gankit.errors import CheckpointError, GankitError  # noqa: E402
from gankit.models import MODELS  # noqa: E402

TAGS = ["red_hair blue_eyes", "smile", "red_hair"]
GAN = ["G.width=4", "D.width=4", "model.z_dim=8"]
# family -> (preset, overrides, data info, ONNX input names of each graph)
FAMILIES = {
    "dcgan": (None, GAN + ["G.name=dcgan", "D.name=dcgan"], DataInfo("image", (3, 32, 32)), [["z"]]),
    "resnet_sn": (None, GAN + ["G.name=resnet", "G.depth=1", "G.spectral_norm=true", "D.name=resnet"],
                  DataInfo("image", (3, 32, 32)), [["z"]]),
    "stylegan2": (None, ["G.name=stylegan2", "G.width=8", "G.depth=2", "D.name=stylegan2", "D.width=8",
                         "model.z_dim=8"], DataInfo("image", (3, 16, 16)), [["z", "psi"]]),
    "cgan_labels": (None, GAN + ["G.name=dcgan", "D.name=dcgan", "data.condition=label"],
                    DataInfo("image", (1, 32, 32), num_classes=3, class_names=["a", "b", "c"]),
                    [["z", "labels"]]),
    "cgan_tags": (None, GAN + ["G.name=dcgan", "D.name=dcgan", "data.condition=text", "data.max_len=4"],
                  DataInfo("image", (1, 32, 32), num_classes=3, class_names=TAGS, vocab=build_vocab(TAGS)),
                  [["z", "tags"]]),
    "pix2pix": (None, ["model.kind=pix2pix", "data.layout=ab", "data.image_size=16", "G.width=4",
                       "G.depth=2", "D.width=4", "D.depth=1"], DataInfo("paired", (1, 16, 16)), [["image"]]),
    "cyclegan": ("cyclegan_digits", ["data.layout=unpaired", "data.image_size=16", "G.width=4", "G.depth=1",
                                     "D.width=4", "D.depth=1"], DataInfo("unpaired", (1, 16, 16)),
                 [["image"], ["image"]]),
    "vae": ("mnist_vae", ["model.z_dim=4", "G.width=4"], DataInfo("image", (1, 28, 28)), [["z"]]),
    "flow": ("mnist_realnvp", ["G.width=4", "model.n_scales=2"], DataInfo("image", (1, 8, 8)), [["z"]]),
}


def tiny_run(family, tmp_path):
    """A model of ``family`` whose EMA copies differ from its live nets."""
    preset, overrides, info, _ = FAMILIES[family]
    cfg = load_config(preset, overrides + ["train.ema=0.9"])
    torch.manual_seed(0)
    model = MODELS.get(cfg.model.kind)(cfg, info)
    model.setup_ema()
    with torch.no_grad():
        for name in model.ema_targets():
            for p in model.net(name, use_ema=False).parameters():
                p.add_(0.05 * torch.randn_like(p))  # live != EMA
    return LoadedRun(model.eval(), cfg, info, tmp_path, 7)


def samples(run, live=False):
    """What the run draws: a seeded batch, or for translators fixed inputs translated."""
    model = run.model
    if run.info.kind in ("paired", "unpaired"):
        a = torch.rand(3, *run.info.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
        return model.decode({"a": a}, use_ema=not live)
    return model.generate(5, generator=torch.Generator().manual_seed(3), use_ema=not live)


@pytest.mark.parametrize("family", FAMILIES)
def test_safetensors_loads_without_the_run_and_samples_bit_identically(family, tmp_path):
    run = tiny_run(family, tmp_path)
    path = export.save_safetensors(run, tmp_path / "g.safetensors")
    loaded = load_run(path)  # what gankit sample and gankit translate read
    assert loaded.step == 7 and not loaded.model.ema_nets  # the exported weights are its only ones
    assert torch.equal(samples(loaded), samples(run))
    assert not torch.equal(samples(run, live=True), samples(run))  # so EMA was really chosen
    live = load_run(export.save_safetensors(run, tmp_path / "live.safetensors", live=True))
    assert torch.equal(samples(live), samples(run, live=True))


def test_metadata_says_what_a_loader_needs(tmp_path):
    from safetensors import safe_open

    run = tiny_run("stylegan2", tmp_path)
    path = export.save_safetensors(run, tmp_path / "g.safetensors")
    with safe_open(str(path), "pt") as f:
        meta, w_avg = f.metadata(), f.get_tensor("G.mapping.w_avg")
    facts = json.loads(meta["generator"])
    assert (meta["format"], meta["weights"], meta["kind"]) == ("gankit-generator", "ema", "gan")
    assert facts["net"] == "stylegan2" and facts["z_dim"] == 8 and facts["out_shape"] == [3, 16, 16]
    assert facts["w_avg"] == "G.mapping.w_avg" and facts["truncation"] == "psi toward w_avg"
    assert facts["latent_spaces"]["w+"]["shape"] == [run.model.net("G").num_ws, run.model.net("G").w_dim]
    assert torch.equal(w_avg, run.model.net("G").mapping.w_avg)
    assert json.loads(meta["config"])["G"]["name"] == "stylegan2"
    run = tiny_run("cgan_tags", tmp_path)
    facts = export.generator_facts(run.model)
    assert facts["conditioning"]["kind"] == "tags" and facts["conditioning"]["class_names"] == TAGS
    assert "w_avg" not in facts and facts["latent_spaces"] == {"z": {"name": "z", "shape": [8], "prior": "normal"}}
    translator = export.generator_facts(tiny_run("cyclegan", tmp_path).model)
    assert translator["conditioning"] == {"kind": "image"} and "latent_spaces" not in translator
    assert export.generator_facts(tiny_run("vae", tmp_path).model)["latent_spaces"]["z"]["shape"] == [4]
    assert export.generator_facts(tiny_run("flow", tmp_path).model)["latent_spaces"]["z"]["shape"] == [64]


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_matches_torch_with_named_inputs_and_a_dynamic_batch(family, tmp_path):
    run = tiny_run(family, tmp_path)
    results = export.save_onnx(run, tmp_path / "g.onnx")
    graphs = export.EXPORTS.get(run.model.kind).graphs(run.model, True)
    assert [[i.name for i in ort.InferenceSession(str(r.path)).get_inputs()] for r in results] == FAMILIES[family][3]
    for result, graph in zip(results, graphs):
        assert result.max_diff <= export.TOLERANCE and result.size == result.path.stat().st_size
        inputs = graph.make_inputs(5)  # another batch size than the export's and the check's
        session = ort.InferenceSession(str(result.path))
        got = torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
        with torch.no_grad():
            expected = (graph.reference or graph.module)(*inputs.values())
        assert got.shape[0] == 5
        torch.testing.assert_close(got, expected, rtol=0, atol=export.TOLERANCE)
    if family == "cyclegan":  # both directions, named as the data's sides
        assert sorted(r.path.name for r in results) == ["g_AtoB.onnx", "g_BtoA.onnx"]
        a = graphs[0].make_inputs(2)["image"]
        outs = [ort.InferenceSession(str(r.path)).run(None, {"image": a.numpy()})[0] for r in results]
        G = run.model.net("G")
        torch.testing.assert_close(torch.from_numpy(outs[0]), G["AB"](a), rtol=0, atol=1e-4)
        torch.testing.assert_close(torch.from_numpy(outs[1]), G["BA"](a), rtol=0, atol=1e-4)


def test_onnx_psi_truncates_towards_w_avg(tmp_path):
    run = tiny_run("stylegan2", tmp_path)
    G = run.model.net("G")
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    (result,) = export.save_onnx(run, tmp_path / "g.onnx")
    session = ort.InferenceSession(str(result.path))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    at = lambda psi: session.run(None, {"z": z.numpy(), "psi": np.array([psi], np.float32)})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(at(1.0)), G(z), rtol=0, atol=1e-4)  # psi 1: none
        w_avg_image = G.synthesize_ws(G.mapping.w_avg.expand(1, G.num_ws, -1))
    collapsed = torch.from_numpy(at(0.0))  # psi 0: every z gives the image of w_avg
    torch.testing.assert_close(collapsed, w_avg_image.expand(4, -1, -1, -1), rtol=0, atol=1e-4)
    G.psi = 0.5  # the torch net's own truncation agrees with the graph's psi input
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(at(0.5)), G(z), rtol=0, atol=1e-4)


def test_refusals_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    run = tiny_run("dcgan", tmp_path)
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    with pytest.raises(GankitError, match=r"differs from torch by .* export refused, nothing written"):
        export.save_onnx(run, tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a gankit export"):
        load_run(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_run(tmp_path / "junk.safetensors")
    cfg = load_config("mnist_glo", ["G.width=4", "model.z_dim=4"])
    glo = MODELS.get("glo")(cfg, DataInfo("image", (1, 28, 28), size=8))
    with pytest.raises(GankitError, match="model kind 'glo' has no export .*exportable kinds: cyclegan, flow, gan, pix2pix, vae"):
        export.save_safetensors(LoadedRun(glo, cfg, glo.info, tmp_path, 0), tmp_path / "x.safetensors")


def test_a_missing_package_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find(name))
    with pytest.raises(GankitError, match=r"gankit export needs onnxruntime: pip install 'gankit\[export\]'"):
        export.save_onnx(tiny_run("dcgan", tmp_path), tmp_path / "g.onnx")


def test_cli_export_then_sample_like_the_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(run_dir), "data.image_size=8",
                 "data.channels=1", "data.batch_size=8", "model.z_dim=4", "G.name=mlp", "G.width=8",
                 "G.depth=1", "D.name=mlp", "D.width=8", "D.depth=1", "train.steps=3",
                 "train.sample_every=0", "train.progress=false", "train.ema=0.5", "eval.every=0",
                 "eval.metrics=[]"]) == 0
    assert main(["export", str(run_dir), "--format", "safetensors", "--out", str(tmp_path / "g.safetensors")]) == 0
    assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'g.safetensors'}" in out and "max abs difference" in out
    assert (run_dir / "generator.onnx").is_file()
    for source, folder in ((run_dir, "from_run"), (tmp_path / "g.safetensors", "from_file")):
        assert main(["sample", str(source), "--n", "6", "--out", str(tmp_path / folder)]) == 0
    pictures = [[np.array(Image.open(tmp_path / f / f"{i:05d}.png")) for i in range(1, 7)]
                for f in ("from_run", "from_file")]
    assert all(np.array_equal(a, b) for a, b in zip(*pictures))
    assert main(["export", str(tmp_path / "g.safetensors"), "--format", "onnx"]) == 0  # from the file
    assert (tmp_path / "generator.onnx").is_file()
    assert main(["export", str(tmp_path / "g.safetensors"), "--format", "bin"]) == 2  # argparse, one line


def test_load_generator_gives_the_handle_of_the_exported_net(tmp_path):
    run = tiny_run("stylegan2", tmp_path)
    path = export.save_safetensors(run, tmp_path / "g.safetensors")
    handle, original = load_generator(path), run.generator()
    assert handle.describe() == original.describe()
    for psi in (None, 0.6):  # truncation towards the exported w_avg, as in the run
        assert torch.equal(handle.generate(4, seed=2, truncation=psi), original.generate(4, seed=2, truncation=psi))
