"""Latent directions and edits along them, for every latent generator.

* ``sefa`` (Shen and Zhou 2021, closed form): the latent-facing weight ``A`` that the net
  declares (the first layer for z nets, the stacked style affines for StyleGAN2-style nets)
  moves its output by ``A d`` for a step ``d``; the unit ``d`` that move it most are the
  eigenvectors of ``A^T A``, largest eigenvalue first.
* ``pca`` (GANSpace, Harkonen et al. 2020): the principal axes of ``w`` over sampled
  latents; for a net without a mapping net, the principal axes of the first layer's
  activations ``A z`` over sampled ``z``, each carried back to ``z`` by regressing ``z`` on
  its principal coordinate (as GANSpace does for BigGAN).
* ``labels`` (InterFaceGAN, Shen et al. 2020): sampled latents labelled by a judge (a
  classifier of the images, or the condition a conditional mapping net was given) and a
  linear classifier per class (one vs rest, scikit-learn's logistic regression); the
  direction is its unit normal.

A direction set holds unit vectors in one latent space with a name each and a *scale*:
the standard deviation of sampled latents along the direction, so an edit of strength
``s`` moves a latent by ``s`` standard deviations whatever the method. Sets are saved as
``.npz`` (plain arrays, read without pickle) or ``.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from gankit.errors import ConfigError, DataError, GankitError
from gankit.use.generator import GeneratorHandle

METHODS = ("sefa", "pca", "labels")
Judge = Callable[[Tensor], Tensor]  # images [B, C, H, W] in [-1, 1] -> class ids [B]


@dataclass
class Directions:
    space: str  # z | w
    method: str
    names: list[str]
    vectors: Tensor  # [k, dim], unit rows
    scales: Tensor  # [k]: std of sampled latents along each
    scores: Tensor  # [k]: eigenvalue (sefa), variance (pca), held-out balanced accuracy (labels)
    meta: dict = field(default_factory=dict)

    def get(self, name: str) -> tuple[Tensor, float]:
        """``(unit vector, scale)`` of the direction called ``name``; GankitError listing the names."""
        if name not in self.names:
            raise GankitError(f"no direction '{name}' in this set; it has {', '.join(self.names[:30])}")
        i = self.names.index(name)
        return self.vectors[i], float(self.scales[i])

    def save(self, path: Path) -> Path:
        """Write ``.npz`` or ``.json`` (by the suffix) atomically."""
        path = Path(path)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        if path.suffix == ".json":
            tmp.write_text(json.dumps({"space": self.space, "method": self.method, "meta": self.meta,
                                       "directions": [{"name": n, "scale": float(s), "score": float(sc),
                                                       "vector": v.tolist()} for n, v, s, sc in
                                                      zip(self.names, self.vectors, self.scales, self.scores)]}))
        elif path.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, space=np.array(self.space), method=np.array(self.method),
                         names=np.array(self.names, dtype=str), vectors=self.vectors.numpy(),
                         scales=self.scales.numpy(), scores=self.scores.numpy(),
                         meta=np.array(json.dumps(self.meta)))
        else:
            raise ConfigError(f"directions are saved as .npz or .json, not '{path.suffix}'")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "Directions":
        """Read a set written by :meth:`save`; DataError for anything else."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"directions file '{path}' does not exist")
        try:
            if path.suffix == ".json":
                d = json.loads(path.read_text())
                rows = d["directions"]
                return cls(d["space"], d["method"], [r["name"] for r in rows],
                           torch.tensor([r["vector"] for r in rows], dtype=torch.float32),
                           torch.tensor([r["scale"] for r in rows]), torch.tensor([r["score"] for r in rows]),
                           d.get("meta", {}))
            with np.load(path, allow_pickle=False) as z:
                return cls(str(z["space"]), str(z["method"]), [str(n) for n in z["names"]],
                           torch.from_numpy(z["vectors"]).float(), torch.from_numpy(z["scales"]).float(),
                           torch.from_numpy(z["scores"]).float(), json.loads(str(z["meta"])))
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise DataError(f"'{path}' is not a gankit directions file ({type(e).__name__}: {e})") from None


