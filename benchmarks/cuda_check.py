"""A short correctness check of training on a CUDA GPU: precisions, resume, hidden syncs.

    python benchmarks/cuda_check.py --json cuda_check.json [--compile]

For each of ``train.amp=none``, ``bf16`` and ``fp16`` (GradScaler), on the toy MLP GAN and on a
DCGAN at 28 px (random images, channels_last), it trains 10 steps, checkpoints, resumes in a
new Trainer and trains 10 more, and checks that:

* every logged loss is finite;
* the resumed run starts where the checkpoint stands, with the fp16 GradScaler's scale and
  growth tracker restored from the checkpoint;
* the inner loop makes no host-device synchronisation between log ticks: steps run under
  ``torch.cuda.set_sync_debug_mode('warn')`` and every warning is recorded with its source.

``--compile`` adds a ``train.compile=true`` run of the toy GAN.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import write_json

from gankit.config import load_config  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402

NETS = {
    "toy": ("toy_ring8", []),
    "dcgan28": ("mnist_dcgan", ["train.channels_last=true"]),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--device", default="cuda", help="cpu runs the same checks (without fp16 and "
                   "the sync detector) to try the script out")
    return p.parse_args(argv)


def random_digits(folder: Path, n: int = 256) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        Image.fromarray(torch.randint(0, 256, (28, 28), generator=g, dtype=torch.uint8).numpy()).save(
            folder / f"{i:03d}.png")
    return folder


def config(net: str, amp: str, tmp: Path, extra: list[str], device: str):
    preset, items = NETS[net]
    items = items + extra + [f"train.amp={amp}", f"train.device={device}", "train.steps=20",
                             "train.log_every=5", "train.sample_every=0", "train.ckpt_every=0",
                             "train.progress=false"]
    if net == "dcgan28":
        items += [f"data.source={random_digits(tmp / 'digits')}", "data.image_size=28",
                  "data.channels=1"]
    return load_config(preset, items)


def steps_without_sync(trainer: Trainer, n: int) -> list[str]:
    """Run ``n`` steps (no log tick among them) with CUDA's sync detector on; its warnings."""
    if trainer.device.type != "cuda":
        trainer.run_steps(n)
        return []
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.run_steps(n)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    found = []
    for w in caught:
        text = str(w.message).splitlines()[0][:160]
        where = f"{Path(w.filename).name}:{w.lineno}"
        found.append(f"{where}: {text}")
    return sorted(set(found))


def check(net: str, amp: str, tmp: Path, extra: list[str], device: str) -> dict:
    run_dir = tmp / f"{net}_{amp}{'_compiled' if extra else ''}"
    cfg = config(net, amp, tmp, extra, device)
    first = Trainer(cfg, run_dir)
    first.run_steps(1)  # first step: lazy allocations, cuDNN autotuning, compilation
    syncs = steps_without_sync(first, 3)  # steps 2-4: the log tick is at 5
    first.run_steps(10 - first.step)
    first.save()
    first.logger.close()
    scale = {k: s.get_scale() for k, s in first.model.scalers.items()} or None
    second = Trainer(cfg, run_dir, resume=True)
    resumed_at = second.step
    resumed_scale = {k: s.get_scale() for k, s in second.model.scalers.items()} or None
    second.fit()
    logs = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    finite = all(torch.isfinite(torch.tensor(v)).item() for r in logs for k, v in r.items()
                 if k.startswith("loss/"))
    ok = finite and resumed_at == 10 and second.step == 20 and scale == resumed_scale and not syncs
    return {"net": net, "amp": amp, "extra": extra, "ok": ok, "finite_losses": finite,
            "resumed_at": resumed_at, "final_step": second.step, "scale_saved": scale,
            "scale_resumed": resumed_scale, "syncs_in_inner_loop": syncs,
            "last_log": logs[-1] if logs else None}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cuda = args.device.startswith("cuda")
    out: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
                 "checks": []}
    amps = ("none", "bf16", "fp16") if cuda else ("none", "bf16")
    cases = [(net, amp, []) for net in NETS for amp in amps]
    if args.compile:
        cases.append(("toy", "bf16", ["train.compile=true"]))
    with tempfile.TemporaryDirectory() as tmp:
        for net, amp, extra in cases:
            try:
                result = check(net, amp, Path(tmp), extra, args.device)
            except Exception as e:  # noqa: BLE001 -- record and go on to the next case
                result = {"net": net, "amp": amp, "extra": extra, "ok": False,
                          "error": "".join(traceback.format_exception_only(e)).strip()[-800:]}
            out["checks"].append(result)
            print(json.dumps(result), flush=True)
    out["all_ok"] = all(c["ok"] for c in out["checks"])
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
