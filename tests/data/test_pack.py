"""gankit data pack and packed (zip) data sets, including StyleGAN2-ADA's dataset_tool.py layout."""
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import load_config
from gankit.data import load_tensors
from gankit.data.folders import load_folder_tensor
from gankit.data.pack import member_name, pack_folder
from gankit.data.zipdata import ZipImageDataset, load_zip_tensor, read_index
from gankit.errors import DataError


def make_classes(root, seed=0):
    """Two class folders of PNG and JPEG images of different sizes and shapes."""
    rng = np.random.default_rng(seed)
    for cls, shapes in (("cat", [(20, 30), (24, 24), (31, 17)]), ("dog", [(18, 26), (40, 22)])):
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


def png_bytes(pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="png", compress_level=0)
    return buf.getvalue()


def test_round_trip_keeps_pixels_and_labels(tmp_path):
    folder = make_classes(tmp_path / "img")
    result = pack_folder(folder, tmp_path / "d.zip", size=16)
    assert (result.count, result.class_names, result.skipped, result.duplicates) == (5, ["cat", "dog"], {}, [])
    x_folder, y_folder, _ = load_folder_tensor(folder, 16, 3)
    index = read_index(tmp_path / "d.zip")
    assert index.names == [member_name(i) for i in range(5)] == [f"00000/img0000000{i}.png" for i in range(5)]
    x_zip, y_zip, _ = load_zip_tensor(index, 16, 3)
    assert torch.equal(x_zip, x_folder) and y_zip.tolist() == y_folder.tolist() == [0, 0, 0, 1, 1]
    streamed = ZipImageDataset(index, 16, 3)
    assert all(torch.equal(streamed[i]["x"], x_folder[i]) and streamed[i]["y"] == y_folder[i] for i in range(5))
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:  # dataset_tool.py's format: stored PNGs
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        meta = json.loads(zf.read("dataset.json"))
    assert meta["labels"][3] == ["00000/img00000003.png", 1] and meta["class_names"] == ["cat", "dog"]


def test_unlabelled_folder_writes_null_labels_and_stretch_keeps_the_whole_image(tmp_path):
    (tmp_path / "img").mkdir()
    left_red = np.zeros((8, 16, 3), np.uint8)
    left_red[:, :8, 0] = 255  # the left half is red: a centre crop keeps half of it, stretch all
    Image.fromarray(left_red).save(tmp_path / "img" / "a.png")
    pack_folder(tmp_path / "img", tmp_path / "c.zip", size=8)
    pack_folder(tmp_path / "img", tmp_path / "s.zip", size=8, crop="stretch")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert json.loads(zf.read("dataset.json"))["labels"] is None
        stretched = np.array(Image.open(io.BytesIO(zf.read("00000/img00000000.png"))))
    centre = np.array(Image.open(io.BytesIO(zipfile.ZipFile(tmp_path / "c.zip").read("00000/img00000000.png"))))
    assert stretched[:, :3, 0].min() > 200 and stretched[:, 5:, 0].max() < 60  # left red, right black
    assert centre[:, :3, 0].min() > 200 and centre[:, 5:, 0].max() < 60  # the centre square of 16x8 is
    assert (centre[:, :, 0] > 128).sum() == (stretched[:, :, 0] > 128).sum() == 32  # half red too


def test_tags_become_classes_and_text_conditions_read_them(tmp_path):
    folder = make_classes(tmp_path / "img")
    (tmp_path / "tags.txt").write_text("cat/0.png\tred_hair\ncat/1.jpg\tblue_eyes\n"
                                       "dog/0.png, red_hair\ndog/1.jpg, blue_eyes smile\n")
    result = pack_folder(folder, tmp_path / "t.zip", size=8, tags=tmp_path / "tags.txt")
    assert result.count == 4 and result.skipped == {"no tags": 1}  # cat/2.png has no tags line
    assert result.class_names == ["blue_eyes", "blue_eyes smile", "red_hair"]
    cfg = load_config(None, [f"data.source={tmp_path / 't.zip'}", "data.condition=text"]).data
    tensors, _, info = load_tensors(cfg, 0)
    assert tensors["y"].tolist() == [2, 0, 2, 1] and info.class_names == result.class_names
    assert {"red_hair", "blue_eyes", "smile"} <= set(info.vocab)


