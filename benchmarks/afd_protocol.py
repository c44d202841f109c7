"""AFD's detector input size, and the detector checked against an independent run.

For each size, the share of images in which the animeface detector finds a face, when every
image is resized to that size (Pillow bicubic): ``--n`` real faces of ``--folder`` (the first
files in sorted order, at their own size, then also first reduced to 64 and 32 px as a
generator at that size would draw them) and ``--n-drawn`` built-in drawn faces (drawn at 64).
The size where real faces score highest is AFD's protocol size (gankit.metrics.anime).

With ``--reference-python`` (a Python with Pillow 11.3 and animeface, where the wheel's own
``animeface.detect`` still works), the same images at the same sizes are detected there too,
by the wheel's own front end and Pillow 11.3's resize, and the two rates are printed side by
side: they must agree within 0.01.

    python -m venv /tmp/pil11 && /tmp/pil11/bin/pip install pillow==11.3.0 animeface numpy
    python benchmarks/afd_protocol.py --folder /work/data/faces --reference-python /tmp/pil11/bin/python
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from report import BENCHMARKS_MD, write_section

SECTION = "## AFD: detector input size"
SIZES = (64, 96, 128, 160, 192, 256)
# the reference: the wheel's own front end under an older Pillow; no gankit there
REFERENCE = """
import sys, numpy as np, animeface
from PIL import Image
arr = np.load(sys.argv[1])
for size in map(int, sys.argv[2].split(",")):
    hits = sum(1 for a in arr if animeface.detect(Image.fromarray(a).resize((size, size), Image.BICUBIC)))
    print(size, hits / len(arr), flush=True)
"""


def real_faces(folder: Path, n: int, reduce_to: int = 0) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    images = [Image.open(p).convert("RGB") for p in files]
    if reduce_to:
        images = [im.resize((reduce_to, reduce_to), Image.BICUBIC) for im in images]
    return np.stack([np.asarray(im) for im in images])


def rates(arr: np.ndarray, sizes) -> dict[int, float]:
    from gankit.metrics import anime

    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    return {s: anime.anime_face_rate(x, anime.load_detector(s)) if s >= 64 else float("nan")
            for s in sizes}


def reference_rates(python: str, arr: np.ndarray, sizes) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", arr)
        out = subprocess.run([python, "-c", REFERENCE, str(Path(tmp) / "x.npy"),
                              ",".join(map(str, sizes))], capture_output=True, text=True, check=True)
    return {int(a): float(b) for a, b in (line.split() for line in out.stdout.splitlines())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--n-drawn", type=int, default=200)
    p.add_argument("--reference-python", default="")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    from gankit.data.faces import draw_faces

    sets = {f"real ({a.folder.name}, own size)": real_faces(a.folder, a.n),
            "real, reduced to 64 px first": real_faces(a.folder, a.n, 64),
            "real, reduced to 32 px first": real_faces(a.folder, a.n, 32),
            "built-in drawn faces (64 px)": draw_faces(a.n_drawn)[0]}
    lines = ["| images | n | " + " | ".join(f"{s} px" for s in SIZES) + " |",
             "| --- | --- |" + " --- |" * len(SIZES)]
    compare = []
    for name, arr in sets.items():
        ours = rates(arr, SIZES)
        lines.append(f"| {name} | {len(arr)} | " + " | ".join(f"{ours[s]:.3f}" for s in SIZES) + " |")
        print(lines[-1], flush=True)
        if a.reference_python and "reduced" not in name:
            ref = reference_rates(a.reference_python, arr, SIZES)
            for s in SIZES:
                compare.append(f"| {name} | {s} | {ours[s]:.3f} | {ref[s]:.3f} | {abs(ours[s] - ref[s]):.3f} |")
            print("\n".join(compare[-len(SIZES):]), flush=True)
    text = (f"{SECTION}\n\nShare of images with a detected face when each is resized to the "
            "given size (Pillow bicubic) before detection.\n\n    python benchmarks/afd_protocol.py "
            f"--folder {a.folder} --n {a.n} --n-drawn {a.n_drawn}"
            f"{' --reference-python ' + a.reference_python if a.reference_python else ''}\n\n"
            + "\n".join(lines) + "\n")
    if compare:
        text += ("\nThe same detector run independently (the animeface wheel's own front end "
                 "with Pillow 11.3, where it still works), same images, same sizes:\n\n"
                 "| images | size | gankit (Pillow 13) | animeface.detect (Pillow 11.3) | difference |\n"
                 "| --- | --- | --- | --- | --- |\n" + "\n".join(compare) + "\n")
    print(text)
    if not a.no_write:
        write_section(BENCHMARKS_MD, text)


if __name__ == "__main__":
    main()
