"""TorchScript vs dynamo ONNX exporter on the anime64 DCGAN generator (one thread)."""
import time, warnings, logging, torch, numpy as np, onnxruntime as ort
warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.models import MODELS
torch.set_num_threads(1)
cfg = load_config("anime64", [])
torch.manual_seed(0)
G = MODELS.get("gan")(cfg, DataInfo("image", (3, 64, 64))).eval().G
z = torch.randn(2, 100)
torch.onnx.export(G, (z,), "/tmp/exp/warm.onnx", dynamo=False)  # imports, once
for dynamo in (False, True, False, True):
    t = time.perf_counter()
    kw = dict(dynamic_shapes=({0: torch.export.Dim("batch")},)) if dynamo else dict(dynamic_axes={"z": {0: "b"}, "image": {0: "b"}})
    torch.onnx.export(G, (z,), "/tmp/exp/x.onnx", input_names=["z"], output_names=["image"], dynamo=dynamo, verbose=False, **kw)
    s = time.perf_counter() - t
    z3 = torch.randn(3, 100)
    out = ort.InferenceSession("/tmp/exp/x.onnx").run(None, {"z": z3.numpy()})[0]
    with torch.no_grad(): d = float(np.abs(out - G(z3).numpy()).max())
    print({"dynamo": dynamo, "export_s": round(s, 2), "max_abs_diff": d}, flush=True)
