"""benchmarks/report.py: each benchmark rewrites only its own section of BENCHMARKS.md."""
import pytest

from benchmarks.report import write_section


def test_a_section_is_replaced_in_place_and_others_are_kept(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n")
    write_section(md, "## A\n\nnew a\nsecond line\n")
    assert md.read_text() == "# Benchmarks\n\n## A\n\nnew a\nsecond line\n\n## B\n\nold b\n"
    write_section(md, "## B\n\nnew b\n")
    assert md.read_text() == "# Benchmarks\n\n## A\n\nnew a\nsecond line\n\n## B\n\nnew b\n"


def test_a_new_section_is_appended_and_a_missing_file_is_created(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    write_section(md, "## A\n\na\n")
    write_section(md, "## AB\n\nab\n")  # a title that starts like another is its own section
    assert md.read_text() == "# Benchmarks\n\n## A\n\na\n\n## AB\n\nab\n"


def test_text_without_a_heading_is_refused(tmp_path):
    with pytest.raises(ValueError, match="heading"):
        write_section(tmp_path / "x.md", "no heading\n")


def test_write_json_makes_the_folder_and_skips_without_a_path(tmp_path):
    import json

    from benchmarks.report import write_json

    target = tmp_path / "deep" / "out.json"
    write_json(target, {"a": [1, 2], "b": 0.5})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 0.5}
    write_json(None, {"ignored": True})  # no --json given: nothing is written
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "out.json"]


def _fake_training(name_dir):
    """A command that 'trains' by writing the run's last checkpoint, and counts its calls."""
    import sys

    code = ("import pathlib, sys; d = pathlib.Path(sys.argv[1]); (d / 'checkpoints').mkdir(parents=True); "
            "(d / 'checkpoints' / 'last.pt').write_text('x'); "
            "c = d.parent / 'calls.txt'; c.write_text(c.read_text() + d.name + ' ' if c.exists() else d.name + ' ')")
    return [sys.executable, "-c", code, str(name_dir)]


def test_train_runs_records_cpu_time_and_a_rerun_trains_only_what_is_missing(tmp_path):
    import json

    from benchmarks.report import train_runs

    commands = {n: _fake_training(tmp_path / n) for n in ("a", "b")}
    cpu = train_runs(commands, tmp_path, jobs=2)
    assert set(cpu) == {"a", "b"} and all(v >= 0 for v in cpu.values())
    assert json.loads((tmp_path / "cpu_minutes.json").read_text()).keys() == {"a", "b"}
    # "c" was started by an interrupted benchmark: its folder is there, its CPU time is not
    (tmp_path / "c" / "checkpoints").mkdir(parents=True)
    (tmp_path / "calls.txt").write_text("")
    cpu = train_runs({**commands, "c": _fake_training(tmp_path / "c")}, tmp_path, jobs=2)
    assert set(cpu) == {"a", "b", "c"}
    assert (tmp_path / "calls.txt").read_text().split() == ["c"]  # a and b were kept
