"""gankit's small digit classifier (trained on MNIST-5k), as a network.

The metrics read digits with it (:mod:`gankit.metrics.extractors.digits`), and CycleGAN's
optional semantic-consistency loss keeps the class of translated digits with it. The weights
ship in ``gankit/metrics/weights/digit_cnn.pt`` and are reproduced by
``scripts/train_digit_classifier.py``; the network reads one 28x28 digit in [-1, 1].
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.errors import CheckpointError

# The weights ship with the metrics, which use them most; the nets layer only reads the file.
WEIGHTS = Path(__file__).resolve().parent.parent / "metrics" / "weights" / "digit_cnn.pt"
FORMAT = "gankit-digit-cnn"


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class DigitNet(nn.Module):
    """3x3 conv blocks of ``widths`` channels (max-pooled between them), global average pool,
    dropout and a linear head. The last width is the feature dimension."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128, 256),
                 dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip((1,) + tuple(widths[:-1]), widths)):
            layers += _conv(c_in, c_out)
            layers.append(nn.MaxPool2d(2) if i < len(widths) - 1 else nn.AdaptiveAvgPool2d(1))
        self.widths = tuple(widths)
        self.feature_dim = widths[-1]
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, num_classes))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features of [N, 1, 28, 28] digits in [-1, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits [N, num_classes]."""
        return self.head(self.body(x))


def load_digit_net(path: str | Path = WEIGHTS, device: str | torch.device = "cpu") -> DigitNet:
    """The trained classifier, in eval mode (weights read with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"digit classifier weights '{path}' are missing; recreate them with "
                              "python scripts/train_digit_classifier.py")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch raises several types for a bad file
        raise CheckpointError(f"cannot read digit classifier weights '{path}' ({type(e).__name__}); "
                              "recreate them with python scripts/train_digit_classifier.py") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a gankit digit classifier file")
    net = DigitNet(num_classes=int(blob["num_classes"]), widths=tuple(blob["widths"]))
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval()