# ---- finding directions -------------------------------------------------------------------------
def sefa_matrix(handle: GeneratorHandle) -> tuple[str, Tensor]:
    """``(space, A^T A)`` of the latent-facing weight the net declares."""
    space, a = handle.latent_weight()
    return space, (a.t() @ a).double()


def sefa(handle: GeneratorHandle, k: int = 10, n_scale: int = 2000, seed: int = 0) -> Directions:
    """The ``k`` unit eigenvectors of ``A^T A`` with the largest eigenvalues."""
    space, m = sefa_matrix(handle)
    values, vectors = torch.linalg.eigh(m)  # ascending
    order = torch.argsort(values, descending=True)[:k]
    v = vectors[:, order].t().float().contiguous()
    return Directions(space, "sefa", [f"sefa{i}" for i in range(len(v))], v,
                      _scales(handle, space, v, n_scale, seed), values[order].float())


def _samples(handle: GeneratorHandle, space: str, n: int, seed: int) -> Tensor:
    """``n`` seeded latents in ``space`` (z, or w mapped under the classes in turn)."""
    with torch.no_grad():
        z = handle.sample_z(n, seed)
        return z if space == "z" else handle.mapping(z, handle.conditions(n))


def _scales(handle: GeneratorHandle, space: str, v: Tensor, n: int, seed: int) -> Tensor:
    lat = _samples(handle, space, n, seed).float().cpu()
    return (lat @ v.t()).std(0)


def pca(handle: GeneratorHandle, k: int = 10, n: int = 5000, seed: int = 0) -> Directions:
    """GANSpace: principal axes of w, or of the first layer's activations carried to z."""
    space = handle.working_space
    lat = _samples(handle, space, n, seed).double().cpu()
    if space == "w":
        centred = lat - lat.mean(0)
        _, s, vt = torch.linalg.svd(centred, full_matrices=False)
        v, var = vt[:k], s[:k] ** 2 / (n - 1)
    else:
        _, a = handle.latent_weight()
        zc = lat - lat.mean(0)
        # the centred activations zc A^T = Q (R A^T) with zc = QR: the SVD of the small
        # [z_dim, out] factor R A^T gives their principal axes without forming [n, out]
        _, r = torch.linalg.qr(zc)
        _, s, vt = torch.linalg.svd(r @ a.double().t(), full_matrices=False)
        coords = zc @ (a.double().t() @ vt[:k].t())  # [n, k] principal coordinates
        # regress z on each coordinate alone: the z direction that moves along that axis
        v = (coords.t() @ zc) / coords.square().sum(0)[:, None]
        v = v / v.norm(dim=1, keepdim=True)
        var = s[:k] ** 2 / (n - 1)
    v = v.float().contiguous()
    return Directions(space, "pca", [f"pca{i}" for i in range(len(v))], v,
                      (lat.float() @ v.t()).std(0), var.float())