def test_bad_files_stop_or_are_skipped_and_duplicates_are_reported(tmp_path):
    folder = make_classes(tmp_path / "img")
    (folder / "dog" / "2.png").write_bytes((folder / "cat" / "0.png").read_bytes())  # same pixels
    (folder / "cat" / "9.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"cannot read image '.*cat/9.png' \(corrupt\); nothing written"):
        pack_folder(folder, tmp_path / "d.zip", size=8)
    assert list(tmp_path.glob("*.zip")) == [] and list(tmp_path.glob(".*tmp")) == []
    kept = pack_folder(folder, tmp_path / "d.zip", size=8, on_bad="skip")
    assert kept.skipped == {"corrupt": 1} and kept.count == 6
    assert kept.duplicates == [("dog/2.png", "cat/0.png")]
    deduped = pack_folder(folder, tmp_path / "e.zip", size=8, on_bad="skip", dedupe=True)
    assert deduped.count == 5 and len(read_index(tmp_path / "e.zip").names) == 5


def stylegan_zip(path, pixels, labels):
    """A zip as StyleGAN2-ADA's dataset_tool.py writes it (members written out of order)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        order = list(range(len(pixels)))[::-1]
        for i in order:
            zf.writestr(f"{i // 1000:05d}/img{i:08d}.png", png_bytes(pixels[i]))
        if labels != "absent":
            table = None if labels is None else [[f"{i // 1000:05d}/img{i:08d}.png", labels[i]]
                                                 for i in order]
            zf.writestr("dataset.json", json.dumps({"labels": table}))
    return path


@pytest.mark.parametrize("labels, expected", [
    ([2, 0, 1, 2], [2, 0, 1, 2]),
    ([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [2, 0, 1, 2]),
    (None, [0, 0, 0, 0]),
    ("absent", [0, 0, 0, 0]),
])
def test_reads_a_stylegan2_ada_zip(tmp_path, labels, expected):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    path = stylegan_zip(tmp_path / "sg.zip", pixels, labels)
    cfg = load_config(None, [f"data.source={path}"]).data
    tensors, _, info = load_tensors(cfg, 0)
    expected_x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() * (2 / 255) - 1
    torch.testing.assert_close(tensors["x"], expected_x, rtol=0, atol=1e-6)
    assert tensors["y"].tolist() == expected and info.shape == (3, 8, 8)
    assert info.class_names == ([] if labels in (None, "absent") else ["0", "1", "2"])


def test_refuses_label_vectors_that_are_not_classes(tmp_path):
    pixels = np.zeros((2, 4, 4, 3), np.uint8)
    stylegan_zip(tmp_path / "v.zip", pixels, [[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(DataError, match="img00000000.png' is a vector that is not one-hot"):
        read_index(tmp_path / "v.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read zip data set"):
        read_index(tmp_path / "bad.zip")


def train_args(data, run, *extra):
    return ["train", "--data", str(data), "--out", str(run), "data.batch_size=4", "data.workers=0",
            "model.z_dim=4", "G.name=mlp", "G.width=8", "G.depth=1", "G.norm=none", "D.name=mlp",
            "D.width=8", "D.depth=1", "D.norm=none", "train.steps=3", "train.sample_every=0",
            "train.progress=false", "train.ema=0", "eval.every=0", "eval.metrics=[]", *extra]


def test_cli_packs_then_trains_resident_and_streamed(tmp_path, capsys):
    folder = make_classes(tmp_path / "img")
    assert main(["data", "pack", str(folder), "--out", str(tmp_path / "d.zip"), "--size", "8"]) == 0
    out, err = capsys.readouterr()
    assert "packed 5 images (8x8, 3 ch, 2 classes)" in out and "pack: 5/5 images" in err
    assert main(train_args(tmp_path / "d.zip", tmp_path / "r1")) == 0
    # streamed through a DataLoader worker: the dataset crosses to it without its zip handle
    assert main(train_args(tmp_path / "d.zip", tmp_path / "r2", "data.resident=no", "data.workers=1")) == 0
    assert (tmp_path / "r2" / "checkpoints" / "last.pt").is_file()


def test_streamed_bad_member_names_the_zip_member(tmp_path, capsys):
    pixels = np.zeros((4, 8, 8, 3), np.uint8)
    path = tmp_path / "sg.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(4):
            zf.writestr(member_name(i), png_bytes(pixels[i]) if i != 2 else b"\x89PNG broken")
    assert main(train_args(path, tmp_path / "r", "data.resident=no")) == 2
    assert f"cannot read image '{path}:00000/img00000002.png' (corrupt" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(6, 6, 3), (6, 6)])
def test_plain_pngs_read_without_pillow_give_pillows_pixels(shape):
    from gankit.data.zipdata import _plain_png, decode_member, png_bytes

    pixels = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    channels = 3 if len(shape) == 3 else 1
    data = png_bytes(pixels)
    assert np.array_equal(np.array(Image.open(io.BytesIO(data))), pixels)  # a valid PNG
    assert np.array_equal(_plain_png(data, 6, channels), pixels)  # read by the fast path
    filtered = io.BytesIO()
    Image.fromarray(pixels).save(filtered, format="png")
    assert _plain_png(filtered.getvalue(), 6, channels) is None  # Pillow filters its rows
    assert np.array_equal(decode_member(filtered.getvalue(), 6, channels), pixels)
    assert _plain_png(data, 5, channels) is None  # another size: resized by the folder decoder
