"""Two CPU ranks (gloo) against one process with the same global batch.

The ranks run in processes started by ``torch.multiprocessing``; each writes its final model
state to a file for the test to compare (the trainer itself writes only on rank 0). A second
test launches ``torchrun -m gankit train`` exactly as a user would.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from gankit.errors import TrainingInterrupted
from gankit import distributed
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

REPO = Path(__file__).resolve().parents[2]
WORLD = 2
# loose enough for sums taken in another order over 6 Adam steps, tight enough that a gradient
# summed instead of averaged, a rank-local batch or unsynchronised BN statistics fail it
TOL = dict(rtol=1e-4, atol=2e-5)


def write_images(folder: Path, n: int = 256) -> Path:
    """``n`` random 4x4 grayscale PNGs: image data whose grids are cheap to draw."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (n, 4, 4), generator=g, dtype=torch.uint8).numpy()
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(folder / f"{i:03d}.png")
    return folder


def plain_config(images: Path, **extra):
    return tiny_toy_config(**{
        "data.source": str(images), "data.image_size": 4, "data.channels": 1, "train.device": "cpu",
        "train.steps": 6, "train.log_every": 3, "train.sample_every": 3,
        # Adam ignores the scale of a gradient, but not once weight decay is added to it
        "optim.weight_decay": 0.1,
        # the WGAN-GP interpolation draws random numbers per item: ranks must slice one draw
        "loss.penalty": "gp",
        "eval.metrics": "fid", "eval.extractor": "identity", "eval.n_samples": 301, **extra})


def bn_config(images: Path):
    return plain_config(images, **{"train.steps": 4, "G.norm": "batch", "train.sync_bn": True,
                                   "eval.metrics": "", "train.sample_every": 0})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_on_rank1_after(n_phases: int):
    count = {"n": 0}

    def callback(trainer):
        count["n"] += 1
        if count["n"] == n_phases and distributed.rank() == 1:
            trainer.request_stop()  # as if a signal reached only one rank

    return callback


