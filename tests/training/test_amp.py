"""train.amp: the auto choice by hardware capability, fp32 master weights and optimiser state
under bf16, penalties in fp32, and checkpoints that resume across the precision."""
from __future__ import annotations

import pytest
import torch

from gankit import runtime
from gankit.config import check_resume_override
from gankit.models import adversarial
from gankit.training.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, precision_line
from tests.conftest import tiny_toy_config

AVX2 = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})  # this project's CI machine
AMX = AVX2 | {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}


def cpu_config(**overrides):
    return tiny_toy_config(**{"train.device": "cpu", **overrides})


@pytest.mark.parametrize("flags,expected", [
    (AVX2, "none"), (AMX, "bf16"), (AVX2 | {"avx512_bf16"}, "bf16"), (AVX2 | {"amx_bf16"}, "bf16"),
    (AVX2 | {"avx512f", "amx_tile"}, "none"),  # AVX512 or AMX tiles without bf16 do not count
    (frozenset(), "none"),  # no /proc/cpuinfo: nothing known, fp32
])
def test_auto_picks_bf16_only_on_a_cpu_with_native_bf16(flags, expected):
    assert runtime.resolve_amp("auto", "cpu", flags=flags) == expected


def test_auto_on_a_gpu_follows_its_bf16_support_and_explicit_choices_stand():
    assert runtime.resolve_amp("auto", "cuda", cuda_bf16=True) == "bf16"
    assert runtime.resolve_amp("auto", "cuda", cuda_bf16=False) == "none"
    for amp in ("none", "bf16", "fp16"):
        assert runtime.resolve_amp(amp, "cpu", flags=AMX) == amp
        assert runtime.resolve_amp(amp, "cpu", flags=AVX2) == amp


def test_cpu_flags_reads_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert runtime.cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16"}
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags,precision", [(AVX2, "none"), (AMX, "bf16")])
def test_the_trainer_resolves_auto_and_says_which_it_took(tmp_path, monkeypatch, flags, precision):
    monkeypatch.setattr(runtime, "cpu_flags", lambda path="/proc/cpuinfo": flags)
    cfg = cpu_config(**{"train.amp": "auto", "train.steps": 2})
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.amp == precision
    with trainer.model.autocast():  # what every model's forward runs under
        assert torch.is_autocast_enabled("cpu") == (precision == "bf16")
    line = precision_line(cfg)
    recorded = (tmp_path / "run" / "config.yaml").read_text().splitlines()[-1]
    assert recorded == f"# {line}"
    assert line.startswith("precision: fp32" if precision == "none" else "precision: bf16")
    assert "amx_bf16" in line or precision == "none"


def test_bf16_keeps_fp32_master_weights_and_optimiser_state(tmp_path):
    trainer = Trainer(cpu_config(**{"train.amp": "bf16", "train.steps": 4}), tmp_path / "run")
    g_before = [p.detach().clone() for p in trainer.model.G.parameters()]
    trainer.fit()
    params = dict(trainer.model.named_parameters())
    assert params and all(p.dtype == torch.float32 for p in params.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.model.G.parameters()))
    for name, opt in trainer.model.optimizers.items():
        moments = [v for state in opt.state.values() for k, v in state.items() if k != "step"]
        assert moments and all(m.dtype == torch.float32 for m in moments), name
    saved = load_checkpoint(trainer.ckpt_path)["model"]
    floats = [v for v in _tensors(saved) if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from _tensors(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _tensors(v)


@pytest.mark.parametrize("loss,penalty,spied", [
    ("nonsaturating", "r1", "r1_penalty"), ("wgan-gp", "auto", "gradient_penalty")])
def test_penalties_run_in_fp32_under_bf16(tmp_path, monkeypatch, loss, penalty, spied):
    seen = []
    original = getattr(adversarial, spied)

    def spy(D, real, *args, **kwargs):
        out = original(D, real, *args, **kwargs)
        seen.append((torch.is_autocast_enabled("cpu"), real.dtype, out.dtype))
        return out

    monkeypatch.setattr(adversarial, spied, spy)
    cfg = cpu_config(**{"train.amp": "bf16", "loss.name": loss, "loss.penalty": penalty,
                        "train.steps": 2})
    Trainer(cfg, tmp_path / "run").fit()
    assert seen and all(s == (False, torch.float32, torch.float32) for s in seen)


def test_a_checkpoint_resumes_exactly_across_the_precision(tmp_path):
    """bf16 for 6 steps, then fp32: through a checkpoint (resumed with train.amp=none) and in
    one process (the precision switched in place) the weights end bit-identical."""
    cfg = cpu_config(**{"train.amp": "bf16", "train.steps": 12})
    whole = Trainer(cfg, tmp_path / "whole")
    whole.run_steps(6)
    whole.model.set_precision("none")
    whole.run_steps(6)

    part = Trainer(cfg, tmp_path / "part")
    part.run_steps(6)
    part.save()
    check_resume_override("train.amp")  # a resume may change it (no ConfigError)
    switched = cpu_config(**{"train.amp": "none", "train.steps": 12})
    resumed = Trainer(switched, tmp_path / "part", resume=True)
    assert resumed.amp == "none" and resumed.step == 6
    resumed.run_steps(6)
    for (k, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # and the fp32 steps really differ from bf16 ones: the switch took effect
    bf16 = Trainer(cfg, tmp_path / "bf16")
    bf16.run_steps(12)
    assert any(not torch.equal(a, b) for a, b in zip(bf16.model.G.parameters(), resumed.model.G.parameters()))
