"""Where a run's output goes, and getting it there whole: probed and reserved before anything runs, written
beside the target and renamed into place when complete, and kept (somewhere a message names) when that fails.

Reserving: `reserve_destination` (for --out, --report-dir, calibrate's FILE.yaml) and `reserve_new_run_dir` (a
new timestamped folder under results/) refuse with one line a destination that can never work (under a file, in a
pseudo-filesystem, a dangling symbolic link, a folder that holds anything, a path the system will not look at, a
name too long for the work names written beside it, a name of the simulator's own work files, not writable: tried
for real, with the longest name writing it uses) and lock it, so that two runs cannot write the same folder
(sim.outputs.work_files: the locks and the work-file names).

Writing (`Destination.writing`): everything goes into a hidden `.NAME.nwlsim-partial-PID` folder beside the target
(on its filesystem), renamed into place only when complete, so a folder that exists under results/ is a finished
run. A failure while writing, or an interruption (Ctrl-C, SIGTERM), keeps what was computed as
`NAME.incomplete-<stamp>` beside the target (or in the system's temporary folder) and says where; an interruption
while the report is being made puts the folder in place without the report. A single file (`staged_file`) is
written the same way, and its text kept in the temporary folder if anything fails before it is in place.

Why this is apart from sim.outputs.run_folder: a Destination is one object from reservation to release (reserve,
write, keep, let go), and its writing needs its lock and its target; run_folder says what a run folder holds (the
file names, the manifest, the resolved scenario), this module where it goes and how it gets there.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pandas as pd

from sim.outputs.forking import forked
from sim.outputs.run_folder import MANIFEST_JSON, OutputError
from sim.outputs.work_files import (
    WORK_TAG,
    clean_stale_work,
    is_unfinished_name,
    is_work_name,
    lock_holder,
    lock_name,
    release_lock,
    take_lock,
    work_name,
)
from sim.scenario.schema import ScenarioError

PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))     # never a place for results, except:
MEMORY_FILESYSTEM_TYPES = frozenset({"tmpfs"})  # mounted below /dev (/dev/shm): a folder in memory, like /tmp
PSEUDO_FILESYSTEM_TYPES = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
                                     "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "binfmt_misc",
                                     "efivarfs", "hugetlbfs", "autofs", "rpc_pipefs", "nsfs"})
PROBE_BYTES = 64 * 1024         # written and removed on the destination's filesystem before anything runs
STAMP = "YYYYmmdd-HHMMSS"       # as long as the stamp of NAME.incomplete-<stamp>
MKDTEMP_RANDOM = "X" * 8        # the random part tempfile.mkdtemp adds to its prefix
# The longest path a run writes inside its folder, with room to spare: `.report.nwlsim-partial-PID/charts/`
# `.waiting_over_52w_by_provider.svg.nwlsim-partial-PID.svg` is about 110 bytes.
INSIDE_MAX_BYTES = 160
NAME_MAX_DEFAULT, PATH_MAX_DEFAULT = 255, 4096      # where the system cannot say (os.pathconf)
_RECORDERS: list[list[Path]] = []


def _reason(exc: BaseException) -> str:
    """One short line saying why: the system's words for an OSError, the type and text otherwise."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def _telling(exc: BaseException, line: str) -> None:
    """`exc`, made to say `line` as well: one more problem of a ScenarioError (one line each at the command
    line), a note on anything else (sim.cli.main adds notes to its one line)."""
    if isinstance(exc, ScenarioError):
        exc.problems.append(line)
    else:
        exc.add_note(line)


@contextlib.contextmanager
def recording_writes() -> Iterator[list[Path]]:
    """Collect the destinations put in place (complete) while the block runs: what a command has written, for
    its last message when it is stopped or fails after that."""
    written: list[Path] = []
    _RECORDERS.append(written)
    try:
        yield written
    finally:
        _RECORDERS.remove(written)


def _lock_path(final: Path) -> Path:
    return final.parent / lock_name(final.name)


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


def check_empty_folder(out: Path, shown: str) -> None:
    """An existing destination folder (--out, --report-dir: `shown` names the option and path) must not hold a run
    (or anything else: nothing is overwritten), and must not be a mount point (the finished folder is renamed into
    place from beside it, on its parent's filesystem)."""
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


def _filesystem_of(path: Path) -> tuple[Path | None, str | None]:
    """The mount point and type of the filesystem `path` (resolved, existing) is on, from /proc/self/mountinfo
    (None, None if unknown)."""
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
    return (Path(best) if kind is not None else None), kind


