"""EMA warm-up: the decay at step t is min(ema, (1 + t) / (10 + t)) counted from ema_start."""
import pytest
import torch

from gankit.config import TrainConfig
from gankit.models.base import ema_decay


def test_decay_without_warmup_is_the_configured_one_after_ema_start():
    cfg = TrainConfig(ema=0.999, ema_start=5)
    assert [ema_decay(cfg, s) for s in (0, 4, 5, 6, 10_000)] == [0.0, 0.0, 0.999, 0.999, 0.999]


def test_warmup_caps_the_decay_by_hand_computed_values():
    cfg = TrainConfig(ema=0.999, ema_start=0, ema_warmup=True)
    assert ema_decay(cfg, 0) == pytest.approx(0.1)           # (1 + 0) / (10 + 0)
    assert ema_decay(cfg, 90) == pytest.approx(91 / 100)
    assert ema_decay(cfg, 1000) == pytest.approx(1001 / 1010)
    assert ema_decay(cfg, 9000) == pytest.approx(0.999)      # 9001 / 9010 > 0.999: capped
    later = TrainConfig(ema=0.99, ema_start=100, ema_warmup=True)
    assert ema_decay(later, 99) == 0.0 and ema_decay(later, 100) == pytest.approx(0.1)
    assert ema_decay(later, 190) == pytest.approx(0.91)


def test_warmed_up_shadow_forgets_the_initial_weights():
    """After 5 updates towards a constant live weight, the shadow's distance to it is the
    product of the decays: with warm-up prod (1+t)/(10+t) over t=1..5, without 0.99^5."""
    from gankit.models import MODELS
    from tests.models.test_cgan import INFO, tiny_config

    def shadow_gap(warmup: bool) -> float:
        cfg = tiny_config(**{"train.ema": 0.99, "train.ema_warmup": str(warmup).lower()})
        model = MODELS.get("gan")(cfg, INFO)
        model.setup_ema()
        live = next(model.G.parameters())
        shadow = next(model.ema_nets["G"].parameters())
        with torch.no_grad():
            start = shadow.clone()
            live.add_(1.0)  # the live net jumps by 1 and stays there
            for step in range(1, 6):
                model.update_ema(step)
        return float(((live - shadow).mean() / (live - start).mean()).detach())

    expected = 1.0
    for t in range(1, 6):
        expected *= (1 + t) / (10 + t)
    assert shadow_gap(True) == pytest.approx(expected, rel=1e-3)
    assert shadow_gap(False) == pytest.approx(0.99 ** 5, rel=1e-3)
    assert shadow_gap(True) < 0.01 < 0.9 < shadow_gap(False)
