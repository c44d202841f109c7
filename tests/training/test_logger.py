import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.training import logger as logger_mod
from gankit.training.logger import Progress, RunLogger, RunningMeans


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(logger_mod.time, "perf_counter", c)
    return c


def test_progress_eta_is_smoothed_not_the_last_interval(clock):
    out = io.StringIO()  # not a terminal: plain lines, one per log tick
    p = Progress(1000, True, stream=out)
    p.start(0)
    clock.now = 100.0  # a slow start: 100 steps in 100 s
    p.update(100, {})
    clock.now = 110.0  # then 400 steps in 10 s
    p.update(500, {"loss/G": 0.5, "loss/D": 1.25, "D/real": 3.0})
    first, second = out.getvalue().splitlines()
    assert first.startswith("step 100/1000 | 1.0 steps/s | 1:40 elapsed, ETA 15:00")
    # averages with weight 0.3 on the newest, start-up bias removed (divided by 1 - 0.7^2):
    # steps (0.3*400 + 0.7*0.3*100) / 0.51 = 141 / 0.51, seconds (0.3*10 + 0.7*0.3*100) / 0.51
    # = 24 / 0.51: 141 / 24 = 5.875 steps/s, and 500 steps left take 85.1 s (the last interval
    # alone, 40 steps/s, would say 0:12; the next slow interval would say 15:00 again)
    assert second == "step 500/1000 | 5.9 steps/s | 1:50 elapsed, ETA 1:25 | loss D 1.25 G 0.5"
    assert "\r" not in out.getvalue()


def test_progress_loss_order_does_not_depend_on_the_logging_order(clock):
    out = io.StringIO()
    p = Progress(10, True, stream=out)
    p.update(1, {"loss/G": 1.0, "loss/D": 2.0})
    p.update(2, {"loss/D": 2.0, "loss/G": 1.0})
    a, b = (line.split("| loss ")[1] for line in out.getvalue().splitlines())
    assert a == b == "D 2 G 1"


def test_progress_on_a_terminal_is_a_tqdm_bar_that_lines_go_above(monkeypatch):
    import sys

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)  # the bar's terminal
    p = Progress(100, True, stream=term)
    p.start(0)
    for step in range(1, 11):
        p.advance(step)
    p.update(10, {"loss/D": 1.25, "loss/G": 0.5})
    print("warning: a note in the middle of training", file=sys.stderr)
    p.close()
    assert sys.stderr is term  # given back
    text = term.getvalue()
    assert "10/100" in text and "loss D 1.25 G 0.5" in text and "step" in text
    # the bar is cleared before the note and drawn again after it: the note is a whole line
    before, note, after = text.partition("warning: a note in the middle of training\n")
    assert note and before.endswith("\r") and after.startswith("\rtrain:")


def test_progress_off_writes_nothing(monkeypatch):
    term = _Terminal()
    p = Progress(100, False, stream=term)
    p.start(0)
    p.advance(5)
    p.update(5, {"loss/D": 1.0})
    p.close()
    assert term.getvalue() == "" and p.bar is None


def test_running_means_read_sorted():
    r = RunningMeans()
    r.add({"loss/G": torch.tensor(1.0)})
    r.add({"loss/D": torch.tensor(2.0), "D/real": torch.tensor(3.0)})
    r.add({"loss/G": torch.tensor(3.0)})
    assert list(r.read().items()) == [("D/real", 3.0), ("loss/D", 2.0), ("loss/G", 2.0)]


def test_tensorboard_gets_named_metrics_and_images_but_no_bookkeeping(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLogger(tmp_path)
    log.write({"step": 5, "loss/D": 0.5, "steps_per_s": 9.0, "time": 1.7e9})
    log.write({"step": 5, "metrics/modes": 7.0, "final": True}, file="metrics.jsonl")
    Image.fromarray(np.full((6, 8), 200, np.uint8)).save(tmp_path / "grid.png")
    log.image("samples", tmp_path / "grid.png", 5)
    log.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert sorted(acc.Tags()["scalars"]) == ["loss/D", "metrics/modes", "steps_per_s"]
    assert [(e.step, e.value) for e in acc.Scalars("metrics/modes")] == [(5, 7.0)]
    (image,) = acc.Images("samples")
    assert (image.step, image.width, image.height) == (5, 8, 6)


def test_running_means_keep_one_buffer_and_sum_rows_as_one_stack():
    r = RunningMeans()
    g = torch.Generator().manual_seed(0)
    buffers = set()
    for period in range(2):  # 100 rows: the buffer grows (32, 64, 128), then is reused
        rows = torch.randn(100, 2, generator=g)
        for a, b in rows:
            r.add({"x": a.clone(), "y": b.double()})
        buffers.add(r._rows[("x", "y")].buffer.data_ptr())
        sums = rows.view(100, 2).sum(0).tolist()  # what one [rows, keys] float32 sum gives
        assert r.read() == {"x": sums[0] / 100, "y": sums[1] / 100}
    assert len(buffers) == 1


def test_running_means_keep_other_values_as_they_are():
    r = RunningMeans()
    r.add({"loss": torch.tensor(1.0)})
    r.add({"loss": torch.tensor(2.0)})
    r.add({"loss": torch.tensor([6.0])})  # not 0-dim: kept, the rows before it too
    assert r.read() == {"loss": 3.0}
    r.add({"loss": torch.tensor(5.0)})  # the next period starts on the buffer again
    assert r._rows[("loss",)].kept is None and r.read() == {"loss": 5.0}


def test_running_means_check_every_pending_value_for_finiteness():
    r = RunningMeans()
    assert bool(r.values_finite())
    r.add({"loss": torch.tensor(1.0), "grad": torch.tensor(2.0)})
    r.add({"other": torch.tensor([3.0])})  # a group on the general path
    assert bool(r.values_finite())
    r.add({"loss": torch.tensor(float("inf")), "grad": torch.tensor(0.0)})
    assert not bool(r.values_finite())
    assert r.read()["loss"] == float("inf")
    assert bool(r.values_finite())  # read: nothing pending
    r.add({"other": torch.tensor([float("nan")])})
    assert not bool(r.values_finite())
