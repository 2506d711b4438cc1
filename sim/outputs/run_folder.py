"""A run's folder: its file names, and writing it atomically (reading it back: sim.outputs.run_reader).

Writing: the destination is probed and reserved before any replication runs (`reserve_destination` for --out,
`reserve_new_run_dir` for a new timestamped folder): refused with one line when it can never work, and locked so
that two runs cannot write the same folder. Everything then goes into a hidden `.NAME.partial-PID` folder beside
the target (on its filesystem), renamed into place only when complete, so a folder that exists under results/ is
a finished run; a failure while writing keeps what was computed and says where (`Destination.writing`); what
killed runs left beside it is cleaned (`clean_stale_work`).

This module is the one place that spells the folder's file names; writers and readers use the constants below.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

import sim

# The files of a run folder. weekly.csv is the one every run has; the rest are written when they apply.
WEEKLY_CSV = "weekly.csv"                       # scenario x replication x week: the model's weekly measures
REPLICATIONS_CSV = "replications.csv"           # scenario x replication: clearance weeks and other KPIs
SUMMARY_CSV = "summary.csv"                     # scenario x metric: percentiles across replications
COMPARISON_CSV = "comparison.csv"               # paired differences from the first scenario (`compare`)
PARAMETERS_CSV = "parameters.csv"               # the value each replication drew for each [low, high] input
WEEKLY_BY_SPECIALTY_CSV = "weekly_by_specialty.csv"
WEEKLY_BY_SITE_CSV = "weekly_by_site.csv"       # scenario x replication x week x site (provider trust)
VACCINATION_BY_COHORT_CSV = "vaccination_by_cohort.csv"
WAITS_BY_PRIORITY_CSV = "waits_by_priority.csv"
FINANCE_MONTHLY_CSV = "finance_monthly.csv"     # priced activity, one row per scenario x replication x month
FINANCE_BY_YEAR_CSV = "finance_by_year.csv"     # the same by NHS financial year, percentiles as rows
SWEEP_CSV = "sweep.csv"                         # `sweep`: one row per combination of factors
SWEEP_HEATMAP_PNG = "sweep_heatmap.png"
BACKTEST_CSV = "backtest.csv"                   # `backtest`: simulated against observed, month by month
BACKTEST_ERRORS_CSV = "backtest_errors.csv"
BACKTEST_MONTHLY_CSV = "backtest_monthly.csv"     # `backtest --monthly`: simulated against a monthly series
BACKTEST_PNG = "backtest.png"
SCENARIO_YAML = "scenario.yaml"                 # the resolved scenario (one scenario)
SCENARIOS_DIR = "scenarios"                     # the resolved scenarios, one NAME.yaml each (`compare`)
MANIFEST_JSON = "manifest.json"                 # versions, seed, command, timings: how the run was made
# The report's files, made from the ones above (sim.outputs.report).
CHARTS_DIR = "charts"
RESULTS_XLSX = "results.xlsx"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("simpy", "numpy", "pandas", "pyyaml", "pydantic", "matplotlib", "tqdm", "distributed")


class OutputError(Exception):
    """The destination cannot be used (refused before anything runs), or writing to it failed (the message says
    where the finished results were kept)."""


# ---------------------------------------------------------------------------------------------------------------
# Where a run folder goes: probed and reserved before any replication runs
# ---------------------------------------------------------------------------------------------------------------

PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))     # never a place for results
PSEUDO_FILESYSTEM_TYPES = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
                                     "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "binfmt_misc",
                                     "efivarfs", "hugetlbfs", "autofs", "rpc_pipefs", "nsfs"})
STALE_PARTIAL_HOURS = 6         # a hidden work folder this old is stale even if a process has its PID
PROBE_BYTES = 64 * 1024         # written and removed on the destination's filesystem before anything runs
_WORK_FOLDER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|probe)-(?P<pid>\d+)(?P<suffix>\.[A-Za-z]+)?$")
_HELD_LOCKS: set[int] = set()   # descriptors of the locks this process holds (closed in forked workers)


def _close_inherited_locks() -> None:
    """In a forked worker: close the parent's lock descriptors, so that the lock dies with the process that took
    it (a worker left behind by a killed run must not keep its folder reserved). Closing a copy does not unlock."""
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _reason(exc: BaseException) -> str:
    """One short line saying why: the system's words for an OSError, the type and text otherwise."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def _lock_path(final: Path) -> Path:
    return final.parent / f".{final.name}.lock"


