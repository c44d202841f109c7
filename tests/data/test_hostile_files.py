"""Files from elsewhere are data, never code: each reader is tried with a file that would run
code if it were unpickled or evaluated, and tags files cannot name files outside their folder.

The payload of every test is a pickle whose loading opens (creates) a marker file; the marker
must not exist afterwards. (Checkpoints: tests/training/test_faults.py; .npz statistics:
tests/metrics/test_cache_faults.py.)
"""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import load_config
from gankit.data import load_tensors
from gankit.data.conditions import read_tags
from gankit.data.points import load_points
from gankit.data.text import cached_oracle_samples, make_oracle, read_sentences, sample_oracle
from gankit.errors import ConfigError, DataError


class Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "a reader executed code from a file"


def test_payload_really_runs_code_when_unpickled(tmp_path):
    # the check of the marker below means something only if the payload works
    pickle.loads(pickle.dumps(Boom(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


# ---- tags files --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../secret.png", "img/../../secret.png", "/etc/passwd",
                                  "..\\secret.png", "C:\\data\\x.png", "c:/x.png"])
def test_tags_names_outside_the_folder_are_refused(tmp_path, name):
    tags = tmp_path / "tags.txt"
    tags.write_text(f"0.png smile\n{name}\tred_hair\n")
    with pytest.raises(DataError, match=rf"tags file '.*tags.txt' line 2 names '.*', a path outside"):
        read_tags(tags)


def test_tags_names_inside_the_folder_are_kept(tmp_path):
    tags = tmp_path / "tags.txt"
    tags.write_text("sub/0.png smile\n..png odd but inside\na..b.png x\n")
    assert [name for _, name, _ in read_tags(tags)] == ["sub/0.png", "..png", "a..b.png"]


def test_a_folder_whose_tags_point_outside_loads_nothing_from_there(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(img / f"{i}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "outside.png")
    tags = tmp_path / "tags.txt"
    tags.write_text("0.png a\n1.png b\n../outside.png c\n")
    cfg = load_config(None, [f"data.source={img}", f"data.tags={tags}", "data.condition=label",
                             "data.image_size=8"]).data
    with pytest.raises(DataError, match="line 3 names '../outside.png', a path outside"):
        load_tensors(cfg, 0)


def test_tags_file_holding_a_pickle_is_read_as_text(tmp_path, marker):
    tags = tmp_path / "tags.txt"
    tags.write_bytes(pickle.dumps(Boom(marker), protocol=0))  # protocol 0 is ASCII
    entries = read_tags(tags)
    assert entries and all(isinstance(name, str) for _, name, _ in entries)


# ---- text corpora ------------------------------------------------------------------------
def test_corpus_of_code_and_pickles_is_only_words(tmp_path, marker):
    corpus = tmp_path / "corpus.txt"
    code = f"__import__('os').system('touch {marker}')\n"
    corpus.write_bytes(code.encode() + pickle.dumps(Boom(marker), protocol=0))
    sentences = read_sentences(corpus)
    assert {"import", "os", "system", "touch"} <= set(sentences[0])  # the code became words
    assert all(isinstance(w, str) for s in sentences for w in s)


def test_binary_pickle_as_corpus_is_refused(tmp_path, marker):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(pickle.dumps(Boom(marker), protocol=4))
    with pytest.raises(DataError, match="is not UTF-8 text"):
        read_sentences(corpus)


def test_hostile_oracle_cache_is_ignored_and_rebuilt(tmp_path, monkeypatch, marker):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    oracle = make_oracle(vocab_size=12, max_len=5, seed=0)
    first = cached_oracle_samples(oracle, 6, seed=1)
    (path,) = (tmp_path / "cache" / "text").glob("*.pt")
    torch.save({"x": Boom(marker)}, path)  # replaced by someone else's file
    again = cached_oracle_samples(oracle, 6, seed=1)
    torch.testing.assert_close(again, sample_oracle(oracle, 6, seed=1))
    torch.testing.assert_close(again, first)


# ---- point clouds and presets ------------------------------------------------------------
def test_npy_of_objects_is_refused(tmp_path, marker):
    path = tmp_path / "points.npy"
    array = np.empty((2, 2), dtype=object)
    array[0, 0] = Boom(marker)
    np.save(path, array, allow_pickle=True)
    with pytest.raises(DataError, match="cannot read .*points.npy' as a .npy array"):
        load_points(path)


def test_yaml_preset_with_python_tags_is_refused(tmp_path, marker):
    preset = tmp_path / "hostile.yaml"
    preset.write_text(f"train: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(ConfigError, match="malformed YAML in"):
        load_config(str(preset))
