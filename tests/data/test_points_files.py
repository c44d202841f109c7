"""Point clouds from .npy and .csv files, and the errors for every kind of bad file."""
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gankit.data.points import load_points
from gankit.errors import DataError

ARRAY = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0, -7.5], [4.0, 0.0, 1.0], [-2.0, 6.5, 0.125]])


def test_npy_round_trip_any_dimension(tmp_path):
    path = tmp_path / "p.npy"
    np.save(path, ARRAY)
    x = load_points(path)
    assert x.dtype == torch.float32 and x.shape == (4, 3)
    assert_close(x, torch.tensor(ARRAY, dtype=torch.float32))


def test_npy_of_integers_becomes_float(tmp_path):
    np.save(tmp_path / "i.npy", np.array([[1, 2], [3, 4]], dtype=np.int64))
    assert_close(load_points(str(tmp_path / "i.npy")), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_csv_without_header(tmp_path):
    path = tmp_path / "p.csv"
    np.savetxt(path, ARRAY, delimiter=",")
    assert_close(load_points(path), torch.tensor(ARRAY, dtype=torch.float32))


def test_csv_with_header_and_spaces(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x, y, z\n" + "\n".join(", ".join(map(str, r)) for r in ARRAY) + "\n\n")
    assert_close(load_points(path), torch.tensor(ARRAY, dtype=torch.float32))


def test_single_column_csv(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("value\n1.5\n-2\n")
    assert_close(load_points(path), torch.tensor([[1.5], [-2.0]]))


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("name,content,message", [
    ("p.txt", "1,2\n", r"extension '\.txt' is not supported; save the points as \.npy or \.csv"),
    ("p.csv", "1,2\n3,abc\n", r"line 2: 'abc' is not a number"),
    ("p.csv", "a,b\nc,d\n", r"line 2: 'c' is not a number"),
    ("p.csv", "1;2\n3;4\n", r"'3;4' is not a number; points must be comma-separated"),
    ("p.csv", "", r"holds no points"),
    ("p.csv", "x,y\n", r"holds no points"),
    ("p.csv", "1,2\n3\n", r"line 2 has 1 values but earlier lines have 2"),
    ("p.csv", "1,2\nnan,4\n", r"NaN or infinite values in 1 point\(s\), first at row 1"),
    ("p.csv", "1,2\n1e39,0\n", r"too large for float32"),
    ("p.npy", np.array([[1.0, np.inf], [0.0, 0.0]]), r"NaN or infinite .* first at row 0"),
    ("p.npy", np.arange(5.0), r"shape \(5,\); points must be 2-D"),
    ("p.npy", np.zeros((2, 3, 4)), r"shape \(2, 3, 4\); points must be 2-D"),
    ("p.npy", np.zeros((0, 2)), r"holds no points"),
    ("p.npy", np.array([["a", "b"]]), r"<U1 values; points must be real numbers"),
    ("p.npy", np.array([[1, None]], dtype=object), r"cannot read .* as a \.npy array"),
    ("p.npy", b"not a numpy file", r"cannot read .* as a \.npy array"),
    ("p.csv", b"\xff\xfe\x00bad", r"cannot read .* as text"),
])
def test_bad_point_files_raise_a_helpful_data_error(tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as info:
        load_points(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist; check data.source"):
        load_points(tmp_path / "missing.npy")
    with pytest.raises(DataError, match="is not a file; give a .npy or .csv file"):
        load_points(tmp_path)
