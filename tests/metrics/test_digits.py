import pytest
import torch

from gankit.data.builtin import load_builtin, split_indices
from gankit.errors import CheckpointError, DataError
from gankit.metrics.classifier import joint_labels
from gankit.metrics.extractors.digits import WEIGHTS, DigitExtractor, joint_probs, load_digit_net


@pytest.fixture(scope="module")
def held_out():
    blob = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    x, y, _ = load_builtin("mnist5k")
    _, test = split_indices(len(x), blob["held_out"], blob["split_seed"])
    return x[test], y[test]


def test_shipped_weights_reach_98_percent_on_the_held_out_split(held_out):
    x, y = held_out
    assert len(x) >= 500
    net = load_digit_net()
    with torch.no_grad():
        pred = torch.cat([net(part).argmax(1) for part in x.split(500)])
    assert (pred == y).double().mean() >= 0.98


def test_stacked_digits_are_read_channel_by_channel(held_out):
    x, y = held_out
    stacked = torch.cat([x[0:4], x[4:8], x[8:12]], dim=1)  # [4, 3, 28, 28]
    out = DigitExtractor(channels=3)(stacked)
    single = DigitExtractor(channels=1)(x[:12])
    assert out.features.shape == (4, 3 * single.features.shape[1]) and out.probs.shape == (4, 1000)
    torch.testing.assert_close(out.features[:, :single.features.shape[1]], single.features[0:4])
    torch.testing.assert_close(out.probs.sum(1), torch.ones(4))
    digits = single.probs.argmax(1).view(3, 4).T  # per image: (R, G, B) predictions
    assert out.probs.argmax(1).tolist() == joint_labels(digits).tolist()


def test_joint_probs_is_the_outer_product():
    p = torch.tensor([[[0.2, 0.8], [0.6, 0.4]]])  # one image, two channels, two classes
    torch.testing.assert_close(joint_probs(p), torch.tensor([[0.12, 0.08, 0.48, 0.32]]))


def test_wrong_inputs(tmp_path):
    with pytest.raises(DataError, match="28x28"):
        DigitExtractor(channels=1)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(DataError, match="C in"):
        DigitExtractor(channels=1)(torch.zeros(1, 3, 28, 28))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="missing"):
        load_digit_net(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_digit_net(tmp_path / "bad.pt")
