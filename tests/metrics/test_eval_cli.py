import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.training.trainer import Trainer
from tests.conftest import tiny_toy_config

FAST = ["--extractor", "identity", "--no-cache", "--workers", "0", "--kid-subset-size", "10",
        "--kid-subsets", "3"]


def _write_folder(path, seed, n=12, size=6):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


def _value(out, key):
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == key:
            return float(parts[1])
    raise AssertionError(f"{key} not printed in {out!r}")


def test_two_folders(tmp_path, capsys):
    a, b = _write_folder(tmp_path / "a", 0), _write_folder(tmp_path / "b", 1)
    assert main(["eval", str(a), str(b), "--metrics", "fid,kid", "--out", str(tmp_path / "o"), *FAST]) == 0
    out = capsys.readouterr().out
    assert _value(out, "fid") > 0 and "kid_std" in out
    assert main(["eval", str(a), str(a), "--metrics", "fid", *FAST]) == 0
    assert abs(_value(capsys.readouterr().out, "fid")) < 1e-6


def test_saved_statistics_reproduce_the_folder_fid(tmp_path, capsys):
    a, b = _write_folder(tmp_path / "a", 0), _write_folder(tmp_path / "b", 1)
    stats = tmp_path / "b.npz"
    assert main(["eval", str(b), "--save-stats", str(stats), *FAST]) == 0
    with np.load(stats) as f:
        assert f["mu"].shape == (108,) and f["sigma"].shape == (108, 108)
    main(["eval", str(a), str(b), "--metrics", "fid", *FAST])
    direct = _value(capsys.readouterr().out, "fid")
    main(["eval", str(a), "--stats", str(stats), *FAST])
    torch.testing.assert_close(torch.tensor(_value(capsys.readouterr().out, "fid")), torch.tensor(direct))


def test_folder_alone_and_missing_paths_are_user_errors(tmp_path, capsys):
    a = _write_folder(tmp_path / "a", 0)
    assert main(["eval", str(a), *FAST]) == 2
    assert "--stats" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    b = _write_folder(tmp_path / "b", 1, size=8)
    assert main(["eval", str(a), str(b), "--metrics", "fid", *FAST]) == 2
    assert "item_shape ('3x6x6' vs '3x8x8')" in capsys.readouterr().err


def test_toy_run(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_toy_config(), run).fit()
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "toy", "--n", "300", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "modes covered" in out and "high-quality samples" in out
    assert (run / "eval" / "toy_scatter.png").is_file()
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["source"] == "gankit eval" and record["protocol"]["toy"]["n_fake"] == 300
    # the same 300 samples (one draw of seed 0, as `gankit sample --n 300` makes), scored directly
    from gankit.api import load_run
    from gankit.metrics.toy import toy_metrics

    loaded = load_run(run)
    samples = loaded.generate(300, seed=0)
    direct = toy_metrics(samples, "ring8")
    assert record["metrics/modes"] == direct["modes"]
    assert record["metrics/high_quality"] == pytest.approx(direct["high_quality"])
    assert record["metrics/mode_kl"] == pytest.approx(direct["kl"])
    assert f"{direct['modes']}/8 modes covered" in out


def test_progress_line_shows_on_a_terminal_only():
    import io

    from gankit.metrics.cli import _progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    batches = [torch.zeros(1500, 2), torch.zeros(1000, 2)]
    shown = Terminal()
    assert [len(b) for b in _progress(iter(batches), 2500, "generated", shown)] == [1500, 1000]
    assert "\rgenerated 1,500/2,500" in shown.getvalue() and "\rgenerated 2,500/2,500" in shown.getvalue()
    piped = io.StringIO()
    assert len(list(_progress(iter(batches), 2500, "generated", piped))) == 2
    assert piped.getvalue() == ""
    short = Terminal()  # a short evaluation ends before a progress line is worth reading
    list(_progress(iter(batches[:1]), 1500, "generated", short))
    assert short.getvalue() == ""


def _fid_of_run(run, capsys, *args):
    assert main(["eval", str(run), "--metrics", "fid", "--device", "cpu", *args]) == 0
    out = capsys.readouterr().out
    return _value(out, "fid"), out


def test_run_samples_do_not_depend_on_the_batch_size(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_toy_config(), run).fit()
    capsys.readouterr()
    fids = [_fid_of_run(run, capsys, "--n", "60", "--batch-size", bs, "--no-reference", *FAST)[0]
            for bs in ("7", "25", "60")]
    torch.testing.assert_close(torch.tensor(fids[1:]), torch.tensor([fids[0]] * 2), rtol=1e-6, atol=0)
    other_seed = _fid_of_run(run, capsys, "--n", "60", "--seed", "1", "--no-reference", *FAST)[0]
    assert abs(other_seed - fids[0]) > 1e-3  # the samples do depend on the seed


def test_a_second_eval_reads_every_real_side_from_the_cache(tmp_path, capsys, monkeypatch):
    from tests.metrics.test_declared_statistics import _spy_scans as spy_scans

    run = tmp_path / "run"
    Trainer(tiny_toy_config(), run).fit()
    capsys.readouterr()
    scanned = spy_scans(monkeypatch)
    args = ["--n", "40", "--n-real", "100", "--extractor", "identity", "--cache-dir", str(tmp_path / "c")]
    first, out1 = _fid_of_run(run, capsys, *args)
    # samples, the real reference, and the first real-vs-real set; the second real-vs-real set
    # is the reference itself, read back from the cache entry the first pass wrote
    assert sorted(scanned) == sorted([("generated", 40), ("ring8", 100), ("ring8", 40)])
    scanned.clear()
    second, out2 = _fid_of_run(run, capsys, *args)
    assert scanned == [("generated", 40)] and second == first
    assert out1.split("real vs real")[1] == out2.split("real vs real")[1]  # the same reference


from tests.training.test_full_disk import full_disk  # noqa: E402,F401  (the fixture)


def test_full_disk_while_saving_statistics_is_one_line_and_keeps_the_old_file(tmp_path, capsys, full_disk):
    b = _write_folder(tmp_path / "b", 1)
    stats = tmp_path / "b.npz"
    stats.write_bytes(b"the old statistics")
    full_disk("b.npz")
    assert main(["eval", str(b), "--save-stats", str(stats), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not write" in err and "b.npz" in err
    assert stats.read_bytes() == b"the old statistics"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_full_disk_in_the_statistics_cache_only_warns(tmp_path, capsys, full_disk):
    a, b = _write_folder(tmp_path / "a", 0), _write_folder(tmp_path / "b", 1)
    cache = tmp_path / "cache"
    fast = [x for x in FAST if x != "--no-cache"]
    full_disk(".npz")
    with pytest.warns(UserWarning, match="statistics cache not saved"):
        assert main(["eval", str(a), str(b), "--metrics", "fid", "--cache-dir", str(cache), *fast]) == 0
    assert _value(capsys.readouterr().out, "fid") > 0
    assert not any(cache.rglob("*.npz"))
