"""``faces``: anime-style faces drawn procedurally with Pillow, so face training runs offline.

Face ``i`` of a set is drawn from its own random stream seeded by ``(FACES_SEED, i)``, so every
set is a prefix of every larger one (``faces500`` is the first 500 faces of ``faces``) and the
same on every machine. Each face varies in hair colour and style, eye colour, skin tone, face
shape, background and pose (small rotation, shift and scale), and carries a tag line such as
``red_hair blue_eyes long_hair`` that serves as a label or text condition.

Faces are drawn at twice the output size and reduced with a box filter, which anti-aliases
the edges; the built-in set is 64 px (``data.image_size`` resizes it to any smaller size).
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
from PIL import Image, ImageDraw

from gankit.errors import ConfigError

FACES_SEED = 2024
DEFAULT_COUNT = 10_000
SIZE = 64
ZOOM = 1.35  # face crops, as in the anime-face sets: the face fills most of the frame
CENTRE_Y = 0.5  # the pose pivots here and puts it at the canvas centre
NAME = re.compile(r"faces(\d*)")

HAIR = {"black": (40, 36, 48), "brown": (110, 70, 40), "blonde": (240, 210, 110),
        "red": (200, 40, 40), "orange": (240, 140, 40), "pink": (245, 150, 190),
        "purple": (130, 80, 180), "blue": (60, 100, 210), "green": (70, 160, 80),
        "silver": (200, 205, 220), "aqua": (80, 200, 210)}
EYES = {"blue": (50, 110, 230), "red": (210, 30, 40), "green": (40, 170, 70),
        "brown": (120, 70, 30), "purple": (140, 60, 200), "yellow": (230, 190, 30),
        "aqua": (40, 200, 200), "pink": (240, 100, 170)}
STYLES = ("short_hair", "long_hair", "twintails", "ponytail")
SKIN = [(255, 228, 210), (252, 216, 190), (240, 200, 170), (214, 168, 130)]
BACKGROUNDS = [(250, 250, 250), (225, 235, 250), (250, 230, 235), (230, 245, 225),
               (245, 240, 215), (60, 60, 80), (180, 200, 230), (220, 210, 240)]


def parse_name(name: str) -> int | None:
    """How many faces a source name asks for (``faces`` -> 10,000, ``faces500`` -> 500);
    None when the name is not a face set."""
    match = NAME.fullmatch(name)
    if match is None:
        return None
    count = int(match.group(1)) if match.group(1) else DEFAULT_COUNT
    if count < 1:
        raise ConfigError(f"'{name}' asks for no faces; use e.g. faces500")
    return count


def tag_line(hair: str, eyes: str, style: str) -> str:
    return f"{hair}_hair {eyes}_eyes {style}"


def all_tags() -> list[str]:
    """Every tag line a face can carry, sorted: the class names of every face set."""
    return sorted(tag_line(h, e, s) for h in HAIR for e in EYES for s in STYLES)


def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    """``rgb`` darkened (f < 1) or lightened towards white (f > 1)."""
    if f <= 1:
        return tuple(int(c * f) for c in rgb)
    return tuple(int(c + (255 - c) * (f - 1)) for c in rgb)


class _Painter:
    """Draws in unit-square coordinates on a canvas of ``s`` pixels, through the face's pose
    (rotation, scale, shift): posing the points, not the raster, costs nothing extra."""

    def __init__(self, draw: ImageDraw.ImageDraw, s: int, angle: float = 0.0, scale: float = 1.0,
                 shift: tuple[float, float] = (0.0, 0.0)):
        self.d, self.s, self.scale = draw, s, scale
        self.cos, self.sin = math.cos(angle) * scale * s, math.sin(angle) * scale * s
        self.tx, self.ty = (0.5 + shift[0]) * s, (0.5 + shift[1]) * s

    def p(self, pts):
        c, si, tx, ty = self.cos, self.sin, self.tx, self.ty
        return [(c * (x - 0.5) - si * (y - CENTRE_Y) + tx, si * (x - 0.5) + c * (y - CENTRE_Y) + ty)
                for x, y in pts]

    def ellipse(self, cx, cy, rx, ry, fill, outline=None, width=1):
        self.polygon(_arc(cx, cy, rx, ry, 0.0, 2 * math.pi, 20), fill, outline, width)

    def polygon(self, pts, fill, outline=None, width=1):
        self.d.polygon(self.p(pts), fill=fill, outline=outline, width=width)

    def line(self, pts, fill, width):
        self.d.line(self.p(pts), fill=fill, width=max(1, int(width * self.s * self.scale)), joint="curve")


def _arc(cx, cy, rx, ry, a0, a1, n=12):
    step = (a1 - a0) / (n - 1)
    return [(cx + rx * math.cos(a0 + k * step), cy + ry * math.sin(a0 + k * step)) for k in range(n)]


def _face_outline(cx, cy, rx, chin, point):
    """Rounded forehead, cheeks that taper into a chin ``chin`` below ``cy`` (pointier as
    ``point`` grows)."""
    top = _arc(cx, cy, rx, rx * 1.05, math.pi, 2 * math.pi, 14)
    ts = [0.1 + 0.9 * k / 7 for k in range(8)]
    right = [(cx + rx * (1 - 0.15 * t - (0.5 + 0.3 * point) * t * t), cy + chin * t) for t in ts]
    left = [(2 * cx - x, y) for x, y in reversed(right)]
    return top + right[:-1] + [(cx, cy + chin + 0.01)] + left[1:]


def _eye(pt: _Painter, x, y, colour, w, h, flip):
    pt.ellipse(x, y, w, h, fill=(255, 255, 255))
    pt.ellipse(x, y + 0.1 * h, 0.8 * w, 0.85 * h, fill=colour)
    pt.ellipse(x, y + 0.25 * h, 0.8 * w, 0.55 * h, fill=_shade(colour, 1.35))
    pt.ellipse(x, y + 0.05 * h, 0.4 * w, 0.45 * h, fill=_shade(colour, 0.35))
    pt.ellipse(x - flip * 0.35 * w, y - 0.35 * h, 0.3 * w, 0.25 * h, fill=(255, 255, 255))
    # the heavy upper lash line, swept out at the outer corner
    lash = _arc(x, y, 1.1 * w, 1.05 * h, math.pi * 1.05, math.pi * 1.95, 8)
    outer = (x + flip * 1.45 * w, y - 0.1 * h)
    pt.line(lash + [outer] if flip > 0 else [outer] + lash, (25, 20, 30), 0.022)


def _back_hair(pt: _Painter, style, cx, cy, rx, hair, rng):
    dark = _shade(hair, 0.75)
    pt.ellipse(cx, cy - 0.02, rx + 0.07, rx * 1.2 + 0.05, fill=hair)
    if style == "long_hair":
        bottom = 0.95 + rng.uniform(0, 0.1)
        pt.polygon([(cx - rx - 0.07, cy), (cx - rx - 0.1, bottom), (cx + rx + 0.1, bottom),
                    (cx + rx + 0.07, cy)], fill=hair, outline=dark)
    elif style == "twintails":
        for side in (-1, 1):
            pt.ellipse(cx + side * (rx + 0.12), cy + 0.18, 0.08, 0.24, fill=hair, outline=dark)
    elif style == "ponytail":
        side = rng.choice((-1, 1))
        pt.ellipse(cx + side * (rx + 0.1), cy - 0.05, 0.1, 0.2, fill=hair, outline=dark)


def _bangs(pt: _Painter, cx, cy, rx, hair, rng):
    """Front hair: a cap over the forehead ending in spikes, and locks beside the cheeks."""
    top = _arc(cx, cy - 0.02, rx + 0.06, rx * 1.2 + 0.05, math.pi * 0.95, math.pi * 2.05, 14)
    spikes = int(rng.integers(4, 7))
    base, tip = cy - 0.11 + rng.uniform(-0.02, 0.02), cy - 0.02 + rng.uniform(-0.02, 0.02)
    xs = [cx + rx - 0.03 - (2 * rx - 0.06) * k / (2 * spikes) for k in range(2 * spikes + 1)]
    edge = [(x, tip if k % 2 else base) for k, x in enumerate(xs)]
    right_lock = [(cx + rx + 0.05, cy + 0.14), (cx + rx - 0.03, cy + 0.02)]
    left_lock = [(cx - rx + 0.03, cy + 0.02), (cx - rx - 0.05, cy + 0.14)]
    pts = top + right_lock + edge + left_lock
    pt.polygon(pts, fill=hair, outline=_shade(hair, 0.6), width=2)
    shine = _arc(cx, cy - 0.05, rx * 0.75, rx * 0.8, math.pi * 1.25, math.pi * 1.75, 8)
    pt.line(shine, _shade(hair, 1.45), 0.025)


def draw_face(rng: np.random.Generator, size: int = SIZE) -> tuple[Image.Image, str]:
    """One face (RGB, ``size`` px) and its tag line, drawn from ``rng``."""
    hair_name, eye_name = rng.choice(list(HAIR)), rng.choice(list(EYES))
    style = STYLES[int(rng.integers(len(STYLES)))]
    hair, eyes = HAIR[hair_name], EYES[eye_name]
    skin = SKIN[int(rng.integers(len(SKIN)))]
    bg = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    s = 2 * size  # supersampled; reduced at the end
    canvas = Image.new("RGB", (s, s), bg)
    # a small random pose: rotation up to 8 degrees, scale 0.92-1.08 (of ZOOM), shift up to 4%
    pt = _Painter(ImageDraw.Draw(canvas), s, math.radians(rng.uniform(-8, 8)),
                  ZOOM * rng.uniform(0.92, 1.08), tuple(rng.uniform(-0.04, 0.04, 2)))
    cx, cy = 0.5, 0.45
    rx = rng.uniform(0.2, 0.25)
    chin, point = rng.uniform(0.25, 0.31), rng.uniform(0, 1)
    _back_hair(pt, style, cx, cy, rx, hair, rng)
    cloth = tuple(int(c) for c in rng.integers(40, 230, 3))
    pt.polygon([(cx - 0.06, cy + 0.2), (cx + 0.06, cy + 0.2), (cx + 0.07, cy + 0.4), (cx - 0.07, cy + 0.4)],
               fill=_shade(skin, 0.85))
    pt.polygon([(0.1, 1.05), (cx - 0.08, cy + 0.36), (cx + 0.08, cy + 0.36), (0.9, 1.05)], fill=cloth,
               outline=_shade(cloth, 0.6))
    pt.polygon(_face_outline(cx, cy, rx, chin, point), fill=skin, outline=(90, 50, 40), width=2)
    ey, ex = cy + 0.06, rx * 0.47
    w, h = rng.uniform(0.045, 0.055), rng.uniform(0.055, 0.07)
    for flip in (-1, 1):
        _eye(pt, cx + flip * ex, ey, eyes, w, h, flip)
        brow = [(cx + flip * (ex - 0.04), ey - h - 0.03), (cx + flip * (ex + 0.05), ey - h - 0.04)]
        pt.line(brow, _shade(hair, 0.5), 0.012)
        pt.ellipse(cx + flip * (ex + 0.01), ey + h + 0.035, 0.035, 0.012, fill=(245, 160, 160))
    pt.line([(cx + 0.005, cy + 0.15), (cx, cy + 0.16)], (160, 100, 90), 0.01)
    mouth_y = cy + 0.2 + 0.02 * point
    if rng.random() < 0.5:
        pt.ellipse(cx, mouth_y, 0.025, 0.014, fill=(170, 50, 60))
    else:
        pt.line(_arc(cx, mouth_y - 0.02, 0.03, 0.02, 0.2 * math.pi, 0.8 * math.pi, 5), (120, 50, 50), 0.01)
    _bangs(pt, cx, cy, rx, hair, rng)
    return canvas.resize((size, size), Image.BOX), tag_line(hair_name, eye_name, style)


def draw_faces(n: int, seed: int = FACES_SEED, size: int = SIZE, start: int = 0) -> tuple[np.ndarray, list[str]]:
    """Faces ``start .. start+n-1`` as ``uint8 [n, size, size, 3]`` and their tag lines."""
    if n < 0 or size < 8:
        raise ConfigError(f"need n >= 0 faces of at least 8 px, got n={n}, size={size}")
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    tags = []
    for k in range(n):
        img, tag = draw_face(np.random.default_rng([seed, start + k]), size)
        out[k] = np.asarray(img)
        tags.append(tag)
    return out, tags


def load_faces(n: int, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The first ``n`` faces as ``(float32 [n, 3, size, size] in [-1, 1], int64 tag index,
    every tag line)``; the label indexes :func:`all_tags`."""
    pixels, tags = draw_faces(n, FACES_SEED, size)
    names = all_tags()
    index = {t: i for i, t in enumerate(names)}
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    y = torch.tensor([index[t] for t in tags], dtype=torch.int64)
    return x.contiguous(), y, names


def write_faces(out, n: int, start: int = 0, size: int = SIZE) -> int:
    """Write faces ``start .. start+n-1`` as PNGs and ``tags.txt`` (a real-image folder for
    ``gankit eval`` or a tagged training folder); returns how many were written."""
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pixels, tags = draw_faces(n, FACES_SEED, size, start)
    lines = []
    for k, (img, tag) in enumerate(zip(pixels, tags)):
        name = f"{start + k:06d}.png"
        Image.fromarray(img).save(out / name)
        lines.append(f"{name}\t{tag}")
    (out / "tags.txt").write_text("\n".join(lines) + "\n")
    return n


def main(argv: list[str] | None = None) -> int:
    """``python -m gankit.data.faces --n 1000 --start 500 --out real/``: write faces as PNGs."""
    import argparse

    parser = argparse.ArgumentParser(description="write drawn faces as PNGs plus tags.txt")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--start", type=int, default=0, help="index of the first face")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    print(f"wrote {write_faces(args.out, args.n, args.start, args.size)} faces to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
