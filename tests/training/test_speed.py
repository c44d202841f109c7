"""Speed features on one device: no host reads between log ticks, fused optimizers, bf16
autocast, channels_last, and the on-device log sums."""
from __future__ import annotations

import sys

import pytest
import torch
from PIL import Image

from gankit.training.checkpoint import load_checkpoint
from gankit.training.logger import RunningMeans
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__")


def cpu_config(**overrides):
    """The tiny toy run, on the CPU also where a GPU is present (exact comparisons below)."""
    return tiny_toy_config(**{"train.device": "cpu", **overrides})


def digit_folder(folder, n=64):
    folder.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(n):
        Image.fromarray(torch.randint(0, 256, (28, 28), generator=g, dtype=torch.uint8).numpy()).save(
            folder / f"{i:02d}.png")
    return folder


def dcgan_config(folder, **extra):
    return cpu_config(**{"data.source": str(folder), "data.image_size": 28, "data.channels": 1,
                              "data.batch_size": 8, "G.name": "dcgan", "G.width": 4, "G.norm": "batch",
                              "D.name": "dcgan", "D.width": 4, "train.steps": 2, **extra})


@pytest.fixture
def host_reads(monkeypatch):
    """Count tensor-to-host reads made by gankit's own code (torch internals are not counted)."""
    calls: list[str] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1)
            if "/gankit/" in caller.f_code.co_filename:
                calls.append(f"{_name} at {caller.f_code.co_filename}:{caller.f_lineno}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return calls


def test_no_host_reads_between_log_ticks(tmp_path, host_reads):
    trainer = Trainer(cpu_config(**{"train.log_every": 10, "train.steps": 100}), tmp_path / "run")
    host_reads.clear()  # reading the data set once (e.g. its standardisation) is not a step's
    trainer.run_steps(9)
    assert host_reads == []
    trainer.run_steps(1)  # the log tick: one read of all the sums
    assert [c.split()[0] for c in host_reads] == ["tolist"]


def test_auto_picks_the_fused_adam_kernel(tmp_path):
    adam = Trainer(cpu_config(), tmp_path / "adam").model.optimizers
    assert adam["D"].defaults["fused"] is True and adam["G"].defaults["fused"] is True
    single = Trainer(cpu_config(**{"optim.impl": "single"}), tmp_path / "single").model.optimizers
    assert not single["D"].defaults["fused"] and single["D"].defaults["foreach"] is False
    rms = Trainer(cpu_config(**{"optim.name": "rmsprop"}), tmp_path / "rms").model.optimizers
    assert "fused" not in rms["D"].defaults or not rms["D"].defaults["fused"]


def test_fused_and_per_tensor_adam_train_alike(tmp_path):
    fused = Trainer(cpu_config(), tmp_path / "fused")
    fused.run_steps(12)
    single = Trainer(cpu_config(**{"optim.impl": "single"}), tmp_path / "single")
    single.run_steps(12)
    for (k, a), b in zip(fused.model.state_dict().items(), single.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_channels_last_trains_like_the_default_layout(tmp_path):
    folder = digit_folder(tmp_path / "digits")
    plain = Trainer(dcgan_config(folder), tmp_path / "plain")
    plain.fit()
    cl = Trainer(dcgan_config(folder, **{"train.channels_last": True}), tmp_path / "cl")
    conv = next(m for m in cl.model.G.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    cl.fit()
    for (k, a), b in zip(plain.model.state_dict().items(), cl.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_bf16_autocast_on_cpu_trains_and_resumes(tmp_path):
    cfg = cpu_config(**{"train.amp": "bf16"})
    whole = Trainer(cfg, tmp_path / "whole")
    whole.run_steps(12)
    # the first six steps again, then a resume from their checkpoint to step 12
    part = Trainer(cfg, tmp_path / "part")
    part.run_steps(6)
    part.save()
    assert load_checkpoint(part.ckpt_path)["step"] == 6
    resumed = Trainer(cfg, tmp_path / "part", resume=True)
    resumed.run_steps(6)
    for (k, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.isfinite(a.float()).all(), k
        assert torch.equal(a, b), k


def test_running_means_average_each_key_over_its_own_count():
    means = RunningMeans()
    means.add({"loss/D": torch.tensor(1.0), "D/real": torch.tensor(2.0)})
    means.add({"loss/G": torch.tensor(10.0, dtype=torch.bfloat16)})
    means.add({"loss/D": torch.tensor(3.0), "D/real": torch.tensor(5.0)})
    means.add({"loss/D": torch.tensor(8.0)})  # another phase kind logging one shared key
    assert means.pending()
    assert means.read() == {"loss/D": 4.0, "D/real": 3.5, "loss/G": 10.0}
    assert not means.pending() and means.read() == {}


def test_running_means_never_keep_a_graph():
    w = torch.ones(3, requires_grad=True)
    means = RunningMeans()
    means.add({"loss": (w * 2).sum()})
    means.add({"loss": (w * 3).sum()})
    assert not means.values_finite().requires_grad
    assert means.read() == {"loss": 7.5}
    means.add({"loss": torch.tensor(float("nan"))})
    assert not bool(means.values_finite())


def test_compile_leaves_d_eager_when_a_penalty_differentiates_twice(tmp_path):
    plain = Trainer(cpu_config(), tmp_path / "plain").model
    assert set(plain.compile_targets()) == {"G", "D"}  # not the EMA copy
    gp = Trainer(cpu_config(**{"loss.name": "wgan-gp"}), tmp_path / "gp").model
    assert set(gp.compile_targets()) == {"G"}


def test_running_means_refuse_non_scalar_logs():
    means = RunningMeans()
    means.add({"loss/D": torch.tensor(1.0), "D/real": torch.ones(2)})
    with pytest.raises(ValueError, match="scalar tensors; loss/D, D/real"):
        means.read()
