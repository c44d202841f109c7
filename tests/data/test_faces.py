import numpy as np
import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_tensors
from gankit.data.faces import EYES, HAIR, STYLES, all_tags, draw_faces, parse_name, write_faces
from gankit.errors import ConfigError, DataError


def test_faces_are_deterministic_and_each_set_is_a_prefix_of_larger_ones():
    a, tags_a = draw_faces(6)
    b, tags_b = draw_faces(6)
    assert np.array_equal(a, b) and tags_a == tags_b
    tail, tags_tail = draw_faces(3, start=3)
    assert np.array_equal(tail, a[3:]) and tags_tail == tags_a[3:]
    other, _ = draw_faces(6, seed=1)
    assert not np.array_equal(other, a)
    assert len({im.tobytes() for im in a}) == 6  # six different faces


def test_every_tag_line_names_a_hair_colour_an_eye_colour_and_a_style():
    _, tags = draw_faces(60)
    for tag in tags:
        hair, eyes, style = tag.split()
        assert hair.removesuffix("_hair") in HAIR and eyes.removesuffix("_eyes") in EYES
        assert style in STYLES
    assert len(set(tags)) > 30  # varied, not a handful of types
    assert set(tags) <= set(all_tags())


def test_tagged_hair_colour_is_the_colour_drawn():
    pixels, tags = draw_faces(20)
    for img, tag in zip(pixels, tags):
        colours = img.reshape(-1, 3)
        hair = tag.split()[0].removesuffix("_hair")
        counts = {h: int((colours == rgb).all(1).sum()) for h, rgb in HAIR.items()}
        assert counts[hair] > 50, (tag, counts[hair])  # flat hair areas keep the exact colour
        assert max(counts, key=counts.get) == hair


def test_smaller_sizes_and_range():
    small, _ = draw_faces(2, size=16)
    assert small.shape == (2, 16, 16, 3) and small.dtype == np.uint8


def test_faces_source_with_tags_as_text_condition():
    cfg = DataConfig(source="faces40", image_size=32, condition="text")
    tensors, _, info = load_tensors(cfg, seed=3)
    x, y = tensors["x"], tensors["y"]
    assert x.shape == (40, 3, 32, 32) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    _, tags = draw_faces(40)
    assert [info.class_names[int(i)] for i in y] == tags
    assert {"red_hair", "blue_eyes", "twintails"} <= set(info.vocab)
    # the data do not depend on train.seed: the statistics cache keys them by name alone
    again, _, _ = load_tensors(cfg, seed=4)
    assert torch.equal(again["x"], x)


def test_face_set_names():
    assert parse_name("faces") == 10_000 and parse_name("faces500") == 500
    assert parse_name("mnist5k") is None and parse_name("faces5x") is None
    with pytest.raises(ConfigError, match="faces500"):
        parse_name("faces0")
    with pytest.raises(DataError, match="did you mean"):
        load_tensors(DataConfig(source="facess"), seed=0)


def test_write_faces_folder(tmp_path):
    write_faces(tmp_path / "real", 3, start=5, size=32)
    names = sorted(p.name for p in (tmp_path / "real").glob("*.png"))
    assert names == ["000005.png", "000006.png", "000007.png"]
    lines = (tmp_path / "real" / "tags.txt").read_text().splitlines()
    assert lines[0].split("\t")[1] == draw_faces(1, start=5)[1][0]
