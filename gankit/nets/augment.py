"""Differentiable augmentation of D's inputs for small data sets (``train.augment``).

Both kinds transform real and generated images alike before D sees them, in D's phase and
in G's, and are differentiable, so G learns through them:

* ``diffaugment`` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): the policy colour + translation + cutout, applied to every image;
* ``ada-lite`` (``ada`` is the same thing under its old name): the adaptive controller of ADA
  (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data") over a
  reduced pipeline. Flips, 90-degree rotations, translation, isotropic scaling, one rotation
  and brightness/contrast/saturation, each applied to an image with probability ``p``. ``p``
  follows the overfitting heuristic ``r_t = E[sign(D(real) - t)]``, where ``t`` is the
  objective's decision threshold (0 for the logistic and hinge losses, 0.5 for LSGAN's 0/1
  targets; a WGAN critic has none, so ADA refuses it): every 4 D steps ``p`` moves up when
  ``r_t`` is above the target (0.6) and down otherwise, by (images seen) /
  (``ada_kimg`` * 1000), so it could cross [0, 1] in ``ada_kimg`` thousand images (500, the
  paper's default; 100 is its setting for resuming from a trained net).

  It is not the paper's pipeline, hence the name: it lacks anisotropic scaling, fractional
  translation, luma flip and hue rotation; it translates bilinearly instead of by whole
  pixels, scales contrast around each image's mean instead of 0, rotates once instead of
  twice and does no anti-aliased (upfirdn) resampling. Completing it would mean the paper's
  filtered geometric pipeline, costly on the CPU this toolkit targets; the controller, the
  part that decides how much to augment, is the paper's.

Random numbers come from torch's global generator (saved in checkpoints), and ``p`` and its
accumulators are buffers of the model (saved with its weights), so a resumed run augments
exactly as an uninterrupted one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import ConfigError

AUGMENTS = ("none", "diffaugment", "ada-lite", "ada")  # ada: ada-lite's old name
ADA_NAMES = ("ada-lite", "ada")
ADA_KIMG = 500.0  # the paper's default speed of p
ADA_INTERVAL = 4  # D steps between adjustments of p


# ---- DiffAugment ---------------------------------------------------------------------------------
def _per_sample(x: Tensor) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def rand_colour(x: Tensor) -> Tensor:
    """Brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5], one draw of each per image."""
    x = x + (_per_sample(x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_per_sample(x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_sample(x) + 0.5) + mean


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its size, filling with zeros."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    # source pixel of each output pixel, in a copy padded by one zero pixel all round
    gy = (torch.arange(h, device=x.device).view(1, h, 1) + ty).clamp(-1, h) + 1
    gx = (torch.arange(w, device=x.device).view(1, 1, w) + tx).clamp(-1, w) + 1
    index = (gy * (w + 2) + gx).reshape(n, 1, h * w).expand(n, c, h * w)
    padded = F.pad(x, [1, 1, 1, 1]).reshape(n, c, -1)
    return padded.gather(2, index).reshape(n, c, h, w)


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a square of ``ratio`` times the image size (16x16 at 32 px) in each image; its
    centre is uniform over [0, H] x [0, W] (DiffAugment's reference: for an even side the hole
    spans rows ``c - side/2 .. c + side/2 - 1``, so a centre of 0 or H leaves half of it in)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - (cy - ch // 2)  # row within the hole
    xs = torch.arange(w, device=x.device).view(1, 1, w) - (cx - cw // 2)
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


class DiffAugment(nn.Module):
    """colour, translation, cutout on every image (DiffAugment's strongest policy)."""

    adaptive = False

    def forward(self, x: Tensor) -> Tensor:
        return rand_cutout(rand_translation(rand_colour(x)))


# ---- ADA ------------------------------------------------------------------------------------------
def _maybe(p: Tensor, n: int, device) -> Tensor:
    """One Bernoulli(p) draw per image, as a float [n] mask."""
    return (torch.rand(n, device=device) < p).float()


def _geometry(x: Tensor, p: Tensor) -> Tensor:
    """Flip, rotate by 90 degrees, translate, scale and rotate, each with probability p,
    composed into one affine map per image and applied with reflection at the borders."""
    n, dev = x.shape[0], x.device
    flip = 1 - 2 * _maybe(p, n, dev) * (torch.rand(n, device=dev) < 0.5).float()
    quarter = _maybe(p, n, dev) * torch.randint(0, 4, (n,), device=dev).float()
    shift = _maybe(p, n, dev)[:, None] * (torch.rand(n, 2, device=dev) * 0.25 - 0.125) * 2
    scale = torch.exp2(_maybe(p, n, dev) * torch.randn(n, device=dev) * 0.2)
    # ADA rotates with 1 - sqrt(1 - p) twice (before and after the scaling); one draw here
    angle = _maybe(p, n, dev) * (torch.rand(n, device=dev) * 2 - 1) * math.pi
    theta = angle + quarter * math.pi / 2
    cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
    mat = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                       torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1).to(x.dtype)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _colour(x: Tensor, p: Tensor) -> Tensor:
    """Brightness, contrast and saturation changes, each with probability p."""
    n, dev = x.shape[0], x.device
    shape = (n, 1, 1, 1)
    x = x + (_maybe(p, n, dev) * torch.randn(n, device=dev) * 0.2).view(shape).to(x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.exp2(_maybe(p, n, dev) * torch.randn(n, device=dev) * 0.5).view(shape)
    x = (x - mean) * contrast.to(x.dtype) + mean
    if x.shape[1] == 3:
        grey = x.mean(dim=1, keepdim=True)
        sat = torch.exp2(_maybe(p, n, dev) * torch.randn(n, device=dev)).view(shape)
        x = (x - grey) * sat.to(x.dtype) + grey
    return x


class AdaptiveAugment(nn.Module):
    """ADA's augmentation with its adaptive probability ``p`` (a buffer, so checkpointed)."""

    adaptive = True

    def __init__(self, target: float = 0.6, kimg: float = ADA_KIMG, interval: int = ADA_INTERVAL):
        super().__init__()
        if not 0.0 < target < 1.0:
            raise ConfigError(f"train.ada_target must be between 0 and 1, got {target}")
        if kimg <= 0:
            raise ConfigError(f"train.ada_kimg must be positive, got {kimg}")
        self.target, self.kimg, self.interval = target, kimg, interval
        self.register_buffer("p", torch.zeros(()))
        # sum of sign(D(real)), images seen, D steps seen since the last adjustment
        self.register_buffer("acc", torch.zeros(3, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        if float(self.p) <= 0.0:  # the start of training: nothing to do, no draws spent
            return x
        return _colour(_geometry(x, self.p), self.p)

    @torch.no_grad()
    def observe(self, sign_sum: Tensor, n: int) -> None:
        """Add one D step's ``sum(sign(D(real) - threshold))`` over ``n`` real images; every
        ``interval`` steps move ``p`` by ``sign(r_t - target) * images / (kimg * 1000)``."""
        self.acc += torch.stack([sign_sum.double().reshape(()), self.acc.new_tensor(n),
                                 self.acc.new_tensor(1.0)])
        if int(self.acc[2]) < self.interval:
            return
        r_t = self.acc[0] / self.acc[1]
        step = torch.sign(r_t - self.target) * self.acc[1] / (self.kimg * 1000)
        self.p.copy_((self.p + step.to(self.p.dtype)).clamp(0.0, 1.0))
        self.acc.zero_()


def build_augment(name: str, target: float = 0.6, kimg: float = ADA_KIMG) -> nn.Module | None:
    """The augmentation ``train.augment`` names, or None for ``none``."""
    if name == "none":
        return None
    if name == "diffaugment":
        return DiffAugment()
    if name in ADA_NAMES:
        return AdaptiveAugment(target, kimg)
    raise ConfigError(f"train.augment must be one of {', '.join(AUGMENTS)}; got '{name}'")
