"""Paired (AB, aligned) and unpaired (trainA/trainB) image data, and the built-in MNIST tasks."""
import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import load_config
from gankit.data import build_source, held_out_tensors, load_tensors
from gankit.data.paired import (
    load_ab_image,
    mnist_digits,
    outline,
    thick_split,
    thicken,
    unpaired_held_out,
)
from gankit.errors import ConfigError, DataError

CPU = torch.device("cpu")


def save_gray(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), "L").save(path)


def unit(v):
    """A uint8 grey level as the [-1, 1] value the loaders give."""
    return v / 127.5 - 1.0


def data_cfg(**items):
    return load_config(None, [f"data.{k}={v}" for k, v in items.items()]).data


def make_ab_folder(root, n=6, size=8):
    for i in range(n):
        left = np.full((size, size), 10 * i)
        right = np.full((size, size), 200 - 10 * i)
        save_gray(root / f"{i}.png", np.concatenate([left, right], axis=1))


# ---- paired ----------------------------------------------------------------------------------
def test_ab_images_split_into_left_input_and_right_target(tmp_path):
    make_ab_folder(tmp_path / "ab")
    tensors, _, info = load_tensors(data_cfg(source=tmp_path / "ab", layout="ab", image_size=8), 0)
    assert info.kind == "paired" and info.shape == (1, 8, 8) and info.size == 6
    for i in range(6):
        torch.testing.assert_close(tensors["a"][i], torch.full((1, 8, 8), unit(10 * i)))
        torch.testing.assert_close(tensors["b"][i], torch.full((1, 8, 8), unit(200 - 10 * i)))


def test_direction_btoa_swaps_the_sides(tmp_path):
    make_ab_folder(tmp_path / "ab", n=2)
    t, _, _ = load_tensors(data_cfg(source=tmp_path / "ab", layout="ab", image_size=8, direction="BtoA"), 0)
    torch.testing.assert_close(t["a"][1], torch.full((1, 8, 8), unit(190)))


def test_ab_image_of_odd_width_is_an_error(tmp_path):
    save_gray(tmp_path / "odd.png", np.zeros((8, 17)))
    with pytest.raises(DataError, match=r"odd.png' is 17 px wide.*even width"):
        load_ab_image(tmp_path / "odd.png", 8, 1)


def test_aligned_folders_pair_files_by_name(tmp_path):
    for name, v in (("x", 40), ("y", 80)):
        save_gray(tmp_path / "A" / f"{name}.png", np.full((8, 8), v))
        save_gray(tmp_path / "B" / f"{name}.jpg", np.full((8, 8), 255 - v))
    t, _, info = load_tensors(data_cfg(source=tmp_path, layout="aligned", image_size=8), 0)
    assert info.kind == "paired"
    torch.testing.assert_close(t["a"][:, 0, 0, 0], torch.tensor([unit(40), unit(80)]))
    torch.testing.assert_close(t["b"][:, 0, 0, 0], torch.tensor([unit(215), unit(175)]), atol=0.02, rtol=0)
    save_gray(tmp_path / "A" / "z.png", np.zeros((8, 8)))
    with pytest.raises(DataError, match="no counterpart, e.g. 'A/z'"):
        load_tensors(data_cfg(source=tmp_path, layout="aligned"), 0)


def test_bad_layout_name(tmp_path):
    with pytest.raises(ConfigError, match="data.layout must be one of"):
        load_tensors(data_cfg(source=tmp_path, layout="sideways"), 0)


# ---- unpaired --------------------------------------------------------------------------------
def make_unpaired(root, n_a, n_b):
    for i in range(n_a):
        save_gray(root / "trainA" / f"a{i}.png", np.full((8, 8), i))
    for i in range(n_b):
        save_gray(root / "trainB" / f"b{i}.png", np.full((8, 8), 100 + i))


