"""Start-up of a large image folder: no cache, the first start (decodes into the pixel
cache) and the second start (reads it), each in a fresh process, wall and CPU seconds of
building the training data source (scan, decode or read, tensor) on one thread.

    python benchmarks/folder_cache.py --folder /work/data/faces --sizes 32,64
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from report import BENCHMARKS_MD, write_section

SECTION = "## Large folders"
# one start: build the source as gankit train does, report seconds and what happened
START = """
import json, sys, time
import torch
from gankit.config import load_config
from gankit.data import build_source
folder, size, cache = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = load_config("faces32_dcgan", [f"data.source={folder}", f"data.image_size={size}",
                                    f"data.cache_dir={cache}"])
w, c = time.perf_counter(), time.process_time()
source = build_source(cfg.data, 0, torch.device("cpu"))
print(json.dumps({"wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                  "items": source.info.size}))
"""


def start(folder: str, size: int, cache: str) -> dict:
    out = subprocess.run([sys.executable, "-c", START, folder, str(size), cache], text=True,
                         capture_output=True, check=True, env={"OMP_NUM_THREADS": "1",
                                                               **__import__("os").environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", required=True)
    p.add_argument("--sizes", default="32,64")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    rows = []
    for size in map(int, a.sizes.split(",")):
        with tempfile.TemporaryDirectory() as cache:
            runs = {"no cache (data.cache_dir=none)": start(a.folder, size, "none"),
                    "first start (decodes into the cache)": start(a.folder, size, cache),
                    "second start (reads the cache)": start(a.folder, size, cache)}
        for name, r in runs.items():
            rows.append(f"| {size} | {name} | {r['items']} | {r['wall']:.1f} | {r['cpu']:.1f} |")
            print(rows[-1], flush=True)
    text = (f"{SECTION}\n\nBuilding the training data of a {Path(a.folder).name} folder (its "
            "images listed, then decoded, or read from the pixel cache, into the training "
            "tensor), each start a fresh process; the machine's 2 cores were shared with other "
            "jobs, so CPU seconds are the steadier number.\n\n"
            f"    python benchmarks/folder_cache.py --folder {a.folder} --sizes {a.sizes}\n\n"
            "| px | start | images | wall s | CPU s |\n| --- | --- | --- | --- | --- |\n"
            + "\n".join(rows) + "\n")
    print(text)
    if not a.no_write:
        write_section(BENCHMARKS_MD, text)


if __name__ == "__main__":
    main()
