"""Unpaired style transfer: the straight-through relaxation, the CLI, `gankit translate`."""
import pytest
import torch

from gankit.cli import main
from gankit.data.text import Vocab
from gankit.models.style import _clean, straight_through

TINY = ["style_synth", "G.width=8", "model.emb_dim=8", "model.d_emb_dim=8", "model.d_filters=[4,4,4,4]",
        "data.batch_size=16", "train.steps=3", "train.log_every=3", "train.progress=false"]


def test_straight_through_is_one_hot_forward_and_softmax_backward():
    logits = torch.tensor([[[1.0, 3.0, 2.0]]], requires_grad=True)
    noise = torch.tensor([[[0.0, 0.0, 5.0]]])
    out = straight_through(logits, noise, tau=2.0)
    torch.testing.assert_close(out.detach(), torch.tensor([[[0.0, 0.0, 1.0]]]))
    weights = torch.tensor([1.0, 2.0, 3.0])
    (out * weights).sum().backward()
    soft_logits = logits.detach().clone().requires_grad_(True)
    (torch.softmax((soft_logits + noise) / 2.0, -1) * weights).sum().backward()
    torch.testing.assert_close(logits.grad, soft_logits.grad)


def test_clean_pads_after_the_end_and_ends_bare_padding():
    v = Vocab(["<pad>", "<eos>", "<unk>", "a", "b"])
    x = torch.tensor([[3, 1, 4, 4], [3, 4, 0, 3], [3, 4, 3, 4]])
    assert _clean(x, v).tolist() == [[3, 1, 0, 0], [3, 4, 1, 0], [3, 4, 3, 4]]


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("style") / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    return run


def test_translate_rewrites_a_text_file_in_both_directions(style_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("the pizza at this cafe was good\n\nthe staff were rude and i love the fish they serve\n")
    assert main(["translate", str(style_run), "--input", str(src), "--out", str(tmp_path / "ab.txt")]) == 0
    assert main(["translate", str(style_run), "--input", str(src), "--out", str(tmp_path / "ba.txt"),
                 "--direction", "BtoA"]) == 0
    for name in ("ab.txt", "ba.txt"):
        lines = (tmp_path / name).read_text().splitlines()
        assert len(lines) == 2  # one line out per sentence in (the blank line is skipped)
    assert "2 sentences (BtoA)" in capsys.readouterr().out
    assert main(["sample", str(style_run), "--n", "4", "--out", str(tmp_path / "s.txt")]) == 0
    assert len((tmp_path / "s.txt").read_text().splitlines()) == 4


def test_translate_refuses_a_folder_with_one_line(style_run, tmp_path, capsys):
    out = tmp_path / "o.txt"
    assert main(["translate", str(style_run), "--input", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one sentence per line" in err[0]


def test_style_model_needs_two_styles(tmp_path, capsys):
    (tmp_path / "one.txt").write_text("a b c\nb c d\n")
    code = main(["train", "style_synth", f"data.source={tmp_path / 'one.txt'}", "train.steps=1",
                 "data.batch_size=2",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "exactly two styles" in capsys.readouterr().err


def test_a_batch_of_one_style_changes_nothing(style_run):
    from gankit.api import load_run

    model = load_run(style_run).model
    model.optimizers = model.configure_optimizers()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(3, 20, (4, 18))
    assert model.train_phase("G", {"x": x, "y": torch.zeros(4, dtype=torch.long)}, 0) == {}
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
