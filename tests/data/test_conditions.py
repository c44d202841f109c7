"""Conditions of image data: words, vocabularies, tags files and labels for folders."""
import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import load_config
from gankit.data import load_tensors
from gankit.data.conditions import build_vocab, encode_texts, read_tags, tokenize
from gankit.errors import ConfigError, DataError


def data_cfg(**items):
    return load_config(None, [f"data.{k}={v}" for k, v in items.items()]).data


def make_folder(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8), "L").save(root / name)


def test_tokenize_keeps_multi_word_tags_whole():
    assert tokenize(" Red_hair, BLUE_EYES;smile  ") == ["red_hair", "blue_eyes", "smile"]


def test_vocab_by_frequency_and_min_count_then_encoding():
    texts = ["a b", "b c", "b"]
    assert build_vocab(texts) == ["<pad>", "<unk>", "b", "a", "c"]
    vocab = build_vocab(texts, min_count=2)
    assert vocab == ["<pad>", "<unk>", "b"]
    torch.testing.assert_close(encode_texts(["a b c", "b"], vocab, 2),
                               torch.tensor([[1, 2], [2, 0]]))


def test_tags_file_lines(tmp_path):
    tags = tmp_path / "tags.txt"
    tags.write_text("# name, tags\n1.png red_hair blue_eyes\n\nmy file.png,smile, Blush\n2.png\n")
    assert read_tags(tags) == [(2, "1.png", "red_hair blue_eyes"), (4, "my file.png", "smile blush"),
                               (5, "2.png", "")]
    tags.write_text("1.png a\n1.png b\n")
    with pytest.raises(DataError, match="names '1.png' twice"):
        read_tags(tags)


def test_tags_relabel_a_folder_with_distinct_texts(tmp_path):
    make_folder(tmp_path / "img", ["0.png", "1.png", "2.png", "3.png"])
    tags = tmp_path / "tags.txt"
    tags.write_text("0.png smile\n1.png red_hair  blue_eyes\n2.png smile\n")  # 3.png has no tags
    cfg = data_cfg(source=tmp_path / "img", tags=tags, condition="text", image_size=8, batch_size=2)
    tensors, _, info = load_tensors(cfg, 0)
    assert info.class_names == ["red_hair blue_eyes", "smile"]
    assert info.vocab == ["<pad>", "<unk>", "blue_eyes", "red_hair", "smile"]
    assert tensors["y"].tolist() == [1, 0, 1]  # 0.png, 1.png, 2.png; 3.png is skipped
    torch.testing.assert_close(tensors["x"][:, 0, 0, 0], torch.tensor([0, 20, 40]) / 127.5 - 1)


def test_tags_naming_missing_images_is_an_error(tmp_path):
    make_folder(tmp_path / "img", ["0.png"])
    tags = tmp_path / "tags.txt"
    tags.write_text("0.png smile\nghost.png blush\n")
    with pytest.raises(DataError, match=r"names 1 image\(s\) missing .*'ghost.png' \(line 2\)"):
        load_tensors(data_cfg(source=tmp_path / "img", tags=tags, condition="text"), 0)


def test_tags_need_a_condition_and_conditions_need_classes(tmp_path):
    make_folder(tmp_path / "img", ["0.png", "1.png"])
    tags = tmp_path / "tags.txt"
    tags.write_text("0.png smile\n")
    with pytest.raises(ConfigError, match="data.condition=none"):
        load_tensors(data_cfg(source=tmp_path / "img", tags=tags), 0)
    with pytest.raises(DataError, match="needs at least two named classes"):
        load_tensors(data_cfg(source=tmp_path / "img", condition="label"), 0)


def test_sub_folder_names_are_the_labels_and_texts(tmp_path):
    make_folder(tmp_path / "img" / "cats", ["a.png", "b.png"])
    make_folder(tmp_path / "img" / "dogs", ["c.png"])
    _, _, info = load_tensors(data_cfg(source=tmp_path / "img", condition="text", image_size=8), 0)
    assert info.class_names == ["cats", "dogs"] and info.vocab[2:] == ["cats", "dogs"]


def test_cli_reports_a_tags_file_naming_missing_images(tmp_path, capsys):
    from gankit.cli import main

    make_folder(tmp_path / "img", ["0.png", "1.png"])
    tags = tmp_path / "tags.txt"
    tags.write_text("0.png smile\n1.png blush\n7.png smile\n")
    code = main(["train", "mnist_cgan", "--data", str(tmp_path / "img"), f"data.tags={tags}",
                 "data.condition=text", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: tags file") and "'7.png' (line 3)" in err[0]
