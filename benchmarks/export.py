"""gankit export per generator family, at the presets' sizes: file sizes, export times,
onnxruntime-vs-torch max difference, and the time to draw 64 samples with onnxruntime and
with torch eager, both on one thread.

    OMP_NUM_THREADS=1 python benchmarks/export.py [FAMILY ...] [--repeat 3]

The nets are freshly initialised (an export neither knows nor cares how long a net
trained); EMA copies are set up as in a run. One JSON line per family.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gankit import export
from gankit.api import LoadedRun
from gankit.config import load_config
from gankit.data.conditions import build_vocab
from gankit.data.info import DataInfo
from gankit.models import MODELS

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TAGS = ["red_hair blue_eyes", "blonde_hair smile", "black_hair", "blue_eyes open_mouth"]
# family -> (preset, overrides, data info)
FAMILIES = {
    "dcgan": ("anime64", [], DataInfo("image", (3, 64, 64))),
    "resnet_sn": ("anime64", ["G.name=resnet", "G.spectral_norm=true", "G.depth=2", "D.name=resnet"],
                  DataInfo("image", (3, 64, 64))),
    "stylegan2": ("anime64_stylegan2", [], DataInfo("image", (3, 64, 64))),
    "cgan_labels": ("mnist_cgan", [], DataInfo("image", (1, 28, 28), num_classes=10, class_names=DIGITS)),
    "cgan_tags": ("anime64_tags", [], DataInfo("image", (3, 64, 64), num_classes=4, class_names=TAGS,
                                                 vocab=build_vocab(TAGS))),
    "pix2pix_unet": ("pix2pix_folder", ["data.image_size=64", "G.depth=6"], DataInfo("paired", (3, 64, 64))),
    "cyclegan": ("cyclegan_folder", ["data.image_size=64"], DataInfo("unpaired", (3, 64, 64))),
    "vae": ("mnist_vae", [], DataInfo("image", (1, 28, 28))),
    "flow": ("mnist_realnvp", [], DataInfo("image", (1, 28, 28))),
}


def build(family: str) -> LoadedRun:
    preset, overrides, info = FAMILIES[family]
    cfg = load_config(preset, overrides + ["train.ema=0.999"])
    torch.manual_seed(0)
    model = MODELS.get(cfg.model.kind)(cfg, info)
    model.setup_ema()
    return LoadedRun(model.eval(), cfg, info, Path("."), 0)


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: first-call allocations, onnxruntime's graph preparation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(family: str, folder: Path, repeat: int) -> dict:
    import onnxruntime as ort

    run = build(family)
    start = time.perf_counter()
    st = export.save_safetensors(run, folder / f"{family}.safetensors")
    st_seconds = time.perf_counter() - start
    results = export.save_onnx(run, folder / f"{family}.onnx")
    graph = export.EXPORTS.get(run.model.kind).graphs(run.model, True)[0]
    inputs = graph.make_inputs(64)
    session = ort.InferenceSession(str(results[0].path), export._session_options(1),
                                   providers=["CPUExecutionProvider"])
    feed = {k: v.numpy() for k, v in inputs.items()}
    reference = graph.reference or graph.module
    with torch.no_grad():
        torch_s = median_seconds(lambda: reference(*inputs.values()), repeat)
    ort_s = median_seconds(lambda: session.run(None, feed), repeat)
    return {"family": family, "safetensors_mib": round(st.stat().st_size / 2**20, 3),
            "safetensors_s": round(st_seconds, 2),
            "onnx_mib": round(sum(r.size for r in results) / 2**20, 3),
            "onnx_export_s": round(sum(r.seconds for r in results), 2),
            "max_abs_diff": max(r.max_diff for r in results), "graphs": len(results),
            "torch_64_s": round(torch_s, 3), "ort_64_s": round(ort_s, 3),
            "ort_speedup": round(torch_s / ort_s, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("families", nargs="*", default=list(FAMILIES))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        for family in args.families:
            print(json.dumps(measure(family, Path(folder), args.repeat)), flush=True)


if __name__ == "__main__":
    main()
