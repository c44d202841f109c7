"""A small digit classifier trained by gankit on MNIST-5k, for FID/IS/modes on digits.

The weights ship in ``gankit/metrics/weights/digit_cnn.pt`` and are reproduced by
``scripts/train_digit_classifier.py``. The network reads one 28x28 digit in [-1, 1]; its
penultimate layer (256-d) gives the features and its softmax the 10 class probabilities.

Images with several channels (Stacked MNIST: three digits in R, G, B) are classified one
channel at a time: the features are the channels' features side by side, and the class
probabilities are the joint probabilities of the digit triple, ``p(d_R) p(d_G) p(d_B)``
over 1,000 classes numbered ``100 d_R + 10 d_G + d_B``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.errors import CheckpointError, DataError
from gankit.metrics.extractors.base import Extracted, Extractor, check_images, file_sha256
from gankit.metrics.protocol import Protocol

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "digit_cnn.pt"
FORMAT = "gankit-digit-cnn"
IMAGE_SIZE = 28


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


def joint_probs(per_channel: Tensor) -> Tensor:
    """[N, C, 10] digit probabilities -> [N, 10^C] probabilities of the digit tuple."""
    joint = per_channel[:, 0]
    for c in range(1, per_channel.shape[1]):
        joint = (joint[:, :, None] * per_channel[:, c, None, :]).reshape(joint.shape[0], -1)
    return joint


class DigitExtractor(Extractor):
    """Features and class probabilities from :class:`DigitNet`, per channel."""

    name = "digit-cnn"

    def __init__(self, channels: int = 1, device: str | torch.device = "cpu",
                 path: str | Path = WEIGHTS):
        super().__init__(device)
        if channels not in (1, 3):
            raise DataError(f"the digit classifier reads 1 or 3 digit channels, got {channels}")
        self.channels = channels
        self.net = load_digit_net(path, self.device)
        self.weights = file_sha256(path)
        self.feature_dim = self.net.feature_dim * channels
        self.num_classes = 10 ** channels

    def protocol(self) -> Protocol:
        return {"extractor": self.name, "weights": self.weights, "resize": "none",
                "input": "float", "channels": self.channels}

    def extract(self, x: Tensor) -> Extracted:
        check_images(x, "the digit classifier", (self.channels,))
        if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"the digit classifier needs 28x28 images, got {tuple(x.shape[-2:])}; "
                            "use --extractor inception for other sizes")
        n, c = x.shape[:2]
        flat = x.reshape(n * c, 1, IMAGE_SIZE, IMAGE_SIZE)
        feats = self.net.features(flat)
        probs = self.net.head(feats).softmax(-1).reshape(n, c, -1)
        return Extracted(features=feats.reshape(n, -1), probs=joint_probs(probs))
