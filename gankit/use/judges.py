"""Judges: classifiers that read an attribute off generated images, so a direction can be
found from labelled samples and an edit can be checked.

* ``digits``: gankit's digit classifier (MNIST-5k, :mod:`gankit.nets.classifier`) on 28x28
  grey images;
* ``hair`` / ``eyes``: a small colour classifier trained here on built-in drawn faces
  (:mod:`gankit.data.faces`, whose hair and eye colours are known), faces drawn from indices
  no face set trains on, its held-out accuracy reported; trained once per size and kept in
  ``$GANKIT_CACHE`` (read back with ``weights_only=True``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

JUDGES = ("digits", "hair", "eyes")
FIRST_FACE = 50_000  # faces drawn for the judge: beyond the 10,000 of the largest default set
JUDGE_SIZE = 32


def _cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")


class FaceColourNet(nn.Module):
    """Three conv blocks, global average pooling, one head for hair and one for eye colour."""

    def __init__(self, n_hair: int, n_eyes: int, width: int = 24):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.hair, self.eyes = nn.Linear(4 * w, n_hair), nn.Linear(4 * w, n_eyes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(_resize(x, JUDGE_SIZE))
        return self.hair(h), self.eyes(h)


def _resize(x: Tensor, size: int) -> Tensor:
    return x if x.shape[-1] == size else F.interpolate(x.float(), size=(size, size), mode="bilinear",
                                                       align_corners=False, antialias=True)


def face_attributes(n: int, start: int) -> tuple[Tensor, Tensor, Tensor]:
    """Drawn faces ``start .. start+n-1`` at the judge's size, with hair and eye colour ids."""
    from gankit.data.faces import EYES, HAIR, draw_faces

    pixels, tags = draw_faces(n, start=start, size=JUDGE_SIZE)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    hair = torch.tensor([list(HAIR).index(t.split()[0].removesuffix("_hair")) for t in tags])
    eyes = torch.tensor([list(EYES).index(t.split()[1].removesuffix("_eyes")) for t in tags])
    return x, hair, eyes


def train_face_judge(n_train: int = 2000, n_test: int = 1000, epochs: int = 6,
                     seed: int = 0) -> tuple[FaceColourNet, dict[str, float]]:
    """Train the colour judge; returns it (eval mode) and its held-out accuracies."""
    from gankit.data.faces import EYES, HAIR

    torch.manual_seed(seed)
    x, hair, eyes = face_attributes(n_train + n_test, FIRST_FACE)
    net = FaceColourNet(len(HAIR), len(EYES))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    with torch.enable_grad():  # callers may sample under no_grad
        _fit(net, opt, x[:n_train], hair[:n_train], eyes[:n_train], epochs, g)
    net.eval()
    with torch.no_grad():
        h, e = net(x[n_train:])
    acc = {"hair": float((h.argmax(1) == hair[n_train:]).float().mean()),
           "eyes": float((e.argmax(1) == eyes[n_train:]).float().mean()), "held_out": n_test}
    return net, acc


def _fit(net: FaceColourNet, opt: torch.optim.Optimizer, x: Tensor, hair: Tensor, eyes: Tensor,
         epochs: int, g: torch.Generator) -> None:
    n_train = len(x)
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=g)
        for i in range(0, n_train, 64):
            idx = order[i:i + 64]
            h, e = net(x[idx])
            loss = F.cross_entropy(h, hair[idx]) + F.cross_entropy(e, eyes[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def load_face_judge() -> tuple[FaceColourNet, dict[str, float]]:
    """The cached colour judge, trained (about a minute on one thread) when missing."""
    from gankit.data.faces import EYES, HAIR

    path = _cache_dir() / "judges" / f"face_colours_{JUDGE_SIZE}.pt"
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            net = FaceColourNet(len(HAIR), len(EYES))
            net.load_state_dict(blob["state_dict"])
            return net.eval(), dict(blob["accuracy"])
        except Exception:  # noqa: BLE001 -- a damaged cache entry is retrained, not fatal
            pass
    net, acc = train_face_judge()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"state_dict": net.state_dict(), "accuracy": acc}, tmp)
    tmp.replace(path)
    return net, acc


def build_judge(name: str, out_shape: tuple[int, ...]) -> tuple[Callable[[Tensor], Tensor], list[str], dict]:
    """``(judge, class names, notes)`` of judge ``name`` for images of ``out_shape``."""
    if name == "digits":
        if tuple(out_shape) != (1, 28, 28):
            raise GankitError(f"the digits judge reads 1x28x28 digits; this generator draws {tuple(out_shape)}")
        from gankit.nets.classifier import load_digit_net

        net = load_digit_net()
        return (lambda x: net(x.float().cpu()).argmax(1)), [str(d) for d in range(10)], {}
    if name in ("hair", "eyes"):
        if out_shape[0] != 3:
            raise GankitError(f"the {name} judge reads colour faces; this generator draws {tuple(out_shape)}")
        from gankit.data.faces import EYES, HAIR

        net, acc = load_face_judge()
        head = 0 if name == "hair" else 1
        names = list(HAIR if name == "hair" else EYES)
        return (lambda x: net(x.float().cpu())[head].argmax(1)), names, {"judge_accuracy": acc}
    raise GankitError(f"unknown judge '{name}'; use one of {', '.join(JUDGES)} (or none: the conditions)")
