"""The simulator's own hidden work files: their names, the locks that reserve a destination, and cleaning up
what killed runs left behind.

Beside a destination NAME (a run folder, or a file such as calibrate's FILE.yaml) the simulator makes, and only
ever removes, names that no other program would use:

    .NAME.nwlsim-partial-PID[.SUFFIX]   the folder (or file) being written; renamed into place when complete
    .NAME.nwlsim-probe-PID[.xxx]        made and removed again to try the filesystem before anything runs
                                        (padded to the longest name writing NAME uses)
    .NAME.nwlsim-lock                   reserves NAME while a run computes and writes it; holds "PID HOST\\n"

`report` stages its files the same way inside a run folder (`.report.nwlsim-partial-PID`), and each chart file
as `.STEM.EXT.nwlsim-partial-PID.EXT` (sim.outputs.charts.save_figure). `WORK_NAME` /
`is_work_name` is the one definition of these names: the writers build names with `work_name`/`lock_name`, the
folder reader refuses a folder so named (a run or report still being written, or one that was killed), and
`clean_stale_work` removes only what matches it: another program's `.sync.lock` or `.cache.partial-123` is never
touched, and a lock file is removed only when its text is this tool's `PID HOST` and no live run holds it. No
destination may be so named, nor lie inside a folder so named, nor be named as older versions named a partial
folder (`.NAME.partial-PID`): `is_unfinished_name`, checked by sim.outputs.destination before anything runs.

Locks are flock(2) locks, which die with the process that took them, so a run killed with SIGKILL reserves
nothing. Where the filesystem has no flock (ENOLCK or EOPNOTSUPP on some CIFS and sshfs mounts; Windows) the lock
file is created exclusively instead and counts as held while the PID it names is alive on this machine (a lock
from another machine, or one whose text cannot be read, counts as held: its path is in the refusal message).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

WORK_TAG = "nwlsim"             # in every work file's name: the simulator's, and nobody else's
STALE_PARTIAL_HOURS = 6         # a partial or probe this old is stale even if a process has its PID
WORK_NAME = re.compile(rf"^\.(?P<name>.+)\.{WORK_TAG}-(?:(?P<kind>partial|probe)-(?P<pid>\d+)"
                       rf"(?P<suffix>\.[A-Za-z0-9]+)?|(?P<lock>lock))$")
LEGACY_PARTIAL_NAME = re.compile(r"^\..+\.partial-\d+$")   # versions before WORK_TAG: `.NAME.partial-PID`
_LOCK_TEXT = re.compile(r"(?P<pid>\d{1,10}) (?P<host>\S{1,255})\n?")     # what a lock file holds
_LOCK_TEXT_MAX_BYTES = 300
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_HELD_LOCKS: set[int] = set()   # descriptors of the locks this process holds (closed in forked workers)


def work_name(target: str, kind: Literal["partial", "probe"], suffix: str = "") -> str:
    """The hidden name this process works under beside (or inside) `target`: `.target.nwlsim-KIND-PID[suffix]`."""
    return f".{target}.{WORK_TAG}-{kind}-{os.getpid()}{suffix}"


def lock_name(target: str) -> str:
    """The lock file that reserves `target` in its folder: `.target.nwlsim-lock`."""
    return f".{target}.{WORK_TAG}-lock"


def is_work_name(name: str) -> bool:
    """Whether `name` (a file or folder name, not a path) is one of the simulator's work files: a partial folder
    or file, a probe or a lock. Never a finished run."""
    return WORK_NAME.match(name) is not None


def is_unfinished_name(name: str) -> bool:
    """Whether a folder so named is taken for unfinished work: one of the simulator's work names (`is_work_name`)
    or an older version's `.NAME.partial-PID` (LEGACY_PARTIAL_NAME). A destination is never given such a name
    (sim.outputs.destination), so a finished run is never taken for, or cleaned as, a killed run's leftovers."""
    return is_work_name(name) or LEGACY_PARTIAL_NAME.match(name) is not None


# ---------------------------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------------------------