def _in_memory_folder(real: Path) -> bool:
    """Whether `real` (resolved) is on a memory filesystem mounted below /dev (/dev/shm): an ordinary folder, not
    one of /dev's device files."""
    mount, fs_type = _filesystem_of(real)
    dev = Path("/dev")
    return fs_type in MEMORY_FILESYSTEM_TYPES and mount is not None and dev in mount.parents


@contextlib.contextmanager
def _refusing_os_errors(shown: str, target: Path) -> Iterator[None]:
    """An OSError met while looking at destination `target` (a folder that cannot be searched or read, a name the
    system calls too long) becomes OutputError, one line naming the destination, the system's words and the path
    they are about when it is not `target`."""
    try:
        yield
    except OSError as exc:
        about = exc.filename
        where = (f" ({about})" if isinstance(about, str) and os.path.abspath(about) != os.path.abspath(target)
                 else "")
        raise OutputError(f"{shown}: {_reason(exc)}{where}") from None


def _usable_path(path: Path, shown: str, kind: str) -> Path:
    """The absolute path to write (a symbolic link to an existing place followed), or OutputError naming why it
    can never work: a dangling symbolic link, a file where a folder must be, inside a pseudo-filesystem (a memory
    folder below /dev such as /dev/shm is allowed), a path the system refuses to look at."""
    with _refusing_os_errors(shown, path):
        return _checked_path(Path(os.path.abspath(path)), shown, kind)


def _checked_path(path: Path, shown: str, kind: str) -> Path:
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
        if (real == pseudo or pseudo in real.parents) and not _in_memory_folder(real):
            raise OutputError(f"{shown}: is inside {pseudo}, a system pseudo-filesystem, not a folder on disk")
    fs_type = _filesystem_of(real)[1]
    if fs_type in PSEUDO_FILESYSTEM_TYPES:
        raise OutputError(f"{shown}: is on a {fs_type} pseudo-filesystem, not a folder on disk")
    if os.path.lexists(path) and kind == "file" and not path.is_file():
        raise OutputError(f"{shown}: exists and is not a file")
    _check_names(path, shown, kind, existing)
    return path


def names_beside(final: Path, kind: str = "folder") -> list[str]:
    """Every name writing `final` may give something beside it (its work names, what a failure keeps) or in the
    system's temporary folder (what is kept when beside it fails), `final`'s own name first: the longest must
    fit the filesystem, and the probe is made with a name that long."""
    name = final.name
    if kind == "file":
        return [name, work_name(name, "partial", final.suffix), work_name(name, "probe"), lock_name(name),
                f"{name}.kept-{MKDTEMP_RANDOM}"]
    return [name, work_name(name, "partial"), work_name(name, "probe"), lock_name(name),
            f"{name}.incomplete-{STAMP}-99", f"{name}.incomplete-{STAMP}-{MKDTEMP_RANDOM}"]


def _byte_length(text: str) -> int:
    return len(os.fsencode(text))


def _limit(folder: Path, which: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, which))
    except (OSError, ValueError):
        return default


def _check_names(final: Path, shown: str, kind: str, existing: Path) -> None:
    """Refuse, before anything runs, a destination whose name or path is too long for what writing it needs:
    every name beside it (`names_beside`) within the filesystem's longest name, every path inside it within the
    longest path; and a name of the simulator's own work files (sim.outputs.work_files), anywhere in the path:
    a run so named would be taken for a killed run's leftovers, refused by `report` and cleaned away."""
    for part in final.parts:
        if is_work_name(part) or (part == final.name and is_unfinished_name(part)):
            raise OutputError(f"{shown}: {part!r} is named like the simulator's unfinished work (.NAME.{WORK_TAG}-"
                              "partial-PID, -probe-PID, -lock, or .NAME.partial-PID), which is cleaned away as a "
                              "killed run's leftovers; choose another name")
    folder = existing if existing != final else existing.parent
    name_max = _limit(folder, "PC_NAME_MAX", NAME_MAX_DEFAULT)
    names = names_beside(final, kind)
    longest = max(_byte_length(n) for n in names)
    if longest > name_max:
        extra = longest - _byte_length(final.name)
        raise OutputError(f"{shown}: the name is too long: writing it puts names up to {extra} bytes longer beside "
                          f"it, and this filesystem allows {name_max} bytes a name; use a name of at most "
                          f"{max(name_max - extra, 0)} bytes")
    path_max = _limit(folder, "PC_PATH_MAX", PATH_MAX_DEFAULT)
    deepest = _byte_length(str(final.parent)) + 1 + longest + 1 + INSIDE_MAX_BYTES
    if deepest >= path_max:
        raise OutputError(f"{shown}: the path is too long: the files written in it would have paths of up to "
                          f"{deepest} bytes, and this system allows {path_max - 1}; choose a shorter path")


