"""benchmarks/throughput.py's bare loop does the preset's work: it reuses D's batch for G's
step where the preset does (model.reuse_fake), and generates a new one with --bare-fresh."""
import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # its `report` import
from benchmarks import throughput as tp  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402
from tests.conftest import tiny_toy_config  # noqa: E402


@pytest.mark.parametrize("reuse,fresh,forwards", [(True, False, 1), (True, True, 2), (False, False, 2)])
def test_bare_loop_generates_as_the_preset_asks(tmp_path, reuse, fresh, forwards):
    trainer = Trainer(tiny_toy_config(**{"model.reuse_fake": reuse}), tmp_path)
    args = argparse.Namespace(bare_default_adam=False, bare_fresh=fresh, amp="none", channels_last=False)
    bare = tp.make_bare(trainer, args)
    calls = []
    bare.G.register_forward_hook(lambda *_: calls.append(1))
    bare.run(3)
    assert bare.reuse == (reuse and not fresh)
    assert len(calls) == 3 * forwards
