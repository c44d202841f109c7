"""The one way gankit writes a run's files: whole or not at all, and a failure is one line.

The trainer, ``gankit eval`` (its ``metrics.jsonl`` record) and the pictures an evaluation
draws all write through here, which is why it sits in the base layer. A full disk (ENOSPC), an unwritable folder or an I/O error while a checkpoint, a sample
grid, ``config.yaml`` or a JSONL record is written must not leave a half-written file in
place of the previous good one, nor end in a traceback. Whole files are written to a
temporary name in the same folder and renamed over the target (:func:`replacing`); records
are appended and cut back to the file's old length if the append fails (:func:`append_line`);
:func:`translated` turns the ``OSError`` into the project's one-line error.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from gankit.errors import GankitError

class WriteError(GankitError):
    """A file could not be written (full disk, unwritable folder); the old file is kept."""


TEMPORARY = ".tmp"  # a temporary file's name: .{target name}.{pid}.tmp[.suffix]


def temporary_name(path: Path, suffix: bool = False) -> Path:
    """Where :func:`replacing` writes ``path`` first; with ``suffix`` it ends in the target's
    suffix too (Pillow and matplotlib choose the format by it)."""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMPORARY}{path.suffix if suffix else ''}")


def fsync_dir(folder: Path) -> None:
    # the rename lives in the folder's entries: without this a power cut may forget it
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: Path, suffix: bool = False) -> Iterator[Path]:
    """``with replacing(path) as tmp``: write ``tmp``; on success it is synced and renamed over
    ``path`` (which holds the old file or the new one, never a mix, whatever happens
    meanwhile); on failure it is removed and the error passes on."""
    path = Path(path)
    tmp = temporary_name(path, suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def append_line(path: Path, line: str) -> None:
    """Append ``line`` and a newline to ``path``; if the write fails part-way, the file is cut
    back to its old length (a reader never meets half a record) and the error passes on."""
    data = (line + "\n").encode("utf-8")
    with open(path, "ab", buffering=0) as f:
        start = f.seek(0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[f.write(view):]
        except OSError:
            with contextlib.suppress(OSError):
                f.truncate(start)
            raise


def keep_lines(path: Path, keep) -> int:
    """Rewrite ``path`` (atomically) with only the lines for which ``keep(line)`` is true;
    returns how many were dropped (0: the file is left untouched)."""
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if keep(line)]
    if len(kept) < len(lines):
        with replacing(path) as tmp:
            tmp.write_text("".join(kept), encoding="utf-8")
    return len(lines) - len(kept)


def reason(e: OSError) -> str:
    """An OSError's cause in words: 'No space left on device', 'Permission denied'."""
    return e.strerror or str(e) or type(e).__name__


@contextlib.contextmanager
def translated(path: Path, then: str, what: str = "",
               error: type[GankitError] = WriteError) -> Iterator[None]:
    """An ``OSError`` inside becomes ``error``: "could not write {what}'{path}' (reason); {then}"
    (``then`` says what survived and how to go on)."""
    try:
        yield
    except OSError as e:
        raise error(f"could not write {what}'{path}' ({reason(e)}); {then}") from None


@contextlib.contextmanager
def written(path: Path, then: str = "free space or fix the folder",
            suffix: bool = False) -> Iterator[Path]:
    """``with written(path) as tmp``: :func:`replacing` with its failure as one
    :class:`WriteError` line naming ``path`` (a picture of an evaluation, a report)."""
    with translated(path, then), replacing(path, suffix) as tmp:
        yield tmp


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process never finished (call it
    only while holding the run's lock: a live writer's file would go too)."""
    removed = []
    for tmp in [*Path(folder).glob(f".*{TEMPORARY}"), *Path(folder).glob(f".*{TEMPORARY}.*")]:
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed
