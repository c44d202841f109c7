"""The commands that use a generator, end to end on a tiny trained run, and their refusals."""
import numpy as np
import pytest
from PIL import Image

from gankit.cli import main

TINY_DIGITS = ["data.source=digits", "G.name=mlp", "D.name=mlp", "G.width=16", "D.width=16",
               "model.z_dim=8", "data.batch_size=32", "train.steps=3", "train.log_every=3",
               "train.progress=false", "train.ema=0.9"]


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, pattern):
    lines = [line for line in err.strip().splitlines() if line]
    return code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("use") / "digits"
    assert main(["train", *TINY_DIGITS, "--out", str(run)]) == 0
    return run


def _spread(folder):
    images = np.stack([np.asarray(Image.open(f), dtype=float) for f in sorted(folder.glob("*.png"))])
    return images.std(0).mean()


def test_sample_truncates_a_net_without_a_mapping_net(digits_run, tmp_path, capsys):
    assert run_cli(["sample", digits_run, "--n", 40, "--out", tmp_path / "t", "--truncation", 0.01], capsys)[0] == 0
    assert run_cli(["sample", digits_run, "--n", 40, "--out", tmp_path / "f"], capsys)[0] == 0
    assert _spread(tmp_path / "t") < 0.1 * _spread(tmp_path / "f")  # z all near 0: one image
    code, _, err = run_cli(["sample", digits_run, "--n", 2, "--out", tmp_path / "x",
                            "--truncation", 0], capsys)
    assert one_line_error(code, err, "threshold > 0")


def test_interpolate_writes_a_looping_gif(digits_run, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    code, stdout, _ = run_cli(["interpolate", digits_run, "--gif", "--frames", 5, "--rows", 3,
                               "--out", out, "--truncation", 1.5], capsys)
    assert code == 0 and str(out) in stdout
    gif = Image.open(out)
    assert gif.n_frames == 5 + 3  # forth, then back without repeating the ends
    assert gif.size == (3 * 8, 8) and gif.info.get("loop") == 0
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("L"), dtype=float))
    assert np.abs(frames[0] - frames[4]).mean() > 0  # the ends differ
    np.testing.assert_array_equal(frames[3], frames[5])  # the way back retraces the way there


def test_project_writes_latents_and_resumes(digits_run, tmp_path, capsys):
    assert run_cli(["sample", digits_run, "--n", 3, "--out", tmp_path / "imgs", "--seed", 5], capsys)[0] == 0
    args = ["project", digits_run, tmp_path / "imgs", "--out", tmp_path / "p", "--steps", 150, "--batch", 2]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "wrote 3 projections" in out
    for name in ("00001", "00002", "00003"):
        assert np.load(tmp_path / "p" / f"{name}.npy").shape == (8,)
        assert Image.open(tmp_path / "p" / f"{name}.png").size == (8, 8)
        strip = Image.open(tmp_path / "p" / f"{name}_steps.png")
        assert strip.size == (9 * 10 + 2, 10 + 2)  # the target and 8 snapshots, 2 px apart
    summary = __import__("json").loads((tmp_path / "p" / "projection.json").read_text())
    assert min(v["psnr"] for v in summary.values()) > 25
    stamp = (tmp_path / "p" / "00002.npy").stat().st_mtime_ns
    (tmp_path / "p" / "00003.npy").unlink()  # as if stopped before the last image was done
    code, out, err = run_cli(args, capsys)
    assert code == 0 and "2 of 3 images already projected" in out
    assert (tmp_path / "p" / "00002.npy").stat().st_mtime_ns == stamp
    assert (tmp_path / "p" / "00003.npy").exists()