class Destination:
    """A run folder (or file) to be written, probed and reserved before any replication runs, and released at the
    end (`with` closes it). `final` is where it goes; `shown` names it in messages (the option and the path)."""

    def __init__(self, final: Path, shown: str, kind: str = "folder") -> None:
        self.final = final
        self.shown = shown
        self.kind = kind
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
            fd = take_lock(lock)
        except OSError as exc:
            raise OutputError(f"{self.shown}: cannot write in {self.final.parent} ({_reason(exc)})") from None
        if fd is not None:
            self._lock_fd = fd
            return True
        if refuse:
            raise OutputError(f"{self.shown}: another run ({lock_holder(lock)}) is writing to it; wait for it to "
                              f"finish or choose another destination (its lock: {lock})")
        return False

    def _probe(self) -> None:
        """Create a folder and a file on the destination's filesystem, write to it, rename it and remove it all:
        what writing the run will do, tried before anything runs, with a name as long as the longest it will use
        (a filesystem whose limit is shorter than it says fails here, not after the run)."""
        parent = self.final.parent
        probe = parent / work_name(self.final.name, "probe")
        pad = max(_byte_length(n) for n in names_beside(self.final, self.kind)) - _byte_length(probe.name) - 1
        if pad > 0:
            probe = parent / work_name(self.final.name, "probe", "." + "x" * pad)
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
            release_lock(fd, _lock_path(self.final))

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

    def _placed(self) -> None:
        """`final` now holds what was written (complete): recorded once."""
        if self.written:
            return
        self.written = True
        for written in _RECORDERS:
            written.append(self.final)

    # -- writing ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, tables: Mapping[str, pd.DataFrame] | None = None) -> Iterator[RunWriter]:
        """Write the run folder: a hidden `.NAME.nwlsim-partial-PID` folder beside `final` (so on its filesystem),
        the `tables` first, then whatever the `with` body writes through the yielded RunWriter; renamed into place
        when complete (a rename never replaces a folder that holds anything). The report, if any, is made last
        (RunWriter.report).

        Any failure, or an interruption (Ctrl-C, SIGTERM): the partial folder is kept as `NAME.incomplete-<stamp>`
        beside `final`, the tables not yet in it are written there (or, if that fails too, to a folder in the
        system's temporary folder), and the message says where: OutputError for a failure, a note on the
        KeyboardInterrupt (re-raised) for an interruption. Interrupted while the report is made: the folder is put
        in place without it. A report that fails leaves a complete folder without it, and OutputError says so."""
        parent = self.final.parent
        writer = RunWriter(parent / work_name(self.final.name, "partial"))
        writer.tables.update(tables or {})              # all of them kept from here on, written or not
        try:
            clean_stale_work(parent)
            if os.path.lexists(writer.path):
                shutil.rmtree(writer.path)
            os.mkdir(writer.path)
            writer.write_tables(tables or {})
            yield writer
            writer.stage = "moving the finished folder into place"
            os.rename(writer.path, self.final)
            self._placed()                  # here, so that an interruption from now on finds it recorded
        except Exception as exc:            # kept, below
            failure: Exception = exc
        except BaseException as stop:       # Ctrl-C, SIGTERM: keep what was written, say where, and stop
            stop.add_note(self._interrupted(writer))
            raise
        else:
            if writer.report_problem is not None:
                what, reason, retry = writer.report_problem
                raise OutputError(f"{self.shown}: {what} failed ({reason}); the tables are kept in {self.final}"
                                  + (f"; `python run_sim.py report {self.final}` to retry" if retry else ""))
            return
        raise self._keep(writer, f"{writer.stage} failed ({_reason(failure)})") from None

    def _interrupted(self, writer: RunWriter) -> str:
        """After an interruption while writing: put the folder in place if only its report was missing, else keep
        what was written as after a failure; what to say about it."""
        moved = (writer.stage != "writing the run folder" and not os.path.lexists(writer.path)
                 and os.path.isdir(self.final))         # stopped just after the rename
        if not moved and writer.reporting is not None and os.path.isdir(writer.path):
            with contextlib.suppress(OSError):
                os.rename(writer.path, self.final)
                moved = True
        if not moved:
            return str(self._keep(writer, f"{writer.stage} was interrupted"))
        self._placed()
        if writer.reporting is None:
            return f"{self.shown}: the results were written to {self.final}"
        what, retry = writer.reporting
        return (f"{self.shown}: stopped while making the {what}; the results are in {self.final} without it"
                + (f" (`python run_sim.py report {self.final}` makes it)" if retry else ""))

    def _keep(self, writer: RunWriter, what_happened: str) -> OutputError:
        """After a failed or interrupted write: keep what was written and every table computed, and say where."""
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
        places = []
        if holder is not None:
            places.append(f"what was written is kept in {holder}")
        if elsewhere is not None:
            places.append(f"the tables it could not hold are in {elsewhere}" if holder is not None
                          else f"the finished results' tables are kept in {elsewhere}")
        if missing:
            places.append(f"{', '.join(missing)} could not be kept anywhere")
        if not writer.tables and holder is None and elsewhere is None:
            places.append("nothing had been written")
        return OutputError("; ".join([f"{self.shown}: {what_happened}", *places]))

    @contextlib.contextmanager
    def staged_file(self, text: str) -> Iterator[Path]:
        """Write `text` to a hidden `.NAME.nwlsim-partial-PID.SUFFIX` file beside `final` and yield its path (to
        be read before it counts); when the `with` body succeeds it replaces `final`. Whatever fails or stops it
        before then (writing it, the body, moving it into place, an interruption), the text is kept in the
        system's temporary folder and the error says where."""
        clean_stale_work(self.final.parent)
        tmp = self.final.with_name(work_name(self.final.name, "partial", self.final.suffix))
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
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            _telling(exc, f"{self.shown}: not put in place; {self._kept_text(text)}")
            raise
        try:
            os.replace(tmp, self.final)
            self._placed()
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._keep_text(text, "moving it into place", exc) from None
        except BaseException:               # interrupted: in place if the replace was done, and said so
            if not os.path.lexists(tmp) and os.path.isfile(self.final):
                self._placed()
            raise

    def _kept_text(self, text: str) -> str:
        kept = keep_elsewhere(self.final.name, text)
        return f"its text is kept in {kept}" if kept else "its text could not be kept anywhere"

    def _keep_text(self, text: str, stage: str, failure: OSError) -> OutputError:
        return OutputError(f"{self.shown}: {stage} failed ({_reason(failure)}); {self._kept_text(text)}")


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
    dest = Destination(final, shown, kind)
    try:
        with _refusing_os_errors(shown, final):
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
        check_empty_folder(final, shown)
    elif os.path.lexists(final) and not replace:
        raise OutputError(f"{shown}: exists; choose a new file name (or --force to replace it)")


