"""Image folders: scanning, labels, colour conversion, resize + centre crop, bad files."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gankit.data.folders import (ImageFolderDataset, load_folder_tensor, load_image,
                                 native_format, scan_folder)
from gankit.errors import ConfigError, DataError

STEP = 2 / 255  # one grey level in [-1, 1]


def level(v: float) -> float:
    """A uint8 grey level mapped to [-1, 1]."""
    return v / 127.5 - 1


def save(path: Path, pixels, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    img.save(path, fmt, **kw)
    return path


def noise(h=12, w=12, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def halves(w: int, h: int, split_x: int) -> Image.Image:
    """Grey image: black where x < split_x, white elsewhere."""
    img = Image.new("L", (w, h), 0)
    img.paste(255, (split_x, 0, w, h))
    return img


def damaged_png(path: Path) -> Path:
    """A PNG whose pixel data is damaged in the middle but that ends normally."""
    save(path, noise(16, 16, seed=9))
    data = bytearray(path.read_bytes())
    start = data.find(b"IDAT") + 40
    data[start:start + 20] = bytes(20)
    path.write_bytes(data)
    return path


# ---- scanning -------------------------------------------------------------------------------
def test_recursive_scan_across_extensions_with_class_labels(tmp_path):
    names = ["dog/e.jpeg", "cat/sub/b.jpg", "dog/c.webp", "cat/a.png", "dog/d.bmp", "dog/F.PNG"]
    for i, name in enumerate(names):  # created out of order on purpose
        fmt = {"jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP"}.get(
            name.rsplit(".", 1)[1], "PNG")
        save(tmp_path / name, noise(seed=i), fmt)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    save(tmp_path / ".ipynb_checkpoints" / "x.png", noise())
    report = scan_folder(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in report.files]
    assert rel == ["cat/a.png", "cat/sub/b.jpg", "dog/F.PNG", "dog/c.webp", "dog/d.bmp",
                   "dog/e.jpeg"]
    assert report.labels == [0, 0, 1, 1, 1, 1]
    assert report.class_names == ["cat", "dog"]
    assert report.skipped == {"not an image": 1, "hidden": 2}
    assert report.summary().startswith(f"'{tmp_path}': 6 images, 2 classes; 3 files skipped "
                                       f"(2 hidden, 1 not an image)")
    assert scan_folder(tmp_path, verify=False).files == report.files


def test_flat_folder_has_one_unnamed_class(tmp_path):
    for name in ["b.png", "a.png", "c.jpg"]:
        save(tmp_path / name, noise())
    report = scan_folder(tmp_path)
    assert [p.name for p in report.files] == ["a.png", "b.png", "c.jpg"]
    assert report.labels == [0, 0, 0] and report.class_names == []
    assert report.summary().endswith("3 images, no classes; no files skipped")


def test_images_beside_class_folders_are_skipped(tmp_path):
    save(tmp_path / "loose.png", noise())
    save(tmp_path / "one" / "a.png", noise())
    (tmp_path / "empty_class").mkdir()
    report = scan_folder(tmp_path)
    assert [p.name for p in report.files] == ["a.png"]
    assert report.class_names == ["one"]
    assert report.skipped == {"outside class folders": 1}


def test_corrupt_truncated_and_non_image_files_are_counted_and_skipped(tmp_path):
    save(tmp_path / "good.png", noise())
    save(tmp_path / "good.jpg", noise(), "JPEG")
    (tmp_path / "garbage.png").write_bytes(b"definitely not a png" * 10)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "readme.md").write_text("hi")
    for name, fmt in [("cut.png", "PNG"), ("cut.jpg", "JPEG"), ("cut.webp", "WEBP"),
                      ("cut.bmp", "BMP")]:
        full = save(tmp_path / name, noise(32, 32, seed=3), fmt).read_bytes()
        (tmp_path / name).write_bytes(full[: len(full) // 2])
    report = scan_folder(tmp_path)
    assert [p.name for p in report.files] == ["good.jpg", "good.png"]
    assert report.skipped == {"corrupt": 2, "truncated": 4, "not an image": 1}
    assert "7 files skipped (4 truncated, 2 corrupt, 1 not an image)" in report.summary()


def test_verify_false_only_filters_extensions(tmp_path):
    save(tmp_path / "good.png", noise())
    (tmp_path / "garbage.png").write_bytes(b"junk")
    report = scan_folder(tmp_path, verify=False)
    assert [p.name for p in report.files] == ["garbage.png", "good.png"]
    assert report.skipped == {}


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "missing", r"image folder '.*missing' does not exist; check data.source"),
    (lambda p: save(p / "a.png", noise()), r"'.*a.png' is a file, not a folder"),
    (lambda p: p, r"no usable images in '.*': the folder is empty; add png/jpg/jpeg/webp/bmp"),
])
def test_unusable_roots_raise_data_error(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        scan_folder(make(tmp_path))


def test_folder_without_usable_images_says_what_was_skipped(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    (tmp_path / "b.jpg").write_bytes(b"junk")
    (tmp_path / "c.txt").write_text("text")
    with pytest.raises(DataError, match=r"no usable images in '.*': 3 files skipped "
                                        r"\(2 corrupt, 1 not an image\); add png/jpg"):
        scan_folder(tmp_path)


# ---- decoding -------------------------------------------------------------------------------
def test_rgb_and_grayscale_conversion(tmp_path):
    red = save(tmp_path / "red.png", np.full((4, 4, 3), (255, 0, 0), dtype=np.uint8))
    grey = save(tmp_path / "grey.png", np.full((4, 4), 100, dtype=np.uint8))
    x = load_image(red, 4, 3)
    assert x.dtype == torch.float32 and x.shape == (3, 4, 4)
    assert_close(x[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    # ITU-R 601 luma: 0.299 * 255 = 76.2 -> 76.
    assert_close(load_image(red, 4, 1), torch.full((1, 4, 4), level(76)))
    assert_close(load_image(grey, 4, 3), torch.full((3, 4, 4), level(100)))
    assert_close(load_image(grey, 4, 1), torch.full((1, 4, 4), level(100)))


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # transparent -> white
    rgba[0, 1] = (0, 0, 0, 255)  # opaque black
    rgba[0, 2] = (0, 0, 0, 102)  # 40% black over white: 0.6 * 255 = 153
    rgba[1:] = (255, 0, 0, 255)
    x = load_image(save(tmp_path / "a.png", Image.fromarray(rgba, "RGBA")), 3, 3)
    assert_close(x[:, 0, 0], torch.ones(3))
    assert_close(x[:, 0, 1], -torch.ones(3))
    assert_close(x[:, 0, 2], torch.full((3,), level(153)), atol=STEP, rtol=0)
    assert_close(x[:, 1, 0], torch.tensor([1.0, -1.0, -1.0]))
    la = Image.fromarray(np.array([[[0, 0], [0, 255], [0, 0]]] * 3, dtype=np.uint8), "LA")
    y = load_image(save(tmp_path / "la.png", la), 3, 1)
    assert_close(y[0, 0], torch.tensor([1.0, -1.0, 1.0]))


def test_palette_transparency_becomes_white(tmp_path):
    img = Image.new("P", (3, 3), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    x = load_image(save(tmp_path / "p.png", img, transparency=0), 3, 3)
    assert_close(x[:, 1, 1], torch.tensor([1.0, -1.0, -1.0]))
    assert_close(x[:, 0, 0], torch.ones(3))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 128 * 257, 65535]], dtype=np.uint16).repeat(3, axis=0)
    x = load_image(save(tmp_path / "deep.png", Image.fromarray(values)), 3, 1)
    assert_close(x[0, 0], torch.tensor([-1.0, level(128), 1.0]))


def test_center_crop_without_resizing_is_exact(tmp_path):
    wide = save(tmp_path / "wide.png", halves(30, 10, 15))  # crop keeps x = 10..19
    x = load_image(wide, 10, 1)
    expected = torch.tensor([-1.0] * 5 + [1.0] * 5).expand(1, 10, 10)
    assert_close(x, expected)
    tall = save(tmp_path / "tall.png", halves(30, 10, 15).rotate(90, expand=True))
    y = load_image(tall, 10, 3)  # rotated 90 deg counter-clockwise: white on top
    assert_close(y, expected.transpose(1, 2).flip(1).expand(3, 10, 10))


def test_shrink_then_center_crop_puts_the_edge_in_the_middle(tmp_path):
    # 60x20 -> shorter side 10 gives 30x10; the centre crop keeps source x = 20..39, whose
    # black/white edge (source x = 30) falls between output columns 4 and 5.
    x = load_image(save(tmp_path / "w.png", halves(60, 20, 30)), 10, 1)[0]
    assert x.shape == (10, 10)
    assert_close(x[:, :3], torch.full((10, 3), -1.0), atol=0.05, rtol=0)
    assert_close(x[:, 7:], torch.full((10, 3), 1.0), atol=0.05, rtol=0)
    assert (x[:, 4] < 0).all() and (x[:, 5] > 0).all()
    assert_close(x[:, 4], -x[:, 5], atol=STEP, rtol=0)  # symmetric around the edge


def test_center_crop_discards_the_sides(tmp_path):
    stripes = np.zeros((20, 60, 3), dtype=np.uint8)
    stripes[:, :20] = (255, 0, 0)
    stripes[:, 20:40] = (0, 255, 0)
    stripes[:, 40:] = (0, 0, 255)
    x = load_image(save(tmp_path / "s.png", stripes), 10, 3)
    # Columns 3..6 only see source x = 21..38 through the 2x Lanczos kernel: pure green.
    assert_close(x[:, :, 3:7], torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 10, 4))


def test_large_jpeg_uses_reduced_decoding_and_keeps_colour(tmp_path):
    path = save(tmp_path / "big.jpg", np.full((512, 768, 3), (200, 100, 50), dtype=np.uint8),
                "JPEG", quality=95)
    x = load_image(path, 16, 3)
    assert x.shape == (3, 16, 16)
    expected = torch.tensor([level(200), level(100), level(50)]).view(3, 1, 1).expand(3, 16, 16)
    assert_close(x, expected, atol=3 * STEP, rtol=0)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x20 sideways; displayed rotated 90 deg clockwise
    path = save(tmp_path / "o.png", halves(40, 20, 20), exif=exif)
    x = load_image(path, 20, 1)[0]
    assert_close(x[:10], torch.full((10, 20), -1.0))
    assert_close(x[10:], torch.full((10, 20), 1.0))


def test_load_image_errors(tmp_path):
    with pytest.raises(DataError, match=r"cannot read image '.*missing.png' \(unreadable"):
        load_image(tmp_path / "missing.png", 8, 3)
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"\(corrupt: .*\); replace it with a valid"):
        load_image(tmp_path / "bad.png", 8, 3)
    with pytest.raises(ConfigError, match="channels must be 1"):
        load_image(tmp_path / "bad.png", 8, 2)
    with pytest.raises(ConfigError, match="image size must be a positive integer"):
        load_image(tmp_path / "bad.png", 0, 3)


def test_native_format(tmp_path):
    save(tmp_path / "a" / "x.png", noise(30, 40))
    assert native_format(scan_folder(tmp_path)) == (30, 3)
    save(tmp_path / "a" / "w.png", np.zeros((9, 7), dtype=np.uint8))
    assert native_format(scan_folder(tmp_path)) == (7, 1)


# ---- data sets ------------------------------------------------------------------------------
def make_classes(root: Path) -> list[Path]:
    """Four images of mixed sizes in classes 'a' and 'b', in their sorted order."""
    return [save(root / "a" / "0.png", noise(12, 16, 0)),
            save(root / "a" / "1.png", noise(seed=1)),
            save(root / "b" / "2.png", noise(20, 14, 2)),
            save(root / "b" / "3.jpg", noise(seed=3), "JPEG")]


def test_streaming_dataset_items(tmp_path):
    paths = make_classes(tmp_path)
    ds = ImageFolderDataset(tmp_path, 8, 3)
    assert len(ds) == 4
    for i, (path, label) in enumerate(zip(paths, [0, 0, 1, 1])):
        item = ds[i]
        assert item["x"].dtype == torch.float32 and item["x"].shape == (3, 8, 8)
        assert item["y"].dtype == torch.int64 and item["y"].ndim == 0 and item["y"] == label
        assert_close(item["x"], load_image(path, 8, 3))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 3, 8, 8) and batch["y"].tolist() == [0, 0, 1, 1]


def test_streaming_substitutes_the_next_good_item_for_a_damaged_file(tmp_path):
    make_classes(tmp_path)
    damaged_png(tmp_path / "a" / "1.png")
    damaged_png(tmp_path / "b" / "3.png")  # sorts last: wraps around to item 0
    ds = ImageFolderDataset(tmp_path, 8, 1)
    assert len(ds) == 5  # the damage is in the middle, so the cheap scan accepts both
    with pytest.warns(UserWarning, match=r"skipping unreadable image '.*1.png' \(corrupt"):
        item = ds[1]
    assert_close(item["x"], ds[2]["x"])
    assert item["y"] == 1  # the substitute's own label
    with pytest.warns(UserWarning, match=r"3.png"):
        assert_close(ds[4]["x"], ds[0]["x"])
    assert set(Path(p).name for p in ds.failures) == {"1.png", "3.png"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known bad file is skipped silently afterwards
        assert_close(ds[1]["x"], ds[2]["x"])


def test_streaming_survives_a_damaged_file_in_a_worker(tmp_path):
    make_classes(tmp_path)
    damaged_png(tmp_path / "a" / "1.png")
    ds = ImageFolderDataset(tmp_path, 8, 3)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = next(iter(loader))
    assert batch["x"].shape == (4, 3, 8, 8)
    assert_close(batch["x"][1], batch["x"][2])


def test_all_damaged_files_in_streaming_mode_raise_data_error(tmp_path):
    damaged_png(tmp_path / "x.png")
    ds = ImageFolderDataset(tmp_path, 8, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="none of the 1 images"):
            ds[0]


def test_resident_tensor_matches_streamed_items(tmp_path):
    paths = make_classes(tmp_path)
    x, y, report = load_folder_tensor(tmp_path, 6, 1)
    assert x.shape == (4, 1, 6, 6) and x.dtype == torch.float32
    assert y.tolist() == [0, 0, 1, 1] and report.files == paths
    assert_close(x, torch.stack([load_image(p, 6, 1) for p in paths]))
    x1, _, _ = load_folder_tensor(tmp_path, 6, 1, workers=1)
    assert torch.equal(x, x1)


def test_resident_loading_drops_and_counts_damaged_files(tmp_path):
    paths = make_classes(tmp_path)
    damaged_png(tmp_path / "a" / "1.png")
    scanned = scan_folder(tmp_path)
    x, y, report = load_folder_tensor(tmp_path, 6, 3, report=scanned)
    assert len(scanned.files) == 4 and scanned.skipped == {}  # the caller's report is kept
    assert report.files == [paths[0], paths[2], paths[3]] and y.tolist() == [0, 1, 1]
    assert report.skipped == {"corrupt": 1}
    assert_close(x[1], load_image(paths[2], 6, 3))


def test_resident_loading_of_only_bad_files_raises(tmp_path):
    damaged_png(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"no usable images in .*1 file skipped \(1 corrupt\)"):
        load_folder_tensor(tmp_path, 8, 3)