def test_project_refuses_w_for_a_net_without_a_mapping_net(digits_run, tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    code, _, err = run_cli(["project", digits_run, tmp_path / "a.png", "--out", tmp_path / "p",
                            "--space", "w"], capsys)
    assert one_line_error(code, err, "mlp generator has no mapping net")
    code, _, err = run_cli(["project", digits_run, tmp_path / "missing", "--out", tmp_path / "p"], capsys)
    assert one_line_error(code, err, "neither an image nor a folder")


def test_directions_and_edit_end_to_end(digits_run, tmp_path, capsys):
    code, out, _ = run_cli(["directions", digits_run, "--method", "sefa", "--k", 3,
                            "--out", tmp_path / "d.npz"], capsys)
    assert code == 0 and "3 sefa directions in z" in out
    code, out, _ = run_cli(["edit", digits_run, "--directions", tmp_path / "d.npz", "--name", "sefa0",
                            "--strength", "-2:2:5", "--seeds", "0-2", "--out", tmp_path / "e.png"], capsys)
    assert code == 0
    grid = np.asarray(Image.open(tmp_path / "e.png").convert("L"), dtype=float)
    assert grid.shape == (3 * 10 + 2, 5 * 10 + 2)
    tile = lambda r, c: grid[2 + 10 * r: 10 + 10 * r, 2 + 10 * c: 10 + 10 * c]  # noqa: E731
    assert np.abs(tile(0, 0) - tile(0, 4)).mean() > 0  # the strength changes the image
    # the middle column (strength 0) is the plain sample of each seed
    assert run_cli(["sample", digits_run, "--n", 1, "--seed", 1, "--out", tmp_path / "s"], capsys)[0] == 0
    plain = np.asarray(Image.open(tmp_path / "s" / "00001.png").convert("L"), dtype=float)
    np.testing.assert_array_equal(tile(1, 2), plain)
    # --keep removes the kept directions' components: SeFa's are orthogonal, so keeping
    # sefa1 and sefa2 (the set less the edited one) leaves the sefa0 edit as it was
    assert run_cli(["edit", digits_run, "--directions", tmp_path / "d.npz", "--name", "sefa0", "--strength",
                    "-2:2:5", "--keep", tmp_path / "d.npz", "--seeds", "0", "--out", tmp_path / "k.png"], capsys)[0] == 0
    kept = np.asarray(Image.open(tmp_path / "k.png").convert("L"), dtype=float)
    np.testing.assert_allclose(kept[2:10], grid[2:10], atol=1)
    # a projected latent is edited too
    assert run_cli(["project", digits_run, tmp_path / "s" / "00001.png", "--out", tmp_path / "p",
                    "--steps", 20], capsys)[0] == 0
    assert run_cli(["edit", digits_run, "--directions", tmp_path / "d.npz", "--name", "sefa1",
                    "--project", tmp_path / "p" / "00001.npy", "--out", tmp_path / "pe.png"], capsys)[0] == 0
    assert Image.open(tmp_path / "pe.png").size == (7 * 10 + 2, 10 + 2)


def test_refusals_are_one_line(digits_run, tmp_path, capsys):
    code, _, err = run_cli(["mix", digits_run, "--layers", "0-1"], capsys)
    assert one_line_error(code, err, "mlp generator has no mapping net, so no w+ space")
    code, _, err = run_cli(["directions", digits_run, "--method", "labels", "--out", tmp_path / "l.npz"], capsys)
    assert one_line_error(code, err, "needs --judge")
    code, _, err = run_cli(["directions", digits_run, "--method", "labels", "--judge", "digits",
                            "--out", tmp_path / "l.npz"], capsys)
    assert one_line_error(code, err, "reads 1x28x28 digits")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    code, _, err = run_cli(["edit", digits_run, "--directions", tmp_path / "bad.npz", "--name", "x"], capsys)
    assert one_line_error(code, err, "not a gankit directions file")


def test_sequence_models_refuse_in_one_line(tmp_path, capsys):
    run = tmp_path / "mle"
    tiny = ["data.vocab_size=40", "data.max_len=6", "data.toy_samples=256", "data.batch_size=16",
            "model.emb_dim=8", "G.width=8", "G.depth=1", "train.steps=2", "train.progress=false"]
    assert run_cli(["train", "mle_oracle", *tiny, "--out", run], capsys)[0] == 0
    for args in (["project", run, tmp_path, "--out", tmp_path / "p"], ["mix", run, "--layers", "0"],
                 ["directions", run, "--method", "sefa", "--out", tmp_path / "d.npz"],
                 ["sample", run, "--n", 2, "--out", tmp_path / "s", "--truncation", 0.5]):
        code, _, err = run_cli(args, capsys)
        assert one_line_error(code, err, "model kind 'mle' is a sequence model"), err


TINY_STYLE = ["data.source=faces48", "data.image_size=8", "data.batch_size=8", "model.z_dim=8",
              "G.name=stylegan2", "G.width=4", "G.depth=2", "D.name=stylegan2", "D.width=4",
              "D.norm=none", "loss.penalty=r1", "train.steps=2", "train.progress=false", "train.ema=0.9"]


def test_stylegan2_run_mixes_interpolates_in_w_and_projects_into_w(tmp_path, capsys):
    run = tmp_path / "style"
    assert run_cli(["train", *TINY_STYLE, "--out", run], capsys)[0] == 0
    code, out, _ = run_cli(["mix", run, "--rows", "0-2", "--cols", "5,6", "--layers", "2-3",
                            "--out", tmp_path / "m.png"], capsys)
    assert code == 0 and "giving layers 2-3 of 4" in out
    assert Image.open(tmp_path / "m.png").size == (3 * 10 + 2, 4 * 10 + 2)
    code, _, err = run_cli(["mix", run, "--layers", "2-4"], capsys)
    assert one_line_error(code, err, "within 0-3")
    assert run_cli(["interpolate", run, "--gif", "--frames", 3, "--rows", 2, "--truncation", 0.7,
                    "--out", tmp_path / "w.gif"], capsys)[0] == 0
    assert Image.open(tmp_path / "w.gif").n_frames == 4
    assert run_cli(["sample", run, "--n", 2, "--out", tmp_path / "s", "--seed", 3], capsys)[0] == 0
    code, out, _ = run_cli(["project", run, tmp_path / "s", "--out", tmp_path / "p", "--space", "w",
                            "--steps", 30], capsys)
    assert code == 0
    assert np.load(tmp_path / "p" / "00001.npy").shape == (32,)  # w of min(8 * width, 512)
    assert (tmp_path / "p" / "00001_noise.npz").is_file()
