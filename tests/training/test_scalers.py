"""fp16 loss scaling with one GradScaler per optimizer (runs on the CPU's GradScaler)."""
import torch

from gankit.data import build_source
from gankit.training.checkpoint import make_checkpoint, restore
from gankit.training.trainer import build_model
from tests.conftest import tiny_toy_config

INIT = 65536.0  # GradScaler's initial scale


def _model():
    cfg = tiny_toy_config()
    source = build_source(cfg.data, 0, torch.device("cpu"))
    model = build_model(cfg, source.info)
    model.optimizers = model.configure_optimizers()
    model.setup_scalers("cpu")
    return model, source


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def test_an_overflow_in_d_backs_off_d_alone():
    model, _ = _model()
    assert set(model.scalers) == set(model.optimizers) == {"G", "D"}
    d0, g0 = _params(model.D), _params(model.G)
    x = torch.randn(8, 2)
    model.optimize("D", model.D(x).mean() * float("inf"), model.D)  # inf gradients
    assert all(torch.equal(a, b) for a, b in zip(d0, model.D.parameters()))  # step skipped
    assert model.scalers["D"].get_scale() == INIT / 2
    assert model.scalers["G"].get_scale() == INIT  # a shared scaler would have halved it too
    z = torch.randn(8, model.cfg.model.z_dim)
    model.optimize("G", -model.D(model.G(z)).mean(), model.G)
    assert not all(torch.equal(a, b) for a, b in zip(g0, model.G.parameters()))  # G stepped
    assert model.scalers["G"].get_scale() == INIT


def test_each_scale_survives_a_checkpoint():
    model, source = _model()
    model.optimize("D", model.D(torch.randn(8, 2)).mean() * float("inf"), model.D)
    ckpt = make_checkpoint(model, source, 1, 0)
    fresh, _ = _model()
    restore(fresh, None, ckpt)
    assert {k: s.get_scale() for k, s in fresh.scalers.items()} == {"D": INIT / 2, "G": INIT}
