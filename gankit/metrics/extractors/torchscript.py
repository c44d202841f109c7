"""Any TorchScript model as an extractor.

The model receives the batch as it is (images [N, C, H, W] in [-1, 1], at the data's size;
any resizing is the model's job) and returns one of:

* a tensor [N, F]: features;
* a tuple ``(features, logits)``;
* a dict with ``features`` and/or ``logits`` or ``probs``.

Logits are turned into probabilities with a softmax, for IS, the quality/diversity view
and mode counting.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.extractors.base import Extracted, Extractor, file_sha256, load_torchscript
from gankit.metrics.protocol import Protocol


def _parse_output(out: object) -> Extracted:
    if isinstance(out, Tensor):
        return Extracted(features=out)
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return Extracted(features=out[0], probs=out[1].softmax(-1))
    if isinstance(out, dict) and ({"features", "logits", "probs"} & set(out)):
        probs = out["probs"] if "probs" in out else (
            out["logits"].softmax(-1) if "logits" in out else None)
        return Extracted(features=out.get("features"), probs=probs)
    raise DataError("a TorchScript extractor must return a tensor of features, a tuple "
                    "(features, logits) or a dict with 'features' and/or 'logits'/'probs'")


class TorchScriptExtractor(Extractor):
    """A user's TorchScript network; its protocol is its file's hash."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.path = Path(path)
        self.model = load_torchscript(self.path, self.device, "extractor")
        self.weights = file_sha256(self.path)
        self.name = f"torchscript:{self.path.name}"
        self.feature_dim = 0  # known after the first batch
        self.num_classes = 0

    def protocol(self) -> Protocol:
        return {"extractor": self.name, "weights": self.weights, "resize": "model's own",
                "input": "float"}

    def extract(self, x: Tensor) -> Extracted:
        out = _parse_output(self.model(x))
        for name, t in (("features", out.features), ("probs", out.probs)):
            if t is not None and (t.ndim != 2 or t.shape[0] != x.shape[0]):
                raise DataError(f"'{self.path}' returned {name} of shape {tuple(t.shape)}; "
                                f"expected [{x.shape[0]}, dim]")
        if out.features is not None:
            self.feature_dim = out.features.shape[1]
        if out.probs is not None:
            self.num_classes = out.probs.shape[1]
        return out
