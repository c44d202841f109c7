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
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.extractors.base import Extracted, Extractor, check_images, file_sha256
from gankit.nets.classifier import FORMAT, WEIGHTS, DigitNet, load_digit_net  # noqa: F401 (re-exported)
from gankit.metrics.protocol import Protocol

IMAGE_SIZE = 28


def joint_probs(per_channel: Tensor) -> Tensor:
    """[N, C, 10] digit probabilities -> [N, 10^C] probabilities of the digit tuple."""
    joint = per_channel[:, 0]
    for c in range(1, per_channel.shape[1]):
        joint = (joint[:, :, None] * per_channel[:, c, None, :]).reshape(joint.shape[0], -1)
    return joint


class DigitExtractor(Extractor):
    """Features and class probabilities from :class:`DigitNet`, per channel."""

    name = "digit-cnn"
    fid_key = "fid_digits"  # never to be read as (Inception) FID

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