def _close_inherited_locks() -> None:
    """In a forked worker: close the parent's lock descriptors, so that the lock dies with the process that took
    it (a worker left behind by a killed run must not keep its folder reserved). Closing a copy does not unlock."""
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID is running on this machine (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:             # it exists, and belongs to someone else
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def _host() -> str:
    return "".join(socket.gethostname().split())[:255] or "localhost"


def _try_flock(fd: int) -> bool | None:
    """Take an exclusive advisory lock on `fd` without waiting: True if taken, False if another process holds it,
    None where there is no flock (Windows, or a filesystem that refuses it with ENOLCK/EOPNOTSUPP)."""
    if sys.platform == "win32":                         # pragma: no cover - POSIX everywhere this is tested
        return None
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            return None
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` is still the file open as `fd` (not removed or replaced since it was opened)."""
    try:
        mine, current = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)


def _holder(fd: int) -> tuple[int, str] | None:
    """The (PID, host) a lock file's text names, or None when it is not this tool's `PID HOST` (empty, being
    written, or another program's file)."""
    try:
        text = os.pread(fd, _LOCK_TEXT_MAX_BYTES + 1, 0)
    except OSError:
        return None
    if len(text) > _LOCK_TEXT_MAX_BYTES:
        return None
    match = _LOCK_TEXT.fullmatch(text.decode("ascii", errors="replace"))
    return None if match is None else (int(match["pid"]), match["host"])


def _holder_alive(fd: int) -> bool:
    """Without flock: whether the run a lock file names may still be running (True unless its PID is on this
    machine and gone)."""
    holder = _holder(fd)
    if holder is None or holder[1] != _host():
        return True                     # cannot tell: being written, foreign, or another machine's
    return holder[0] == os.getpid() or pid_alive(holder[0])


def _held_by_live_run(fd: int) -> bool:
    """Whether a live run holds the lock open as `fd`. With flock the lock is tried (and taken by `fd` until it
    is closed, if free); without flock the PID in its text is checked."""
    try:
        taken = _try_flock(fd)
    except OSError:
        return True
    return _holder_alive(fd) if taken is None else not taken


@contextlib.contextmanager
def _opened(lock: Path) -> Iterator[int | None]:
    """`lock` open for reading (its descriptor), or None if it cannot be opened; closed (so let go) after."""
    try:
        fd = os.open(lock, os.O_RDONLY | _NO_FOLLOW)
    except OSError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def take_lock(lock: Path) -> int | None:
    """Create (if missing) and lock `lock`: its descriptor, or None when a live run holds it. Where flock is
    refused the file is created exclusively, and an existing one is taken over only when the PID it names is
    gone from this machine (two runs taking over one stale lock at the same instant could then both succeed;
    flock has no such gap)."""
    while True:
        created = True
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o644)
        except FileExistsError:
            created = False
            try:
                fd = os.open(lock, os.O_RDWR | _NO_FOLLOW)
            except FileNotFoundError:
                continue                # its holder let go of it just now: try again
        try:
            taken = _try_flock(fd)
            if taken is None and not created:
                if _holder_alive(fd):
                    taken = False
                else:                   # a killed run's (no flock here): remove it and create ours
                    if _same_file(fd, lock):
                        lock.unlink()
                    os.close(fd)
                    continue
        except BaseException:
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    lock.unlink()
            raise
        if taken is False:
            os.close(fd)
            return None
        if _same_file(fd, lock):        # else its last holder removed it between our open and our lock: again
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {_host()}\n".encode())
    except BaseException:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        raise
    _HELD_LOCKS.add(fd)
    return fd


def release_lock(fd: int, lock: Path) -> None:
    """Remove `lock` (if it is still the file this process locked as `fd`) and let go of it."""
    if _same_file(fd, lock):
        with contextlib.suppress(OSError):
            lock.unlink()
    _HELD_LOCKS.discard(fd)
    with contextlib.suppress(OSError):
        os.close(fd)


def lock_held(lock: Path) -> bool:
    """Whether a live run holds `lock` (with flock: tried, and let go at once)."""
    with _opened(lock) as fd:
        return fd is not None and _held_by_live_run(fd)


def lock_holder(lock: Path) -> str:
    """Who holds `lock`, for a message: `PID 123` (with the host when it is another machine's)."""
    with _opened(lock) as fd:
        holder = None if fd is None else _holder(fd)
    if holder is None:
        return "another process"
    return f"PID {holder[0]}" + ("" if holder[1] == _host() else f" on {holder[1]}")


def _remove_unheld_lock(lock: Path) -> bool:
    """Remove a lock file of this tool's (its text `PID HOST`) that no live run holds, holding it while removing
    it so that no run can take it in between; whether it was removed."""
    with _opened(lock) as fd:
        if fd is None or _holder(fd) is None or _held_by_live_run(fd) or not _same_file(fd, lock):
            return False
        try:
            lock.unlink()
        except OSError:
            return False
        return True


# ---------------------------------------------------------------------------------------------------------------
# Cleaning what killed runs left
# ---------------------------------------------------------------------------------------------------------------

def clean_stale_work(folder: Path) -> list[Path]:
    """Remove what killed runs left in `folder`: partial folders and files and probes (`WORK_NAME`) that are
    stale, and lock files no live run holds. A partial or probe is stale when no live run holds its NAME's lock
    and either its PID is not a live process on this machine or it is older than STALE_PARTIAL_HOURS. Never
    touches this process's own work, a symbolic link, a lock whose text is not this tool's, or anything not named
    as the simulator's work. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        work = WORK_NAME.match(entry.name)
        if work is None:
            continue
        try:
            if entry.is_symlink():
                continue
            if work["lock"]:
                if entry.is_file() and _remove_unheld_lock(entry):
                    removed.append(entry)
                continue
            if not (entry.is_dir() or (entry.is_file() and work["suffix"])):
                continue
            pid = int(work["pid"])
            if pid == os.getpid() or lock_held(entry.with_name(lock_name(work["name"]))):
                continue
            if pid_alive(pid) and now - entry.stat().st_mtime < STALE_PARTIAL_HOURS * 3600:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue                    # another run cleaned it first, or it cannot be removed: leave it
    return removed
