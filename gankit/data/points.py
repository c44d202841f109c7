"""Point clouds from files: one point per row, any number of columns.

Two formats are read: ``.npy`` (a 2-D numeric array) and ``.csv`` (comma-separated numbers,
optionally preceded by one header line of column names). Anything else, and any file that is
empty, ragged, non-numeric or holds NaN/inf, is a :class:`DataError` naming the fix.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gankit.errors import DataError

POINT_EXTENSIONS = (".npy", ".csv")


def load_points(path: str | Path) -> Tensor:
    """Read a point cloud as float32 ``[N, D]`` from a ``.npy`` or ``.csv`` file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"point file '{path}' does not exist; check data.source")
    if not path.is_file():
        raise DataError(f"'{path}' is not a file; give a .npy or .csv file of points")
    suffix = path.suffix.lower()
    if suffix not in POINT_EXTENSIONS:
        raise DataError(f"cannot read points from '{path}': the extension '{path.suffix}' "
                        f"is not supported; save the points as .npy or .csv")
    array = _read_npy(path) if suffix == ".npy" else _read_csv(path)
    return _check(array, path)


def _read_npy(path: Path) -> np.ndarray:
    try:
        # allow_pickle=False: a .npy of Python objects is not a point cloud and may run code.
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"cannot read '{path}' as a .npy array ({e}); save it with "
                        f"numpy.save(path, array) from a numeric array") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"'{path}' holds a .npz archive, not one array; save a single array")
    if array.dtype.kind not in "iuf":
        raise DataError(f"'{path}' holds {array.dtype} values; points must be real numbers")
    return array


def _read_csv(path: Path) -> np.ndarray:
    try:
        with path.open(newline="") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read '{path}' as text ({e}); give a comma-separated file") \
            from None
    if rows and not _is_numeric_row(rows[0][1]):
        rows = rows[1:]  # one header line of column names
    if not rows:
        raise DataError(f"'{path}' holds no points; write one comma-separated point per line")
    width = len(rows[0][1])
    values = []
    for line, row in rows:
        if len(row) != width:
            raise DataError(f"'{path}' line {line} has {len(row)} values but earlier lines "
                            f"have {width}; every point needs the same number of columns")
        values.append(_parse_row(row, line, path))
    return np.asarray(values, dtype=np.float64)


def _is_numeric_row(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def _parse_row(row: list[str], line: int, path: Path) -> list[float]:
    try:
        return [float(v) for v in row]
    except ValueError:
        bad = next(v for v in row if not _is_numeric_row([v]))
        raise DataError(f"'{path}' line {line}: '{bad.strip()}' is not a number; points must "
                        f"be comma-separated numbers (only the first line may be a header)") \
            from None


def _check(array: np.ndarray, path: Path) -> Tensor:
    if array.ndim != 2:
        raise DataError(f"'{path}' holds an array of shape {tuple(array.shape)}; points must "
                        f"be 2-D [N points, D dims] (reshape a 1-D array to [N, 1])")
    if array.size == 0:
        raise DataError(f"'{path}' holds no points (shape {tuple(array.shape)})")
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(f"'{path}' holds NaN or infinite values in {len(bad_rows)} point(s), "
                        f"first at row {bad_rows[0]} (0-based); remove or fix them")
    if np.abs(array).max() > np.finfo(np.float32).max:
        raise DataError(f"'{path}' holds values too large for float32; rescale the points")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

