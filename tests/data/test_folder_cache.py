"""A large folder decodes once into a pixel cache that later starts read (issue 23)."""
import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import load_config
from gankit.data import build_source, folders


def make_folder(root, n=24, bad=0):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    for i in range(bad):
        (root / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def config(root, **overrides):
    items = {"data.source": root, "data.image_size": 8, "data.channels": 3, "data.workers": 0,
             "data.cache_dir": root.parent / "cache", "data.batch_size": 4}
    items.update(overrides)
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


@pytest.fixture
def small_min(monkeypatch):
    monkeypatch.setattr(folders, "CACHE_MIN_FILES", 10)


def all_items(source):
    return torch.cat([b["x"] for b in source.iter_items(100)])


@pytest.mark.parametrize("resident", ["yes", "no"])
def test_the_second_start_reads_the_cache_and_gives_the_same_pixels(tmp_path, small_min,
                                                                   monkeypatch, resident):
    root = make_folder(tmp_path / "faces", bad=1)
    uncached = build_source(config(root, **{"data.cache_dir": "none", "data.resident": resident}).data,
                            0, torch.device("cpu"))
    expected = all_items(uncached)
    first = build_source(config(root, **{"data.resident": resident}).data, 0, torch.device("cpu"))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert torch.equal(all_items(first), expected)
    monkeypatch.setattr(folders, "_decode", lambda *a: pytest.fail("decoded on a cache hit"))
    second = build_source(config(root, **{"data.resident": resident}).data, 0, torch.device("cpu"))
    assert first.info.size == second.info.size == 24  # the bad file is skipped both times
    assert torch.equal(all_items(second), expected)


def test_a_changed_folder_gets_a_new_cache(tmp_path, small_min):
    root = make_folder(tmp_path / "faces")
    build_source(config(root).data, 0, torch.device("cpu"))
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "000.png")  # replaced
    source = build_source(config(root).data, 0, torch.device("cpu"))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    assert (all_items(source)[0] == -1).all()  # the new black image, not the cached one


def test_small_folders_and_cache_dir_none_write_no_cache(tmp_path):
    root = make_folder(tmp_path / "faces")  # 24 < CACHE_MIN_FILES
    build_source(config(root).data, 0, torch.device("cpu"))
    assert not (tmp_path / "cache").exists()


def test_progress_is_plain_lines_off_a_terminal(tmp_path, small_min, capsys):
    build_source(config(make_folder(tmp_path / "faces")).data, 0, torch.device("cpu"))
    err = capsys.readouterr().err
    assert "decoding 24 images" in err and "24/24 decoded" in err and "cached in" in err


def test_workers_never_exceed_the_available_cores(tmp_path):
    root = make_folder(tmp_path / "faces")
    source = build_source(config(root, **{"data.workers": 64, "data.resident": "no"}).data,
                          0, torch.device("cpu"))
    assert source.workers == min(64, folders.available_cores()) < 64


def test_dry_run_says_what_it_found_and_decodes_nothing(tmp_path, small_min, capsys):
    from gankit.cli import main

    root = make_folder(tmp_path / "faces", bad=2)
    args = [f"data.{k}={v}" for k, v in (("image_size", 8), ("channels", 3), ("batch_size", 4),
                                        ("cache_dir", tmp_path / "cache"))]
    assert main(["train", "toy_ring8", f"data.source={root}", "G.name=mlp",
                 "D.name=mlp", *args, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "26 images" in err  # found (the corrupt ones are found by the decode pass)
    assert "sizes 10x12 (24)" in err and "unreadable (2)" in err
    assert "the first start decodes 26 images once into" in err
    assert not list((tmp_path / "cache").glob("*.npy"))
