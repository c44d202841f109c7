"""The studio's server side through Starlette's TestClient: what each route draws is what the
command line writes, controls follow the run's declared capabilities, and the security
rules hold (runs not served, oversized, non-image and corrupt uploads, other host names)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from gankit.api import load_run  # noqa: E402
from gankit.cli import main  # noqa: E402
from gankit.data.folders import load_image  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.studio.app import create_app  # noqa: E402
from gankit.studio.core import Studio, decode_upload, load_directions, served_runs  # noqa: E402
from gankit.use.directions import Directions  # noqa: E402
from gankit.use.project import ProjectionSettings, discriminator_features, project  # noqa: E402
from gankit.viz import to_uint8  # noqa: E402


@pytest.fixture(scope="module")
def client(runs, sefa_file):
    return TestClient(create_app(Studio(served_runs(list(runs.values())), max_upload=64 * 1024,
                                        directions=load_directions([sefa_file]))))


def pixels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_runs_listed_with_the_controls_they_declare(client, runs):
    listing = client.get("/api/runs").json()
    assert [r["key"] for r in listing] == list(runs)
    caps = {k: client.get("/api/run", params={"run": k}).json()["caps"] for k in runs}
    # the tag run: a tag box offering its vocabulary, a z threshold (DCGAN: no mapping net)
    handle = load_run(runs["tags"]).generator()
    assert caps["tags"]["condition"] == {"kind": "tags", "choices": list(handle.conditioning.vocab[2:])}
    assert caps["tags"]["truncation"]["kind"] == "threshold" and not handle.has_mapping
    # StyleGAN2-style: psi toward w_avg, no condition box
    assert caps["style"]["truncation"]["kind"] == "psi" and "condition" not in caps["style"]
    assert {"samples", "interpolate", "project"} <= caps["style"].keys() & caps["tags"].keys()
    # points draw a scatter, never a grid, a walk or a projection; pix2pix only translates
    assert "scatter" in caps["toy"] and not {"samples", "interpolate", "project"} & caps["toy"].keys()
    assert set(caps["p2p"]) == {"translate"}


@pytest.mark.parametrize("run,args", [("style", {"seed": 3}), ("style", {"seed": 5, "truncation": 0.8}),
                                      ("tags", {"seed": 3, "cond": "blue_eyes long_hair", "truncation": 1.5})])
def test_a_grid_is_what_gankit_sample_writes(client, runs, tmp_path, run, args):
    cli = ["sample", str(runs[run]), "--n", "6", "--grid", "--out", str(tmp_path / "g.png"),
           "--seed", str(args["seed"])]
    cli += ["--cond", args["cond"]] if "cond" in args else []
    cli += ["--truncation", str(args["truncation"])] if "truncation" in args else []
    assert main(cli) == 0
    page = pixels(client.get("/api/samples.png", params={"run": run, "n": 6, **args}))
    np.testing.assert_array_equal(page, np.asarray(Image.open(tmp_path / "g.png")))


def test_a_grid_smaller_than_the_classes_is_square(client, runs):
    assert load_run(runs["tags"]).model.space.num_classes > 6  # tag sets: more than the grid holds
    page = pixels(client.get("/api/samples.png", params={"run": "tags", "n": 6}))
    assert page.shape[:2] == (2 + 2 * (32 + 2), 2 + 3 * (32 + 2))  # 2 rows of 3, no label row


def test_seed_truncation_and_tags_change_the_picture(client):
    base = {"run": "tags", "n": 4, "seed": 0}
    first = pixels(client.get("/api/samples.png", params=base))
    np.testing.assert_array_equal(first, pixels(client.get("/api/samples.png", params=base)))
    for change in ({"seed": 1}, {"truncation": 0.3}, {"cond": "red_hair"}):
        assert not np.array_equal(first, pixels(client.get("/api/samples.png", params={**base, **change}))), change
    # the slider's top is "no truncation": the same picture as none given
    top = pixels(client.get("/api/samples.png", params={**base, "truncation": 3.0}))
    np.testing.assert_array_equal(first, top)


def test_the_walk_ends_at_both_seeds_and_animates(client):
    one = {"run": "style", "n": 1, "truncation": 0.7}
    ends = [pixels(client.get("/api/samples.png", params={**one, "seed": s})) for s in (4, 9)]
    walk = {"run": "style", "seed": 4, "seed2": 9, "truncation": 0.7}
    at = {t: pixels(client.get("/api/interpolation.png", params={**walk, "t": t})) for t in (0, 0.5, 1)}
    # the grid of one image has a 2-px white frame; the walk's picture has none
    np.testing.assert_array_equal(at[0], ends[0][2:-2, 2:-2])
    np.testing.assert_array_equal(at[1], ends[1][2:-2, 2:-2])
    assert not np.array_equal(at[0.5], at[0]) and not np.array_equal(at[0.5], at[1])
    gif = Image.open(io.BytesIO(client.get("/api/interpolation.gif", params={**walk, "frames": 5}).content))
    assert gif.n_frames == 5 + 3  # forth, then back without repeating the ends
    # GIF quantises colours: the first frame is the walk's start to within the palette
    first = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(first - at[0].astype(int)).mean() < 8


def test_toy_scatter_and_refusals_of_controls_a_run_lacks(client):
    a = pixels(client.get("/api/scatter.png", params={"run": "toy", "n": 300, "seed": 0}))
    b = pixels(client.get("/api/scatter.png", params={"run": "toy", "n": 300, "seed": 1}))
    assert a.shape == b.shape and not np.array_equal(a, b)
    for url, params, words in [("/api/samples.png", {"run": "toy"}, "points, not images"),
                               ("/api/samples.png", {"run": "style", "cond": "red_hair"}, "unconditional"),
                               ("/api/interpolation.png", {"run": "p2p"}, "no latent generator"),
                               ("/api/samples.png", {"run": "tags", "cond": "smile"}, "unknown word"),
                               ("/api/samples.png", {"run": "tags", "seed": "x"}, "seed must be an integer"),
                               ("/api/samples.png", {"run": "tags", "n": 65}, "at most 64")]:
        r = client.get(url, params=params)
        assert r.status_code == 400 and words in r.json()["error"], (url, params, r.text)


def test_a_translation_is_what_gankit_translate_writes(client, runs, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(source / "x.png")
    assert main(["translate", str(runs["p2p"]), "--input", str(source), "--out", str(tmp_path / "out")]) == 0
    page = pixels(client.post("/api/translate", params={"run": "p2p"}, content=(source / "x.png").read_bytes()))
    written = np.asarray(Image.open(tmp_path / "out" / "x.png"))
    x = to_uint8(load_image(source / "x.png", 16, 1)[None])[0, ..., 0]
    # [input | output], side by side at the run's 16 px
    np.testing.assert_array_equal(page, np.concatenate([x, written], 1))


def test_an_upload_is_projected_and_edited(client, runs, sefa_file):
    run = load_run(runs["style"])
    handle = run.generator()
    target = handle.generate(1, seed=11, truncation=0.5)  # an image the generator can draw
    upload = png(to_uint8(target)[0])
    r = client.post("/api/project", params={"run": "style", "steps": 100, "seed": 2}, content=upload)
    page = pixels(r)
    x = load_image(io.BytesIO(upload), 16, 3)[None]
    p = project(handle, x, None, ProjectionSettings(steps=100, optimise_noise=False),
                discriminator_features(run.model.D), seeds=[2])
    # [upload as the run sees it | reconstruction], and the PSNR of that reconstruction
    np.testing.assert_array_equal(page, np.concatenate([to_uint8(x)[0], to_uint8(p.images)[0]], 1))
    assert float(r.headers["X-PSNR"]) == pytest.approx(float(p.psnr[0]), abs=0.01)
    assert float(r.headers["X-PSNR"]) > 20  # an image the generator drew is found again
    # the kept latent, unedited, is the reconstruction; an edit slider moves it
    pid = r.headers["X-Projection"]
    kept = pixels(client.get("/api/projection.png", params={"run": "style", "id": pid}))
    np.testing.assert_array_equal(kept, to_uint8(p.images)[0])
    name = Directions.load(sefa_file).names[0]
    moved = pixels(client.get("/api/projection.png", params={"run": "style", "id": pid,
                                                              "edit": f"style_sefa.npz:{name}:3"}))
    assert np.abs(moved.astype(int) - kept.astype(int)).mean() > 1
    gone = client.get("/api/projection.png", params={"run": "style", "id": "0123"})
    assert gone.status_code == 400 and "no longer kept" in gone.json()["error"]
    refused = client.post("/api/project", params={"run": "style", "steps": 7}, content=upload)
    assert refused.status_code == 400 and "projection steps are one of" in refused.json()["error"]
    assert client.post("/api/project", params={"run": "p2p"}, content=upload).status_code == 400


def test_edit_sliders_are_gankit_edit(client, runs, sefa_file, tmp_path):
    dirs = Directions.load(sefa_file)
    caps = {k: client.get("/api/run", params={"run": k}).json()["caps"] for k in ("style", "tags")}
    assert caps["style"]["edit"]["sets"] == [{"set": "style_sefa.npz", "method": "sefa", "space": "w",
                                               "names": dirs.names}]
    assert "edit" not in caps["tags"]  # a w set does not fit a DCGAN's z
    name = dirs.names[1]
    out = tmp_path / "edit.png"
    assert main(["edit", str(runs["style"]), "--directions", str(sefa_file), "--name", name, "--strength", "2",
                 "--seeds", "5", "--truncation", "0.7", "--out", str(out)]) == 0
    params = {"run": "style", "n": 1, "seed": 5, "truncation": 0.7}
    page = pixels(client.get("/api/samples.png", params={**params, "edit": f"style_sefa.npz:{name}:2"}))
    np.testing.assert_array_equal(page, np.asarray(Image.open(out)))
    # two sliders add up: +2 along one and -1 along another is not the first alone
    both = pixels(client.get("/api/samples.png", params={**params, "edit": [f"style_sefa.npz:{name}:2",
                                                                            f"style_sefa.npz:{dirs.names[0]}:-1"]}))
    assert not np.array_equal(both, page)
    for edit, status, words in [("style_sefa.npz:nope:1", 400, "no direction 'nope'"),
                                (f"style_sefa.npz:{name}:9", 400, "between -5"),
                                (f"other.npz:{name}:1", 404, "not one of the direction sets"),
                                (f"style_sefa.npz:{name}:x", 400, "SET:NAME:STRENGTH")]:
        r = client.get("/api/samples.png", params={**params, "edit": edit})
        assert r.status_code == status and words in r.json()["error"], (edit, r.text)


def test_an_exported_generator_is_served_like_its_run(runs, tmp_path):
    pytest.importorskip("safetensors")
    exported = tmp_path / "style.safetensors"
    assert main(["export", str(runs["style"]), "--format", "safetensors", "--out", str(exported)]) == 0
    c = TestClient(create_app(Studio(served_runs([runs["style"], exported]))))
    listing = {r["key"]: r for r in c.get("/api/runs").json()}
    assert listing["style.safetensors"]["state"] == "exported" and listing["style"]["state"] == "finished"
    info = c.get("/api/run", params={"run": "style.safetensors"}).json()
    assert info["caps"]["truncation"]["kind"] == "psi" and "samples" in info["caps"]
    for params in ({"seed": 3, "n": 4}, {"seed": 3, "n": 4, "truncation": 0.6}):
        from_run = pixels(c.get("/api/samples.png", params={"run": "style", **params}))
        np.testing.assert_array_equal(from_run, pixels(c.get("/api/samples.png", params={"run": "style.safetensors", **params})))
    with pytest.raises(GankitError, match="does not exist"):
        served_runs([tmp_path / "missing.safetensors"])


def test_runs_not_given_are_refused(client, runs, tmp_path):
    # a real run folder the studio was not given, by absolute and relative path
    outside = tmp_path / "other"
    outside.mkdir()
    for key in (str(runs["tags"]), "../tags", str(outside), "", "tags/../tags"):
        r = client.get("/api/samples.png", params={"run": key})
        assert r.status_code == 404 and "not one of the runs" in r.json()["error"], key
    r = client.post("/api/translate", params={"run": str(runs["p2p"])}, content=b"x")
    assert r.status_code == 404
    with pytest.raises(GankitError, match="not a run folder"):
        served_runs([tmp_path])
    with pytest.raises(GankitError, match="no runs under"):
        served_runs([], tmp_path)


def test_uploads_too_large_not_images_or_corrupt_get_a_message(client):
    noisy = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    big = png(noisy)
    assert len(big) > 64 * 1024  # over this studio's limit
    cases = [(big, 413, "limit is"),
             (b"#!/bin/sh\necho not an image\n", 400, "not an image"),
             (png(noisy[:40, :40])[:200], 400, "cannot be decoded"),
             (b"", 400, "empty")]
    for body, status, words in cases:
        r = client.post("/api/translate", params={"run": "p2p"}, content=body)
        assert r.status_code == status and words in r.json()["error"], (status, r.text)
    # a small file that decodes to a huge canvas is refused before it is decoded
    bomb = png(np.zeros((5000, 5000), np.uint8))
    assert len(bomb) < 64 * 1024
    r = client.post("/api/translate", params={"run": "p2p"}, content=bomb)
    assert r.status_code == 400 and "megapixels" in r.json()["error"]
    with pytest.raises(GankitError, match="limit is 0 MB"):
        decode_upload(png(noisy[:8, :8]), 16, 1, limit=10)


def test_other_host_names_are_refused(runs):
    app = create_app(Studio(served_runs([runs["toy"]])), allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1").get("/api/runs").status_code == 200
    assert TestClient(app, base_url="http://attacker.example").get("/api/runs").status_code == 400


def test_the_page_is_served_offline(client):
    page = client.get("/").text
    assets = ["/static/studio.js", "/static/studio.css"]
    assert all(a in page for a in assets)
    for a in assets:
        assert client.get(a).status_code == 200
    text = page + "".join(client.get(a).text for a in assets)
    assert "http://" not in text and "https://" not in text  # no asset from the internet


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["studio", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run folder" in err[0]