def labels(handle: GeneratorHandle, judge: Judge | None, class_names: list[str], n: int = 2000,
           seed: int = 0, held_out: float = 0.25, min_count: int = 10, batch: int = 250) -> Directions:
    """InterFaceGAN: a linear classifier per class on ``n`` latents labelled by ``judge``
    (or, with ``judge=None``, by the condition each latent was mapped under). Classes with
    fewer than ``min_count`` latents of either side are left out; a direction's score is the
    classifier's balanced accuracy (the mean of its hit rates on the class and on the rest)
    on the ``held_out`` share of the latents."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    space = handle.working_space
    with torch.no_grad():
        z = handle.sample_z(n, seed)
        c = handle.conditions(n)
        lat = z if space == "z" else handle.mapping(z, c)
        if judge is None:
            if c is None or space == "z":
                raise GankitError("labels from the conditions need a conditional generator with a mapping "
                                  "net (in z the condition is not part of the latent); give a --judge")
            y = torch.arange(n) % len(class_names)  # conditions() cycles through the classes
        else:
            y = torch.cat([judge(handle.synthesize(lat[i:i + batch], None if c is None else c[i:i + batch],
                                                   space)).cpu() for i in range(0, n, batch)])
    x, y = lat.float().cpu().numpy(), y.cpu().numpy()
    cut = int(n * (1 - held_out))
    names, vectors, scores = [], [], []
    for k, name in enumerate(class_names):
        target = y == k
        if min(target[:cut].sum(), (~target[:cut]).sum()) < min_count:
            continue
        clf = LogisticRegression(max_iter=2000, class_weight="balanced").fit(x[:cut], target[:cut])
        normal = torch.from_numpy(clf.coef_[0]).float()
        names.append(name)
        vectors.append(normal / normal.norm())
        scores.append(float(balanced_accuracy_score(target[cut:], clf.predict(x[cut:]))))
    if not names:
        raise DataError(f"the judge found no class among {n} samples with {min_count}+ of each side; "
                        f"draw more (--samples)")
    v = torch.stack(vectors)
    counts = {nm: int((y == class_names.index(nm)).sum()) for nm in names}
    return Directions(space, "labels", names, v, (lat.float().cpu() @ v.t()).std(0), torch.tensor(scores),
                      {"counts": counts, "samples": n})


def conditioned(vector: Tensor, keep: Tensor) -> Tensor:
    """InterFaceGAN's conditional manipulation: ``vector`` with its components along the
    directions ``keep [k, dim]`` (the attributes an edit must leave alone) removed, unit
    again; moving along it changes the latent's coordinate on none of them."""
    q, _ = torch.linalg.qr(keep.double().t())  # an orthonormal basis of their span
    v = vector.double() - q @ (q.t() @ vector.double())
    if float(v.norm()) < 1e-6:
        raise GankitError("the direction lies in the span of the directions to keep; nothing is left")
    return (v / v.norm()).to(vector.dtype)


# ---- edits ----------------------------------------------------------------------------------------
def parse_strengths(text: str) -> list[float]:
    """``-3:3:7`` (start:stop:count) or ``-2,0,2`` -> the strengths."""
    try:
        if ":" in text:
            a, b, n = text.split(":")
            return torch.linspace(float(a), float(b), int(n)).tolist()
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--strength takes START:STOP:COUNT or a,b,c; got '{text}'") from None


def parse_seeds(text: str) -> list[int]:
    """``0-7``, ``1,5,9`` or a mix (``0-3,10``) -> the seeds."""
    seeds = []
    try:
        for part in text.split(","):
            a, _, b = part.partition("-") if not part.startswith("-") else (part, "", "")
            seeds += list(range(int(a), int(b) + 1)) if b else [int(a)]
    except ValueError:
        raise ConfigError(f"seeds look like 0-7 or 1,5,9; got '{text}'") from None
    if not seeds:
        raise ConfigError("no seeds given")
    return seeds


def edit_grid(handle: GeneratorHandle, latents: Tensor, space: str, c: Tensor | None, direction: Tensor,
              scale: float, strengths: list[float]) -> Tensor:
    """Images ``[rows, len(strengths), C, H, W]``: each latent (z, w or w+) moved by
    ``strength * scale`` along the unit ``direction`` (in every style layer for w+)."""
    rows = len(latents)
    d = direction.to(latents)
    steps = torch.tensor(strengths, dtype=latents.dtype, device=latents.device) * scale
    moved = latents[:, None] + steps.reshape(1, -1, *([1] * (latents.dim() - 1))) * d
    cc = None if c is None else c.repeat_interleave(len(strengths), 0)
    with torch.no_grad():
        x = handle.synthesize(moved.reshape(rows * len(strengths), *latents.shape[1:]), cc, space)
    return x.float().cpu().reshape(rows, len(strengths), *x.shape[1:])


def check_directions_fit(handle: GeneratorHandle, dirs: Directions) -> None:
    """ConfigError when a direction set was found for another net's latent space."""
    spaces = handle.latent_spaces()
    if dirs.space not in spaces or spaces[dirs.space].shape[-1] != dirs.vectors.shape[1]:
        raise ConfigError(f"these directions live in a {dirs.vectors.shape[1]}-dimensional {dirs.space} "
                          f"space; this generator's spaces are "
                          + ", ".join(f"{k} {v.shape}" for k, v in spaces.items()))