def default_run_dir(results_root: Path, scenario_name: str, now: dt.datetime | None = None) -> Path:
    """results_root/scenario/YYYYmmdd-HHMMSS, with -2, -3 ... when that name is taken by a folder or reserved by a
    run writing it. Only a name: `reserve_new_run_dir` reserves one so that two runs cannot both take it."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(results_root) / scenario_name / stamp
    candidate, k = base, 2
    while os.path.lexists(candidate) or os.path.lexists(_lock_path(candidate)):
        candidate = base.with_name(f"{stamp}-{k}")
        k += 1
    return candidate


def check_out_dir(out: Path, shown: str | None = None) -> None:
    """An existing destination folder must not hold a run (or anything else: nothing is overwritten), and must not
    be a mount point (the finished folder is renamed into place from beside it, on its parent's filesystem)."""
    shown = shown or f"--out {out}"
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise OutputError(f"{shown}: exists and is not a folder")
    if os.path.ismount(out):
        raise OutputError(f"{shown}: is a mount point; a run folder is renamed into place from beside it, so give "
                          "a new folder inside it")
    if (out / MANIFEST_JSON).exists():
        raise OutputError(f"{shown}: already holds a run ({MANIFEST_JSON}); choose a new folder")
    if any(out.iterdir()):
        raise OutputError(f"{shown}: folder is not empty; choose a new or empty folder")


def _filesystem_type(path: Path) -> str | None:
    """The type of the filesystem `path` (resolved, existing) is on, from /proc/self/mountinfo (None if unknown)."""
    best, kind = "", None
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if " - " not in line or len(fields) < 5:
                continue
            mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            after = line.split(" - ", 1)[1].split()
            inside = str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best) and after:
                best, kind = mount, after[0]
    return kind


def _usable_path(path: Path, shown: str, kind: str) -> Path:
    """The absolute path to write (a symbolic link to an existing place followed), or OutputError naming why it
    can never work: a dangling symbolic link, a file where a folder must be, inside a pseudo-filesystem."""
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        if not path.exists():
            raise OutputError(f"{shown}: is a symbolic link to {os.readlink(path)}, which does not exist")
        path = Path(os.path.realpath(path))
    existing = path
    for ancestor in [path, *path.parents]:
        if os.path.lexists(ancestor):
            if ancestor.is_symlink() and not ancestor.exists():
                raise OutputError(f"{shown}: {ancestor} is a symbolic link to {os.readlink(ancestor)}, which does "
                                  "not exist")
            if ancestor != path and not ancestor.is_dir():
                raise OutputError(f"{shown}: {ancestor} is a file, not a folder, so nothing can be written under it")
            existing = ancestor
            break
    real = Path(os.path.realpath(existing))
    for pseudo in PSEUDO_FILESYSTEMS:
        if real == pseudo or pseudo in real.parents:
            raise OutputError(f"{shown}: is inside {pseudo}, a system pseudo-filesystem, not a folder on disk")
    fs_type = _filesystem_type(real)
    if fs_type in PSEUDO_FILESYSTEM_TYPES:
        raise OutputError(f"{shown}: is on a {fs_type} pseudo-filesystem, not a folder on disk")
    if os.path.lexists(path) and kind == "file" and not path.is_file():
        raise OutputError(f"{shown}: exists and is not a file")
    return path


def _pid_alive(pid: int) -> bool:
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


