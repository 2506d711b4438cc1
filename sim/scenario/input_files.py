"""Reading an input file safely: regular files only, a cap on the bytes read, and one plain reason when refused.

Why: every file the simulator reads is named by the user (a scenario, what it `extends:`, the Covid series, an
observed or RTT CSV). A path to `/dev/zero` would be read forever, a named pipe would block forever, and a huge
file would take minutes to parse. So a file is looked at before it is opened (`os.stat`, following symlinks: a
link to a regular file is fine, a link to a device is not), opened without blocking, looked at again through the
open handle (the file may have been swapped in between), and read only up to its cap.

The reasons carry no file name: the caller names the file and the key or option that gave it, in its own error
type (ScenarioError, ObservedDataError, RttDataError), so each problem is still one line.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

# A scenario file: the largest shipped one is about 30 kB. PyYAML's safe loader reads about 100 kB a second
# (pure Python, needed to count nesting and values as it reads), so 1 MB would take ten seconds before validation.
MAX_SCENARIO_BYTES = 256_000
MAX_SERIES_CSV_BYTES = 5_000_000      # a daily or monthly series (Covid inpatients, observed RTT months)
MAX_RTT_CSV_BYTES = 1_000_000_000     # an NHS England RTT Full CSV; the national monthly file is a few hundred MB

class InputFileError(Exception):
    """Why a file cannot be read (`reason`, without the file's name: the caller adds it)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def describe_size(n_bytes: int) -> str:
    """A byte count as people say it: 1,000,000 -> '1 MB', 5,000,000 -> '5 MB', 1,000,000,000 -> '1 GB'."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n_bytes >= size:
            return f"{n_bytes / size:g} {unit}"
    return f"{n_bytes} bytes"


def resolve_path(path: str | Path) -> Path:
    """The absolute path with symlinks resolved where they can be; a name the operating system cannot resolve (a
    symlink loop, a NUL character) is returned absolute, unresolved, so that reading it gives the clear error."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):   # RuntimeError: a symlink loop (Python 3.11)
        return Path(os.path.abspath(path))


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device (like /dev/zero)"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check(st: os.stat_result, max_bytes: int, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{_kind(st.st_mode)}, not a regular file; expected {what}")
    if st.st_size > max_bytes:
        raise InputFileError(f"{st.st_size:,} bytes; {what} is at most {max_bytes:,} bytes "
                             f"({describe_size(max_bytes)})")


def check_regular_file(path: str | Path, max_bytes: int, what: str) -> os.stat_result:
    """The file's stat if it is a regular file (symlinks followed) of at most `max_bytes`; else InputFileError.
    Nothing is opened. `what` says what was expected, e.g. "a scenario YAML file"."""
    if "\0" in str(path):
        raise InputFileError("no such file (the name holds a NUL character)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError("no such file") from None
    except NotADirectoryError:
        raise InputFileError("no such file (a part of the path is a file, not a folder)") from None
    except OSError as exc:
        raise InputFileError(f"cannot be read ({exc.strerror or exc})") from None
    _check(st, max_bytes, what)
    return st


def read_bytes(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The whole file, if it is a regular file of at most `max_bytes` (checked before opening, through the open
    handle, and while reading); else InputFileError."""
    check_regular_file(path, max_bytes, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputFileError(f"cannot be opened ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        _check(st, max_bytes, what)   # the path may now name another file than the one looked at
        chunks: list[bytes] = []      # one chunk, as a rule: a regular file is read in one call
        total = 0
        while total < st.st_size:
            chunk = os.read(fd, st.st_size - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        grew = bool(os.read(fd, 1))
    except OSError as exc:
        raise InputFileError(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if grew:
        raise InputFileError(f"grew while being read; expected {what} that is not being written")
    return b"".join(chunks)


def decode_utf8(data: bytes, what: str) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); InputFileError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); expected {what} "
                             "saved as UTF-8") from None


def read_text(path: str | Path, max_bytes: int, what: str) -> str:
    """`read_bytes` decoded as UTF-8 (a byte-order mark is accepted and dropped)."""
    return decode_utf8(read_bytes(path, max_bytes, what), what)