def _worker(rank: int, port: int, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    root_path = Path(root)
    images = root_path / "images"
    try:
        trainer = Trainer(plain_config(images), root_path / "ddp")
        trainer.fit()
        torch.save(trainer.model.state_dict(), root_path / f"plain_rank{rank}.pt")

        first = Trainer(plain_config(images), root_path / "split")
        first.phase_callbacks.append(stop_on_rank1_after(5))
        try:
            first.fit()
        except TrainingInterrupted:
            saved = load_checkpoint(first.ckpt_path)
            torch.save({"step": first.step, "phase": first.phase, "saved": saved["step"]},
                       root_path / f"stop_rank{rank}.pt")
        second = Trainer(plain_config(images), root_path / "split", resume=True)
        second.fit()
        torch.save(second.model.state_dict(), root_path / f"resumed_rank{rank}.pt")

        bn = Trainer(bn_config(images), root_path / "bn")
        bn.fit()
        torch.save(bn.model.state_dict(), root_path / f"bn_rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(root: Path, timeout_s: float = 120) -> None:
    # fork: the children inherit the imported torch and gankit (spawn re-imports them, which
    # costs ~10 s per process); each child sets one thread before any parallel region
    ctx = mp.start_processes(_worker, args=(free_port(), str(root)), nprocs=WORLD, join=False,
                             start_method="fork")
    deadline = time.monotonic() + timeout_s
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail(f"the ranks did not finish in {timeout_s} s (a collective mismatch hangs)")


def assert_states_close(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k].double(), b[k].double(), **TOL, msg=k)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def files_under(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.is_file() and "tb" not in p.parts)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    images = write_images(root / "images")
    # the single-process runs go first: the forked ranks then inherit their lazy imports
    single = Trainer(plain_config(images), root / "single")
    single.fit()
    bn_single = Trainer(bn_config(images), root / "bn_single")  # sync_bn is a no-op in one process
    bn_single.fit()
    run_ranks(root)
    return root, single, bn_single


def load(root: Path, name: str) -> dict:
    return torch.load(root / name, weights_only=True)


def test_ranks_stay_identical_and_match_one_process(two_ranks):
    root, single, _ = two_ranks
    r0, r1 = load(root, "plain_rank0.pt"), load(root, "plain_rank1.pt")
    assert_states_close(r0, r1, exact=True)
    assert_states_close(r0, single.model.state_dict())
    # the checkpoint rank 0 wrote is that state too
    saved = load_checkpoint(root / "ddp" / "checkpoints" / "last.pt")
    assert saved["step"] == 6
    assert_states_close(saved["model"], r0, exact=True)


def test_logs_are_global_means_written_once(two_ranks):
    root, single, _ = two_ranks
    ddp, one = read_jsonl(root / "ddp" / "log.jsonl"), read_jsonl(single.run_dir / "log.jsonl")
    assert [r["step"] for r in ddp] == [r["step"] for r in one] == [3, 6]
    for a, b in zip(ddp, one):
        for key in ("loss/D", "loss/G", "D/real", "D/fake"):
            torch.testing.assert_close(torch.tensor(a[key]), torch.tensor(b[key]), **TOL)
    assert files_under(root / "ddp") == files_under(single.run_dir)
    assert len(list((root / "ddp" / "tb").iterdir())) == 1  # rank 1 opened no TensorBoard file


def test_metrics_gather_samples_from_every_rank(two_ranks):
    root, single, _ = two_ranks
    ddp, one = read_jsonl(root / "ddp" / "metrics.jsonl"), read_jsonl(single.run_dir / "metrics.jsonl")
    assert len(ddp) == len(one) == 1
    assert ddp[0]["final"] is True
    torch.testing.assert_close(torch.tensor(ddp[0]["metrics/fid"]), torch.tensor(one[0]["metrics/fid"]),
                               rtol=1e-3, atol=1e-4)


def test_a_stop_on_one_rank_stops_all_and_every_rank_resumes(two_ranks):
    root, single, _ = two_ranks
    stops = [load(root, f"stop_rank{r}.pt") for r in range(WORLD)]
    # asked on rank 1 in step 2 (its 5th phase of 2-phase steps); the vote carrying it starts
    # with step 3 and is read at step 4's start, where both ranks stop
    assert stops[0] == stops[1] == {"step": 4, "phase": 0, "saved": 4}
    r0, r1 = load(root, "resumed_rank0.pt"), load(root, "resumed_rank1.pt")
    assert_states_close(r0, r1, exact=True)
    assert_states_close(r0, load(root, "plain_rank0.pt"), exact=True)


def test_sync_batchnorm_matches_one_process_batchnorm(two_ranks):
    root, _, bn_single = two_ranks
    r0, r1 = load(root, "bn_rank0.pt"), load(root, "bn_rank1.pt")
    assert_states_close(r0, r1, exact=True)
    reference = bn_single.model.state_dict()
    assert any("running_var" in k for k in reference)
    assert_states_close(r0, reference)


def test_torchrun_runs_the_cli(tmp_path):
    images = write_images(tmp_path / "images", n=64)
    overrides = [f"data.source={images}", "data.image_size=4", "data.channels=1",
                 "data.batch_size=32", "model.z_dim=4", "G.name=mlp", "G.width=16", "G.depth=2",
                 "G.norm=none", "D.name=mlp", "D.width=16", "D.depth=2", "D.norm=none", "train.steps=4",
                 "train.log_every=2", "train.sample_every=0", "train.ckpt_every=0",
                 "train.progress=false", "train.ema=0.9", "train.threads=1", "train.device=cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "gankit", "train", "--out", str(tmp_path / "ddp"), *overrides]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done:") == 1  # rank 0 alone reports
    from gankit.cli import main

    assert main(["train", "--out", str(tmp_path / "one"), *overrides]) == 0
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")
    assert ddp["step"] == one["step"] == 4
    assert_states_close(ddp["model"], one["model"])
