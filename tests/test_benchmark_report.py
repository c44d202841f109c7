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
