"""benchmarks/faces_real.py: the real-face split is seeded, disjoint and made once."""
from pathlib import Path

from PIL import Image


def _faces_real(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from benchmarks import faces_real

    return faces_real


def test_natural_order_puts_numbered_files_in_numeric_order(monkeypatch):
    fr = _faces_real(monkeypatch)
    names = [Path(n) for n in ("10.jpg", "2.jpg", "1.jpg", "b.png", "a10.png", "a9.png")]
    assert [p.name for p in sorted(names, key=fr._natural)] == \
        ["1.jpg", "2.jpg", "10.jpg", "a9.png", "a10.png", "b.png"]


def test_split_is_seeded_disjoint_and_covers_every_image(tmp_path, monkeypatch):
    fr = _faces_real(monkeypatch)
    data = tmp_path / "faces"
    (data / "sub").mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(data / ("sub" if i % 3 == 0 else "") / f"{i}.png")
    (data / "notes.txt").write_text("not an image")
    a = fr.split(data, tmp_path / "a", 3)
    b = fr.split(data, tmp_path / "b", 3)
    names = {k: sorted(p.name for p in v.iterdir()) for k, v in a.items()}
    assert {k: len(v) for k, v in names.items()} == {"heldA": 3, "heldB": 3, "train": 6}
    assert not (set(names["heldA"]) & set(names["heldB"])) and not (set(names["heldA"]) & set(names["train"]))
    assert len(set().union(*names.values())) == 12  # every image once; the text file in none
    assert names == {k: sorted(p.name for p in v.iterdir()) for k, v in b.items()}  # seeded
    link = next(a["heldA"].iterdir())
    assert link.is_symlink() and link.resolve().parent in (data, data / "sub")
    # made once: a second call reads the split that is there
    assert fr.split(data, tmp_path / "a", 5) == a


def test_train_for_cpu_calls_each_mark_once_in_order_then_stops_at_the_budget(tmp_path, monkeypatch):
    import json
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import report

    # a stand-in trainer: logs its step, burns CPU, and exits cleanly on Ctrl-C like gankit train
    script = ("import json, signal, sys\n"
              "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
              f"open({str(tmp_path / 'log.jsonl')!r}, 'w').write(json.dumps({{'step': 7}}) + '\\n')\n"
              "while True: sum(range(10000))\n")
    seen: list[tuple[float, float]] = []
    marks = {0.02: lambda used: seen.append((0.02, used)), 0.01: lambda used: seen.append((0.01, used))}
    step, used = report.train_for_cpu([sys.executable, "-c", script], tmp_path, 0.03, {}, marks)
    assert step == 7
    assert [m for m, _ in seen] == [0.01, 0.02]  # each once, earliest first
    assert all(u >= m for m, u in seen) and seen[0][1] <= seen[1][1] <= used
    assert 0.03 <= used < 0.03 + 0.05  # stopped soon after the budget (polled once a second)
    json.loads((tmp_path / "log.jsonl").read_text())


def test_table_has_one_cell_per_column_with_snapshots_and_extension(monkeypatch):
    from types import SimpleNamespace

    fr = _faces_real(monkeypatch)
    a = SimpleNamespace(size=32, cpu_min=20.0, n=1000, seeds="0,1", snapshots=[10.0], snap_every=250,
                        extend=30.0)
    res = [{"fid": f, "steps": 100, "snapshots": {"10": {"fid": f + 50}},
            "extended": {"fid": f - 20, "steps": 150}} for f in (200.0, 210.0)]
    text = fr._table([("row", "faces32_dcgan", res)], 37.9, a)
    header, rule, line = text.strip().splitlines()[-3:]
    assert header.count("|") == rule.count("|") == line.count("|") == 10  # 9 columns
    assert "255.0" in line and "205.0" in line and "185.0" in line  # means at 10, 20 and 30 min
