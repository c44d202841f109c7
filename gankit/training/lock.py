"""One trainer per run folder: a lock that a crashed run cannot leave stuck.

The lock is a POSIX record lock (``fcntl.lockf``) on ``RUN/.lock``, which also holds the
holder's pid for the error message. The kernel drops such a lock when its process dies,
however it dies (kill -9 included), so a dead holder's lock is simply taken over; and unlike
``flock`` it is not inherited by forked DataLoader workers, which may outlive a killed
trainer by a few seconds. Where record locks are unavailable (no ``fcntl``, or a file system
that refuses them) the pid in the file decides: a lock whose pid is not alive is taken over.

Within one process the lock is re-entrant (a notebook may build a second Trainer on a run
after the first one stopped); it guards against other processes.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from gankit.errors import GankitError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
_HELD: dict[str, list] = {}  # real lock path -> [fd, holders in this process]


class RunFolderBusy(GankitError):
    """Another live process trains in this run folder."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or 0)
    except (OSError, ValueError):
        return 0


def _busy(run_dir: Path, pid: int) -> RunFolderBusy:
    who = f" (pid {pid})" if pid else ""
    return RunFolderBusy(f"run folder '{run_dir}' is in use by another gankit process{who}; "
                         "wait for it to finish or stop it, or train into another --out")


def _try_lock(fd: int, run_dir: Path) -> None:
    """Take the record lock on ``fd``, or fall back to the pid check; raise when busy."""
    if fcntl is not None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                raise _busy(run_dir, _read_pid(fd)) from None
            # ENOLCK, EOPNOTSUPP ...: a file system without record locks; use the pid
    holder = _read_pid(fd)
    if holder != os.getpid() and pid_alive(holder):
        raise _busy(run_dir, holder)


def acquire(run_dir: str | Path) -> Path:
    """Lock ``run_dir`` (which must exist) for this process and write our pid into the lock.

    Raises :class:`RunFolderBusy` when a live process holds it, and lets ``OSError`` through
    when the folder cannot be written (the caller turns that into its own message)."""
    path = Path(run_dir) / LOCK_NAME
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _try_lock(fd, Path(run_dir))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # reading the old pid moved the offset
        os.write(fd, f"{os.getpid()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = [fd, 1]
    return path


def release(run_dir: str | Path) -> None:
    """Drop one hold on ``run_dir``'s lock; the last one unlocks it and clears the pid."""
    key = os.path.realpath(Path(run_dir) / LOCK_NAME)
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    fd = held[0]
    try:
        os.ftruncate(fd, 0)  # no pid left behind for the fallback check to trust
    except OSError:
        pass
    os.close(fd)  # closing releases the record lock


def live_holder(run_dir: str | Path) -> int:
    """The pid of the live process that holds ``run_dir``'s lock, else 0 (no lock file, or
    one left by a finished run, which clears it, or by a killed one, whose pid is gone)."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text().strip()
        pid = int(text or 0)
    except (OSError, ValueError):
        return 0
    return pid if pid_alive(pid) else 0


def is_held(run_dir: str | Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return os.path.realpath(Path(run_dir) / LOCK_NAME) in _HELD


def claim_run_dir(run_dir: str | Path, create: bool) -> bool:
    """Before any training work: create ``run_dir`` (when ``create``), lock it, check that
    checkpoints can be written there, and delete what killed writers left behind.

    Every failure is a one-line :class:`GankitError`. Returns False, locking nothing, when
    ``create`` is off and the folder does not exist (the missing checkpoint is reported by
    whoever loads it)."""
    from gankit.files import remove_stale_temporaries

    run_dir = Path(run_dir)
    if not create and not run_dir.is_dir():
        return False
    if run_dir.exists() and not run_dir.is_dir():
        raise GankitError(f"'{run_dir}' is a file, not a run folder; choose another --out")
    checkpoints = run_dir / "checkpoints"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        acquire(run_dir)
        checkpoints.mkdir(exist_ok=True)
        probe = checkpoints / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"gankit")
        probe.unlink()
    except OSError as e:
        if is_held(run_dir):
            release(run_dir)
        where = f" at '{e.filename}'" if e.filename else ""
        raise GankitError(f"cannot write to run folder '{run_dir}' ({e.strerror or e}{where}); "
                          "choose a writable --out or fix the folder's permissions") from None
    for folder in (run_dir, checkpoints, run_dir / "samples"):  # every folder the trainer writes
        remove_stale_temporaries(folder)
    return True