def test_unpaired_sets_are_a_source_kind_that_builds_its_batch_source(tmp_path, monkeypatch):
    from gankit.data import sources

    make_unpaired(tmp_path, 3, 4)
    folder = data_cfg(source=tmp_path, layout="unpaired", image_size=8, batch_size=2)
    assert sources.source_for(folder).name == "unpaired"  # not the image folder kind
    assert sources.source_for(data_cfg(source="mnist5k_thick")).name == "unpaired"
    assert sources.source_for(data_cfg(source="mnist5k_edges")).name == "paired"
    names = sources.builtin_names()
    assert names.index("mnist5k_edges") + 1 == names.index("mnist5k_thick")  # listed as before
    with pytest.raises(ConfigError, match="unpaired data .* not as tensors"):
        load_tensors(data_cfg(source="mnist5k_thick"), 0)
    # build_source asks the registry alone: a kind that builds its batch source is used as it is
    monkeypatch.setattr(sources.DATA_SOURCES, "_items", dict(sources.DATA_SOURCES._items))
    made = []

    def build(cfg, seed, device, rank, world):
        made.append((cfg.source, seed, rank, world))
        return "a batch source"

    @sources.data_source("two_streams", order=1, claims=lambda cfg: cfg.source == "two_streams",
                         build=build)
    def _load(cfg, seed):
        raise AssertionError("a kind with its own build is never loaded as tensors")

    assert build_source(data_cfg(source="two_streams"), 3, CPU) == "a batch source"
    assert made == [("two_streams", 3, 0, 1)]


def test_unpaired_sides_of_different_sizes_keep_their_own_orders(tmp_path):
    make_unpaired(tmp_path, 5, 9)
    cfg = data_cfg(source=tmp_path, layout="unpaired", image_size=8, batch_size=2)
    src = build_source(cfg, 0, CPU)
    assert src.info.kind == "unpaired" and src.info.size == 14
    batches = [src.next_batch() for _ in range(6)]  # 3 epochs of A, ~1.5 of B
    values_a = {round(float(v), 4) for b in batches for v in b["a"][:, 0, 0, 0]}
    values_b = {round(float(v), 4) for b in batches for v in b["b"][:, 0, 0, 0]}
    assert values_a <= {round(unit(i), 4) for i in range(5)}
    assert values_b <= {round(unit(100 + i), 4) for i in range(9)}
    assert src.state_dict()["a"] != src.state_dict()["b"]
    resumed = build_source(cfg, 0, CPU)
    resumed.load_state_dict(src.state_dict())
    for _ in range(4):
        x, y = src.next_batch(), resumed.next_batch()
        torch.testing.assert_close(x["a"], y["a"])
        torch.testing.assert_close(x["b"], y["b"])


@pytest.mark.parametrize("n_a,n_b,missing", [(0, 3, "trainA"), (3, 0, "trainB")])
def test_empty_side_is_an_error(tmp_path, n_a, n_b, missing):
    make_unpaired(tmp_path, n_a, n_b)
    (tmp_path / missing).mkdir(exist_ok=True)
    with pytest.raises(DataError, match=f"{missing} is unusable.*empty"):
        build_source(data_cfg(source=tmp_path, layout="unpaired", batch_size=2), 0, CPU)


def test_missing_side_folder_is_an_error(tmp_path):
    make_unpaired(tmp_path, 3, 0)
    with pytest.raises(DataError, match="needs folders 'trainA' and 'trainB'"):
        build_source(data_cfg(source=tmp_path, layout="unpaired", batch_size=2), 0, CPU)


# ---- built-in tasks --------------------------------------------------------------------------
def test_outline_and_thicken_by_hand():
    x = -torch.ones(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    ring = outline(x)[0, 0]
    expected = -torch.ones(5, 5)
    expected[1:4, 1:4] = 1.0
    expected[2, 2] = -1.0  # the stroke itself is not part of its outline
    torch.testing.assert_close(ring, expected)
    bold = thicken(x)[0, 0]
    expected = -torch.ones(5, 5)
    expected[1:4, 1:4] = 1.0
    torch.testing.assert_close(bold, expected)


def test_mnist_thick_uses_disjoint_halves_and_unseen_test_digits():
    ia, ib, test = thick_split(0.1)
    assert len(test) == 500 and abs(len(ia) - len(ib)) <= 1
    sets = [set(ia.tolist()), set(ib.tolist()), set(test.tolist())]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(sets[0] | sets[1] | sets[2]) == 5000
    cfg = data_cfg(source="mnist5k_thick", held_out=0.1, batch_size=50)
    src = build_source(cfg, 0, CPU)
    x, _ = mnist_digits()
    torch.testing.assert_close(src.a.tensors["x"], x[ia])
    torch.testing.assert_close(src.b.tensors["x"], thicken(x[ib]))
    held = unpaired_held_out(cfg)
    torch.testing.assert_close(held["b"], thicken(held["a"]))
    assert held["y"].shape == (500,)


def test_mnist_edges_is_paired_and_holds_out_digits():
    cfg = data_cfg(source="mnist5k_edges", held_out=0.1)
    train, _, info = load_tensors(cfg, 0)
    test = held_out_tensors(cfg, 0)
    assert info.kind == "paired" and len(train["a"]) == 4500 and len(test["a"]) == 500
    torch.testing.assert_close(train["a"], outline(train["b"]))
    assert not any(torch.equal(test["b"][0], t) for t in train["b"])


# ---- data.on_bad -----------------------------------------------------------------------------
def corrupt(path):
    path.write_bytes(path.read_bytes()[:30])  # a PNG cut short


@pytest.mark.parametrize("layout", ["ab", "aligned"])
def test_paired_folder_in_memory_stops_on_a_bad_file_or_leaves_its_pair_out(tmp_path, layout, capsys):
    if layout == "ab":
        make_ab_folder(tmp_path, n=4)
        bad = tmp_path / "2.png"
    else:
        for i in range(4):
            save_gray(tmp_path / "A" / f"{i}.png", np.full((8, 8), 10 * i))
            save_gray(tmp_path / "B" / f"{i}.png", np.full((8, 8), 200 - 10 * i))
        bad = tmp_path / "B" / "2.png"
    corrupt(bad)
    with pytest.raises(DataError, match=f"cannot read image '{bad}'.*data.on_bad=skip") as e:
        load_tensors(data_cfg(source=tmp_path, layout=layout, image_size=8), 0)
    assert "\n" not in str(e.value)
    t, _, info = load_tensors(data_cfg(source=tmp_path, layout=layout, image_size=8, on_bad="skip"), 0)
    assert info.size == 3 and len(t["a"]) == 3
    torch.testing.assert_close(t["a"][:, 0, 0, 0], torch.tensor([unit(0), unit(10), unit(30)]))
    assert f"1 pair(s) left out" in capsys.readouterr().out


def test_streamed_paired_folder_applies_on_bad(tmp_path):
    make_ab_folder(tmp_path, n=4)
    corrupt(tmp_path / "1.png")
    cfg = data_cfg(source=tmp_path, layout="ab", image_size=8, batch_size=4, resident="no", workers=0)
    with pytest.raises(DataError, match=r"cannot read image '.*1.png'.*data.on_bad=skip"):
        build_source(cfg, 0, CPU).next_batch()
    cfg.on_bad = "skip"
    source = build_source(cfg, 0, CPU)
    batch = source.next_batch()
    # 1.png's place is taken by the next readable pair, 2.png (A = 20)
    assert sorted(round(float(v) * 127.5 + 127.5) for v in batch["a"][:, 0, 0, 0]) == [0, 20, 20, 30]
    assert set(batch) == {"a", "b"} and source.bad_files == {1}


@pytest.mark.parametrize("on_bad", ["error", "skip"])
def test_streamed_unpaired_side_applies_on_bad(tmp_path, on_bad):
    make_unpaired(tmp_path, 4, 4)
    cfg = data_cfg(source=tmp_path, layout="unpaired", image_size=8, batch_size=4, resident="no",
                   workers=0, on_bad=on_bad)
    source = build_source(cfg, 0, CPU)
    corrupt(tmp_path / "trainB" / "b3.png")  # after the scan, as a file damaged mid-run
    if on_bad == "error":
        with pytest.raises(DataError, match=r"cannot read image '.*b3.png'.*data.on_bad=skip"):
            source.next_batch()
        return
    source.next_batch()
    assert source.bad_files == {("b", 3)} and source.log_values() == {"data/skipped": 1.0}