def reserve_new_run_dir(results_root: Path, name: str, now: dt.datetime | None = None) -> Destination:
    """A new folder results_root/name/YYYYmmdd-HHMMSS[-k], probed and reserved: two runs started in the same
    second get different folders (each takes the first name that no folder has and no live run holds)."""
    shown = f"results folder {Path(results_root) / name}"
    folder = _usable_path(Path(results_root) / name, shown, "folder")
    with _refusing_os_errors(shown, folder):
        if os.path.lexists(folder) and not folder.is_dir():
            raise OutputError(f"{shown}: exists and is not a folder")
    stamp_time = now or dt.datetime.now()
    created: list[Path] = []
    for _ in range(10_000):
        final = default_run_dir(folder.parent, folder.name, stamp_time)
        dest = Destination(final, f"results folder {final}")
        dest._created = created
        try:
            with _refusing_os_errors(dest.shown, final):
                _check_names(final, dest.shown, "folder", folder)
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
        self.reporting: tuple[str, bool] | None = None        # (what, retry) once the report is being made
        self.report_problem: tuple[str, str, bool] | None = None

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        """Write one table as CSV (no index), remembering it until the folder is in place."""
        self.tables[name] = table
        table.to_csv(self.path / name, index=False)
        self.done.add(name)

    def write_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        """Write tables as CSV, the largest by a forked process while this one writes the rest (sim.outputs.forking;
        one after another where forking is unsafe): a compare's vaccination_by_cohort.csv is ~400,000 rows, two
        seconds of pandas' CSV writer, while both cores are otherwise idle."""
        if len(tables) < 2:
            for name, table in tables.items():
                self.write_table(name, table)
            return
        largest = max(tables, key=lambda name: tables[name].size)
        self.tables[largest] = tables[largest]
        with forked(tables[largest].to_csv, self.path / largest, index=False) as largest_written:
            for name, table in tables.items():
                if name != largest:
                    self.write_table(name, table)
            largest_written()
        self.done.add(largest)

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
        """Make the report (charts, documents) from the written tables: the last thing the `with` body does, since
        the folder is complete without it. If it fails, what it wrote is removed and the folder is still put in
        place complete; the failure is then reported (OutputError) with where the tables are, and (`retry`) the
        `report` command that makes it again. If it is interrupted, the same folder is put in place at once."""
        before = set(os.listdir(self.path))
        self.reporting = (what, retry)
        try:
            build(self.path)
        except BaseException as exc:
            for entry in set(os.listdir(self.path)) - before:
                target = self.path / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        target.unlink()
            if not isinstance(exc, Exception):
                raise
            self.report_problem = (what, _reason(exc), retry)
