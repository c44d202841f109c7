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