def _try_flock(fd: int) -> bool | None:
    """Take an exclusive advisory lock on `fd` without waiting: True if taken, False if another process holds it,
    None where there is no flock (Windows)."""
    if sys.platform == "win32":                         # pragma: no cover - POSIX everywhere this is tested
        return None
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` is still the file open as `fd` (not removed or replaced since it was opened)."""
    try:
        mine, current = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)


def _take_lock(lock: Path) -> int | None:
    """Open and lock `lock` (created if missing): its descriptor, or None when a live run holds it. The lock
    (flock) dies with the process, so a run killed with SIGKILL reserves nothing. Without flock (Windows) the
    file is created exclusively instead."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        taken = _try_flock(fd)
        if taken is None:                               # pragma: no cover
            os.close(fd)
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return None
            break
        if not taken:
            os.close(fd)
            return None
        if _same_file(fd, lock):    # else its last holder removed it between our open and our lock: try again
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        raise
    _HELD_LOCKS.add(fd)
    return fd


def _lock_pid(lock: Path) -> int | None:
    try:
        return int(lock.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _lock_held(lock: Path) -> bool:
    """Whether a live run holds `lock` (tested by trying to take it, and letting go at once)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        taken = _try_flock(fd)
    finally:
        os.close(fd)
    if taken is None:                                   # pragma: no cover
        pid = _lock_pid(lock)
        return pid is not None and _pid_alive(pid)
    return not taken


def _remove_unheld_lock(lock: Path) -> bool:
    """Remove a lock file no live run holds (a killed run's), holding it while removing it so that no run can
    take it in between; whether it was removed."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        taken = _try_flock(fd)
        if taken is None:                               # pragma: no cover
            pid = _lock_pid(lock)
            taken = pid is None or not _pid_alive(pid)
        if taken and _same_file(fd, lock):
            lock.unlink()
            return True
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def clean_stale_work(folder: Path) -> list[Path]:
    """Remove what killed runs left in `folder`: hidden `.NAME.partial-PID` / `.NAME.probe-PID` folders (and
    `.NAME.partial-PID.yaml` files) and `.NAME.lock` files. Such work is stale when no live run holds its name's
    lock and either its PID is not a live process on this machine or it is older than STALE_PARTIAL_HOURS; a lock
    file when no run holds it. Never touches this process's own work or anything not named so. Returns what was
    removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _WORK_FOLDER.match(entry.name)
        try:
            if match and not entry.is_symlink() and (entry.is_dir() or (entry.is_file() and match["suffix"])):
                pid = int(match["pid"])
                if pid == os.getpid() or _lock_held(entry.with_name(f".{match['name']}.lock")):
                    continue
                if _pid_alive(pid) and now - entry.stat().st_mtime < STALE_PARTIAL_HOURS * 3600:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
            elif (entry.name.startswith(".") and entry.name.endswith(".lock") and entry.is_file()
                  and not entry.is_symlink() and _remove_unheld_lock(entry)):
                removed.append(entry)
        except OSError:
            continue                    # another run cleaned it first, or it cannot be removed: leave it
    return removed


class Destination:
    """A run folder (or file) to be written, probed and reserved before any replication runs, and released at the
    end (`with` closes it). `final` is where it goes; `shown` names it in messages (the option and the path)."""

    def __init__(self, final: Path, shown: str) -> None:
        self.final = final
        self.shown = shown
        self.written = False
        self._lock_fd: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- reserving ----------------------------------------------------------------------------------------------

    def _make_parents(self) -> None:
        """Create the missing folders above `final` (noted, so that a run that writes nothing removes them)."""
        missing = []
        for ancestor in self.final.parents:
            if os.path.lexists(ancestor):
                break
            missing.append(ancestor)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"{self.shown}: cannot create folder {folder} ({_reason(exc)})") from None
            self._created.append(folder)

    def _lock(self, refuse: bool) -> bool:
        """Take the lock beside `final`. Another live run holding it: refuse (OutputError) or return False."""
        lock = _lock_path(self.final)
        try:
            fd = _take_lock(lock)
        except OSError as exc:
            raise OutputError(f"{self.shown}: cannot write in {self.final.parent} ({_reason(exc)})") from None
        if fd is not None:
            self._lock_fd = fd
            return True
        if refuse:
            try:
                holder = f"PID {lock.read_text(encoding='utf-8').split()[0]}"
            except (OSError, IndexError):
                holder = "another process"
            raise OutputError(f"{self.shown}: another run ({holder}) is writing to it; wait for it to finish or "
                              f"choose another destination (its lock: {lock})")
        return False

    def _probe(self) -> None:
        """Create a folder and a file on the destination's filesystem, write to it, rename it and remove it all:
        what writing the run will do, tried before anything runs."""
        parent = self.final.parent
        probe = parent / f".{self.final.name}.probe-{os.getpid()}"
        try:
            if os.path.lexists(probe):
                shutil.rmtree(probe)
            os.mkdir(probe)
            try:
                with open(probe / "probe", "wb") as fh:
                    fh.write(b"\0" * PROBE_BYTES)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.rename(probe / "probe", probe / "probed")
            finally:
                shutil.rmtree(probe, ignore_errors=True)
        except OSError as exc:
            raise OutputError(f"{self.shown}: cannot write in {parent} ({_reason(exc)})") from None

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            lock = _lock_path(self.final)
            if _same_file(fd, lock):
                with contextlib.suppress(OSError):
                    lock.unlink()
            _HELD_LOCKS.discard(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def release(self) -> None:
        """Let go of the reservation; when nothing was written, remove the folders the reservation created."""
        self._unlock()
        if not self.written:
            for folder in reversed(self._created):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
        self._created = []

    # -- writing ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, tables: Mapping[str, pd.DataFrame] | None = None) -> Iterator[RunWriter]:
        """Write the run folder: a hidden `.NAME.partial-PID` folder beside `final` (so on its filesystem), the
        `tables` first, then whatever the `with` body writes through the yielded RunWriter; renamed into place
        when complete (a rename never replaces a folder that holds anything).

        Interrupted (Ctrl-C, SIGTERM): the partial folder is removed, nothing is left. Any other failure: the
        partial folder is kept as `NAME.incomplete-<stamp>` beside `final`, the tables not yet in it are written
        there (or, if that fails too, to a folder in the system's temporary folder), and OutputError names where.
        A report that fails (RunWriter.report) leaves a complete folder without it, and OutputError says so."""
        parent = self.final.parent
        clean_stale_work(parent)
        writer = RunWriter(parent / f".{self.final.name}.partial-{os.getpid()}")
        writer.tables.update(tables or {})              # all of them kept from here on, written or not
        try:
            if os.path.lexists(writer.path):
                shutil.rmtree(writer.path)
            os.mkdir(writer.path)
            for name, table in (tables or {}).items():
                writer.write_table(name, table)
            yield writer
            writer.stage = "moving the finished folder into place"
            os.rename(writer.path, self.final)
        except Exception as exc:            # kept, below: everything but an interruption
            failure: Exception = exc
        except BaseException:
            shutil.rmtree(writer.path, ignore_errors=True)
            raise
        else:
            self.written = True
            if writer.report_problem is not None:
                what, reason, retry = writer.report_problem
                raise OutputError(f"{self.shown}: {what} failed ({reason}); the tables are kept in {self.final}"
                                  + (f"; `python run_sim.py report {self.final}` to retry" if retry else ""))
            return
        raise self._keep(writer, failure) from None

    @contextlib.contextmanager
    def staged_file(self, text: str) -> Iterator[Path]:
        """Write `text` to a hidden `.NAME.partial-PID.SUFFIX` file beside `final` and yield its path (to be read
        before it counts); when the `with` body succeeds it replaces `final`. A failure writing or moving it keeps
        the text in the system's temporary folder and says where (OutputError); a failure of the body removes it."""
        clean_stale_work(self.final.parent)
        tmp = self.final.with_name(f".{self.final.name}.partial-{os.getpid()}{self.final.suffix}")
        try:
            tmp.unlink(missing_ok=True)
            with open(tmp, "x", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._keep_text(text, "writing it", exc) from None
        try:
            yield tmp
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            os.replace(tmp, self.final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._keep_text(text, "moving it into place", exc) from None
        self.written = True

    def _keep_text(self, text: str, stage: str, failure: OSError) -> OutputError:
        kept = keep_elsewhere(self.final.name, text)
        return OutputError(f"{self.shown}: {stage} failed ({_reason(failure)}); "
                           + (f"its text is kept in {kept}" if kept else "it could not be kept anywhere"))

    def _keep(self, writer: RunWriter, failure: Exception) -> OutputError:
        """After a failed write: keep what was written and every table computed, and say where."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        missing = [name for name in writer.tables if name not in writer.done]
        holder: Path | None = None
        if writer.path.is_dir():
            kept, k = self.final.with_name(f"{self.final.name}.incomplete-{stamp}"), 2
            while os.path.lexists(kept):
                kept, k = self.final.with_name(f"{self.final.name}.incomplete-{stamp}-{k}"), k + 1
            try:
                os.rename(writer.path, kept)
                holder = kept
            except OSError:
                missing = list(writer.tables)   # a hidden partial folder would be cleaned later: keep copies
        if holder is not None:
            missing = writer.write_missing(holder, missing)
        elsewhere: Path | None = None
        if missing:
            with contextlib.suppress(OSError):
                elsewhere = Path(tempfile.mkdtemp(prefix=f"{self.final.name}.incomplete-{stamp}-"))
            if elsewhere is not None:
                lost = writer.write_missing(elsewhere, missing)
                if len(lost) == len(missing):
                    shutil.rmtree(elsewhere, ignore_errors=True)
                    elsewhere = None
                elif holder is None:
                    _copy_rest(writer.path, elsewhere, skip=set(writer.tables))
                    if not lost:        # everything it held is in `elsewhere` now: no hidden copy left behind
                        shutil.rmtree(writer.path, ignore_errors=True)
                missing = lost
        message = f"{self.shown}: {writer.stage} failed ({_reason(failure)})"
        places = []
        if holder is not None:
            places.append(f"what was written is kept in {holder}")
        if elsewhere is not None:
            places.append(f"the tables it could not hold are in {elsewhere}" if holder is not None
                          else f"the finished results' tables are kept in {elsewhere}")
        if missing:
            places.append(f"{', '.join(missing)} could not be kept anywhere")
        return OutputError("; ".join([message, *places]))


def _copy_rest(source: Path, target: Path, skip: set[str]) -> None:
    """Copy what `source` holds besides the `skip` names into `target`, as far as it goes."""
    with contextlib.suppress(OSError):
        for entry in source.iterdir():
            if entry.name in skip or os.path.lexists(target / entry.name):
                continue
            with contextlib.suppress(OSError, shutil.Error):
                if entry.is_dir():
                    shutil.copytree(entry, target / entry.name)
                else:
                    shutil.copy2(entry, target / entry.name)


def reserve_destination(path: Path, option: str, *, kind: str = "folder", replace: bool = False) -> Destination:
    """Probe and reserve `path` given with `option` (`--out`, `--report-dir`) before anything runs: refused
    (OutputError, one line) when it is under a file, inside a pseudo-filesystem, a dangling symbolic link, a
    folder that holds anything or is a mount point, a file (kind "file") that exists without `replace`, not
    creatable or not writable (tried for real), or reserved by another live run. Missing parent folders are
    created (and removed again by `release` if nothing is written)."""
    shown = f"{option} {path}"
    final = _usable_path(path, shown, kind)
    dest = Destination(final, shown)
    try:
        _check_existing(final, shown, kind, replace)
        dest._make_parents()
        clean_stale_work(final.parent)
        dest._lock(refuse=True)
        _check_existing(final, shown, kind, replace)        # again, now that no other run can take it
        dest._probe()
    except BaseException:
        dest.release()
        raise
    return dest


def _check_existing(final: Path, shown: str, kind: str, replace: bool) -> None:
    if kind == "folder":
        check_out_dir(final, shown)
    elif os.path.lexists(final) and not replace:
        raise OutputError(f"{shown}: exists; choose a new file name (or --force to replace it)")


def reserve_new_run_dir(results_root: Path, name: str, now: dt.datetime | None = None) -> Destination:
    """A new folder results_root/name/YYYYmmdd-HHMMSS[-k], probed and reserved: two runs started in the same
    second get different folders (each takes the first name that no folder has and no live run holds)."""
    shown = f"results folder {Path(results_root) / name}"
    folder = _usable_path(Path(results_root) / name, shown, "folder")
    if os.path.lexists(folder) and not folder.is_dir():
        raise OutputError(f"{shown}: exists and is not a folder")
    stamp_time = now or dt.datetime.now()
    created: list[Path] = []
    for _ in range(10_000):
        final = default_run_dir(folder.parent, folder.name, stamp_time)
        dest = Destination(final, f"results folder {final}")
        dest._created = created
        try:
            dest._make_parents()
            created = dest._created
            clean_stale_work(final.parent)
            if dest._lock(refuse=False) and not os.path.lexists(final):
                dest._probe()
                return dest
            dest._unlock()          # taken by another run since the name was chosen: the next name
        except BaseException:
            dest.release()
            raise
    raise OutputError(f"{shown}: no free folder name for {stamp_time:%Y%m%d-%H%M%S}")


def keep_elsewhere(name: str, text: str) -> Path | None:
    """Save `text` as `name` in a new folder of the system's temporary folder (for results whose destination
    failed); its path, or None if that fails too."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{name}.kept-"))
        (folder / name).write_text(text, encoding="utf-8")
    except OSError:
        return None
    return folder / name


class RunWriter:
    """The folder being written (`path`, hidden until complete). Tables written with `write_table` are kept
    in memory until the folder is in place, so a later failure loses none of them (Destination.writing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tables: dict[str, pd.DataFrame] = {}
        self.done: set[str] = set()
        self.stage = "writing the run folder"
        self.report_problem: tuple[str, str, bool] | None = None

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        """Write one table as CSV (no index), remembering it until the folder is in place."""
        self.tables[name] = table
        table.to_csv(self.path / name, index=False)
        self.done.add(name)

    def write_missing(self, folder: Path, names: list[str]) -> list[str]:
        """Write the named tables into `folder`; those that could not be written."""
        lost = []
        for name in names:
            try:
                self.tables[name].to_csv(folder / name, index=False)
            except Exception:
                with contextlib.suppress(OSError):
                    (folder / name).unlink()
                lost.append(name)
        return lost

    def report(self, build: Callable[[Path], object], what: str = "report", retry: bool = True) -> None:
        """Make the report (charts, documents) from the written tables. If it fails, what it wrote is removed and
        the folder is still put in place complete; the failure is then reported (OutputError) with where the
        tables are, and (`retry`) the `report` command that makes it again."""
        before = set(os.listdir(self.path))
        try:
            build(self.path)
        except Exception as exc:
            for entry in set(os.listdir(self.path)) - before:
                target = self.path / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()
            self.report_problem = (what, _reason(exc), retry)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "nwl-capacity-sim": sim.__version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, object]:
    info: dict[str, object] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                               "cpus": os.cpu_count()}
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
        info["memory_gib"] = round(kib / 2**20, 1)
    return info


def write_manifest(folder: Path, **fields: object) -> None:
    manifest = {"version": sim.__version__, "git_commit": git_commit(), "library_versions": library_versions(),
                "machine": machine(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), **fields}
    (folder / MANIFEST_JSON).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")


def write_resolved_scenario(folder: Path, raw: dict, filename: str = SCENARIO_YAML) -> None:
    text = "# The scenario exactly as run: inheritance and --set overrides applied.\n"
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=120)
    (folder / filename).write_text(text, encoding="utf-8")
