"""gankit.runtime.tune_allocator: glibc's thresholds fixed where it applies, nothing elsewhere,
and every entry point calling it before data are loaded (issue 16)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gankit import runtime

ROOT = Path(__file__).resolve().parents[1]
IS_GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")


@pytest.fixture
def fresh(monkeypatch):
    """A runtime module that has not tuned yet, with no allocator variables set."""
    monkeypatch.setattr(runtime, "_done", False)
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GANKIT_NO_MALLOPT"):
        monkeypatch.delenv(key, raising=False)
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(runtime.platform, "system", lambda: "Linux")
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("glibc", "2.36"))
    return calls


def test_sets_both_thresholds_once_on_glibc(fresh):
    assert runtime.tune_allocator() is True
    assert fresh == [(-3, 32 * 1024 * 1024), (-1, 256 * 1024 * 1024)]
    assert runtime.tune_allocator() is True
    assert len(fresh) == 2  # the second call asks the C library nothing


@pytest.mark.parametrize("system, libc", [("Darwin", ("", "")), ("Windows", ("", "")),
                                          ("Linux", ("musl", "1.2"))])
def test_leaves_other_platforms_alone(fresh, monkeypatch, system, libc):
    monkeypatch.setattr(runtime.platform, "system", lambda: system)
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: libc)
    assert runtime.tune_allocator() is False
    assert fresh == []


@pytest.mark.parametrize("key, value", [("MALLOC_MMAP_THRESHOLD_", "65536"),
                                        ("MALLOC_TRIM_THRESHOLD_", "0"), ("GANKIT_NO_MALLOPT", "1")])
def test_the_users_environment_wins(fresh, monkeypatch, key, value):
    monkeypatch.setenv(key, value)
    assert runtime.tune_allocator() is False
    assert fresh == []


def test_a_refused_setting_reports_false(fresh, monkeypatch):
    class Refusing:
        def mallopt(self, param, value):
            return 0  # glibc's answer to a parameter it rejects

    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: Refusing())
    assert runtime.tune_allocator() is False
    assert runtime._done is False  # a later call tries again


def test_a_c_library_without_mallopt_reports_false(fresh, monkeypatch):
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: object())
    assert runtime.tune_allocator() is False


@pytest.mark.parametrize("argv", [["train", "--dry-run"], ["sample", "missing-run", "--out", "x"],
                                  ["translate", "missing-run", "--input", "a", "--out", "b"],
                                  ["eval", "missing-run"], ["interpolate", "missing-run"]])
def test_every_cli_command_tunes_first(monkeypatch, tmp_path, argv):
    from gankit import cli

    order = []
    monkeypatch.setattr(runtime, "tune_allocator", lambda: order.append("tune") or True)
    monkeypatch.setattr(cli, "build_parser", lambda real=cli.build_parser: order.append("parse") or real())
    monkeypatch.chdir(tmp_path)
    cli.main(argv)
    assert order[:2] == ["tune", "parse"]


def test_trainer_tunes_before_loading_data(monkeypatch, tmp_path):
    from gankit.training import trainer as trainer_module
    from tests.conftest import tiny_toy_config

    order = []
    monkeypatch.setattr(trainer_module, "tune_allocator", lambda: order.append("tune") or True)
    real_build = trainer_module.build_source
    monkeypatch.setattr(trainer_module, "build_source",
                        lambda *a, **k: order.append("data") or real_build(*a, **k))
    trainer_module.Trainer(tiny_toy_config(), tmp_path / "run")
    assert order == ["tune", "data"]


def test_load_run_tunes_before_reading_the_checkpoint(monkeypatch, tmp_path):
    from gankit import api
    from gankit.errors import CheckpointError

    order = []
    monkeypatch.setattr(api, "tune_allocator", lambda: order.append("tune") or True)
    monkeypatch.setattr(api, "load_checkpoint", lambda path: order.append("load") or {})
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises((CheckpointError, KeyError)):
        api.load_run(tmp_path)
    assert order == ["tune", "load"]


MALLINFO = """
import ctypes, json, sys
from gankit.runtime import tune_allocator
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
tuned = tune_allocator() if sys.argv[1] == "tune" else False
before = libc.mallinfo2().hblkhd
block = libc.malloc(8 << 20)  # 8 MiB: above glibc's default mmap threshold, below gankit's
mapped = libc.mallinfo2().hblkhd - before
libc.free(block)
print(json.dumps({"tuned": tuned, "mapped": mapped}))
"""


@pytest.mark.skipif(not IS_GLIBC, reason="glibc's allocator only")
@pytest.mark.parametrize("mode", ["tune", "default"])
def test_the_real_allocator_takes_the_setting(mode):
    """In a fresh process: an 8 MiB block is mmapped under glibc's default threshold and comes
    from the heap once gankit has raised it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GANKIT_NO_MALLOPT"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", MALLINFO, mode], env=env, capture_output=True,
                         text=True, check=True)
    got = json.loads(out.stdout)
    assert got["tuned"] is (mode == "tune")
    assert got["mapped"] == (0 if mode == "tune" else pytest.approx(8 << 20, abs=8192))


def test_passive_openmp_sets_the_policy_unless_the_user_chose(monkeypatch):
    from gankit.runtime import passive_openmp

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert passive_openmp() is True
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert passive_openmp() is False
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_cli_sets_the_policy_before_torch_loads():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    probe = ("import builtins, os\n"
             "real = builtins.__import__\n"
             "def spy(name, *a, **k):\n"
             "    if name == 'torch' and 'seen' not in globals():\n"
             "        globals()['seen'] = os.environ.get('OMP_WAIT_POLICY')\n"
             "    return real(name, *a, **k)\n"
             "builtins.__import__ = spy\n"
             "import gankit.cli\n"
             "print(seen)\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(repo)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
