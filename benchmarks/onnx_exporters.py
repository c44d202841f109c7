"""torch.onnx's TorchScript exporter against its dynamo exporter, on the anime64 DCGAN
generator: export seconds (each twice, after one warm-up export for the imports) and the
max abs difference of onnxruntime to torch on a batch of 3.

    pip install onnxscript   # the dynamo exporter's dependency (gankit itself does not need it)
    OMP_NUM_THREADS=1 python benchmarks/onnx_exporters.py
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.models import MODELS


def main() -> None:
    import onnxruntime as ort

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # the dynamo exporter's progress lines
    torch.set_num_threads(1)
    torch.manual_seed(0)
    G = MODELS.get("gan")(load_config("anime64", []), DataInfo("image", (3, 64, 64))).eval().G
    z = torch.randn(2, 100)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "g.onnx")
        torch.onnx.export(G, (z,), path, dynamo=False)  # imports torch.onnx once
        for dynamo in (False, True, False, True):
            shapes = ({"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if dynamo else
                      {"dynamic_axes": {"z": {0: "batch"}, "image": {0: "batch"}}})
            start = time.perf_counter()
            torch.onnx.export(G, (z,), path, input_names=["z"], output_names=["image"],
                              dynamo=dynamo, **shapes)
            seconds = time.perf_counter() - start
            z3 = torch.randn(3, 100)
            out = ort.InferenceSession(path).run(None, {"z": z3.numpy()})[0]
            with torch.no_grad():
                diff = float(np.abs(out - G(z3).numpy()).max())
            print(json.dumps({"dynamo": dynamo, "export_s": round(seconds, 2), "max_abs_diff": diff}), flush=True)


if __name__ == "__main__":
    main()
