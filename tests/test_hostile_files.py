"""Hostile input files: every one is refused with exit 2, one line naming the file (or the --set text) and what
was expected, no traceback, nothing written, within seconds.

Why: a scenario, what it `extends:`, the Covid series, an observed series and an RTT file are all named by the
user. Before issue 12 a 5,000-deep YAML, a mapping used as a key or a 1,200-file `extends:` chain crashed the
loader with a traceback, `/dev/zero` was read until memory ran out, a named pipe blocked forever, and a Covid
CSV with a date twice was silently summed. Each case below runs the command line in-process under a 10-second
alarm, so a hang fails the test instead of the suite.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest
import yaml

from helpers import BASELINE, ROOT, simple_raw
from sim.cli.main import main
from sim.scenario import yaml_files
from sim.scenario.build import load_scenario_mapping
from sim.scenario.input_files import MAX_SCENARIO_BYTES, MAX_SERIES_CSV_BYTES
from sim.scenario.yaml_files import MAX_EXTENDS_DEPTH, MAX_NESTING

pytestmark = pytest.mark.integration

TIME_LIMIT_SECONDS = 10
RTT_EXAMPLE = ROOT / "scenarios" / "from_rtt_example.yaml"
RTT_CSV = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
SHIPPED = sorted((ROOT / "scenarios").glob("**/*.yaml"))


class TookTooLong(Exception):
    pass


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Fail a case that hangs (a FIFO opened for reading blocks until a writer comes) instead of the suite."""
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"no answer within {TIME_LIMIT_SECONDS} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def simple_yaml(tmp_path: Path) -> Path:
    """A tiny valid scenario file (one site, one specialty) to extend: fast to load and to run."""
    path = tmp_path / "simple.yaml"
    path.write_text(yaml.safe_dump(simple_raw(horizon_weeks=4)), encoding="utf-8")
    return path


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    """Exit code, the non-blank stderr lines, and stderr whole (stdout is left in capsys)."""
    code = main(argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()], err


def assert_refused(code: int, lines: list[str], err: str, names: list[str], expected: str) -> None:
    assert "Traceback" not in err, err
    assert code == 2, f"expected exit 2, got {code}: {err}"
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {lines[:5]}"
    for name in names:
        assert name in lines[0], f"expected the line to name {name!r}: {lines[0]}"
    assert expected in lines[0], f"expected {expected!r} in: {lines[0]}"
    assert len(lines[0]) < 400, f"one short line, not the hostile text itself: {len(lines[0])} characters"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def symlink(path: Path, target: str | Path) -> Path:
    path.symlink_to(target)
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def extends_chain(tmp_path: Path, files: int) -> Path:
    for i in range(files):
        write(tmp_path / f"f{i}.yaml", f"extends: f{i + 1}.yaml\n" if i < files - 1 else "name: last\n")
    return tmp_path / "f0.yaml"


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    """A hostile scenario file: `make(tmp_path, base)` writes it and returns the file to validate; the one line
    must contain `expected` and name that file (or, with `named`, the file of that name in tmp_path)."""

    id: str
    make: Callable[[Path, Path], Path]
    expected: str
    named: str | None = None


SCENARIO_CASES = [
    Case("deep block lists", lambda t, b: write(t / "s.yaml", "- " * 5000 + "1\n"),
         f"nesting deeper than {MAX_NESTING} levels"),
    Case("deep flow lists", lambda t, b: write(t / "s.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
         f"nesting deeper than {MAX_NESTING} levels"),
    Case("deep flow mappings", lambda t, b: write(t / "s.yaml", "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n"),
         f"nesting deeper than {MAX_NESTING} levels"),
    Case("mapping as a key", lambda t, b: write(t / "s.yaml", "? {a: 1}\n: 2\n"), "a mapping cannot be a key"),
    Case("list as a key", lambda t, b: write(t / "s.yaml", f"extends: {b}\nsites:\n  [1, 2]: 3\n"),
         "sites (line 3, column 3): a list cannot be a key"),
    Case("set as a key", lambda t, b: write(t / "s.yaml", "? !!set {a}\n: 2\n"), "cannot be a key"),
    Case("merge key", lambda t, b: write(t / "s.yaml", "a: &a {x: 1}\nb:\n  <<: *a\n"), "merge keys (<<)"),
    Case("1,200-file extends chain", lambda t, b: extends_chain(t, 1200),
         f"more than {MAX_EXTENDS_DEPTH} files deep", named=f"f{MAX_EXTENDS_DEPTH - 1}.yaml"),
    Case("start date with a time", lambda t, b: write(t / "s.yaml", f"extends: {b}\nstart_date: 2021-06-07 10:00\n"),
         "start_date (line 2, column 13): expected a date as YYYY-MM-DD, found '2021-06-07 10:00'"),
    Case("start date with a T time",
         lambda t, b: write(t / "s.yaml", f"extends: {b}\nstart_date: 2021-06-07T10:00:00\n"),
         "start_date (line 2, column 13): expected a date as YYYY-MM-DD, found '2021-06-07T10:00:00'"),
    Case("impossible start date", lambda t, b: write(t / "s.yaml", f"extends: {b}\nstart_date: 2021-02-30\n"),
         "start_date (line 2, column 13): impossible date '2021-02-30'"),
    Case("/dev/zero", lambda t, b: Path("/dev/zero"), "a character device (like /dev/zero), not a regular file"),
    Case("symlink to /dev/zero", lambda t, b: symlink(t / "s.yaml", "/dev/zero"), "a character device"),
    Case("named pipe", lambda t, b: fifo(t / "s.yaml"), "a named pipe (FIFO), not a regular file"),
    Case("folder", lambda t, b: folder(t / "s.yaml"), "a folder, not a regular file"),
    Case("symlink to a folder", lambda t, b: symlink(t / "s.yaml", t), "a folder, not a regular file"),
    Case("symlink loop", lambda t, b: symlink(t / "s.yaml", t / "s.yaml"), "cannot be read"),
    Case("multi-megabyte file", lambda t, b: write(t / "s.yaml", "x:\n" + "".join(
        f"  key_{i}: {i}\n" for i in range(200_000))),
        f"a scenario YAML file is at most {MAX_SCENARIO_BYTES:,} bytes"),
    Case("billion laughs", lambda t, b: write(t / "s.yaml", billion_laughs()),
         "more than 50,000 values (an alias *name counts as a copy of what it names)"),
    Case("alias inside itself", lambda t, b: write(t / "s.yaml", "a: &a [1, *a]\n"), "inside the collection it names"),
    Case("not UTF-8", lambda t, b: write(t / "s.yaml", b"name: caf\xe9\n"), "not UTF-8 text (byte 0xe9 on line 1)"),
    Case("NUL character", lambda t, b: write(t / "s.yaml", "name: x\ntitle: a\x00b\n"),
         "line 2: character #x0000 cannot be in a YAML file"),
    Case("empty", lambda t, b: write(t / "s.yaml", ""), "the file is empty"),
    Case("only comments", lambda t, b: write(t / "s.yaml", "# nothing here\n\n"), "the file is empty"),
    Case("a list, not a mapping", lambda t, b: write(t / "s.yaml", "- 1\n- 2\n"), "expected a mapping"),
]


@pytest.mark.parametrize("case", SCENARIO_CASES, ids=[c.id for c in SCENARIO_CASES])
def test_hostile_scenario_file_is_refused_in_one_line(case: Case, tmp_path: Path, simple_yaml: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = case.make(tmp_path, simple_yaml)
    code, lines, err = run_main(["validate", str(path)], capsys)
    named = str(tmp_path / case.named) if case.named else str(path)
    assert_refused(code, lines, err, [named], case.expected)


EXTENDS_TARGETS = [
    ("named pipe", lambda t: fifo(t / "base.yaml"), "a named pipe (FIFO), not a regular file"),
    ("symlink to /dev/zero", lambda t: symlink(t / "base.yaml", "/dev/zero"), "a character device"),
    ("folder", lambda t: folder(t / "base.yaml"), "a folder, not a regular file"),
    ("too big", lambda t: write(t / "base.yaml", "#" * (MAX_SCENARIO_BYTES + 1)), "is at most"),
]


@pytest.mark.parametrize("make, expected", [(m, e) for _, m, e in EXTENDS_TARGETS],
                         ids=[i for i, _, _ in EXTENDS_TARGETS])
def test_hostile_extends_target_is_refused_naming_the_extends_key(make: Callable[[Path], Path], expected: str,
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path)
    child = write(tmp_path / "child.yaml", "extends: base.yaml\nname: child\n")
    code, lines, err = run_main(["validate", str(child)], capsys)
    assert_refused(code, lines, err, [str(child), "extends: 'base.yaml'", str(tmp_path / "base.yaml")], expected)


SET_CASES = [
    ("start_date=2021-02-30", "impossible date '2021-02-30' (day is out of range for month)"),
    ("start_date=2021-06-07 10:00", "expected a date as YYYY-MM-DD, found '2021-06-07 10:00'"),
    ("start_date=2021-06-07T10:00:00", "expected a date as YYYY-MM-DD, found '2021-06-07T10:00:00'"),
    ("title=" + "[" * 5000 + "]" * 5000, f"nesting deeper than {MAX_NESTING} levels"),
    ("title={[1]: 2}", "a list cannot be a key"),
    ("title={a: 1, a: 2}", "duplicate key 'a'"),
]


@pytest.mark.parametrize("text, expected", SET_CASES, ids=[t[:30] for t, _ in SET_CASES])
def test_hostile_set_value_is_refused_like_the_same_value_in_a_file(text: str, expected: str, simple_yaml: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_main(["validate", str(simple_yaml), "--set", text], capsys)
    assert_refused(code, lines, err, ["--set '" + text[:40]], expected)


def test_dates_from_set_and_from_a_file_get_the_same_message(tmp_path: Path, simple_yaml: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """One loader for both: the problem after the position is word for word the same."""
    for value in ("2021-02-30", "2021-06-07T10:00:00", "2021-06-07 10:00"):
        _, from_set, _ = run_main(["validate", str(simple_yaml), "--set", f"start_date={value}"], capsys)
        in_file = write(tmp_path / "s.yaml", f"extends: {simple_yaml}\nstart_date: {value}\n")
        _, from_file, _ = run_main(["validate", str(in_file)], capsys)
        assert from_set[0].split("': ", 1)[1] == from_file[0].split("): ", 1)[1], (from_set, from_file)


def test_a_good_date_through_set_still_works(simple_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(simple_yaml), "--set", "start_date=2021-06-14"]) == 0
    assert "weeks from 2021-06-14" in capsys.readouterr().out


def test_a_set_value_that_is_not_yaml_is_still_taken_as_text(simple_yaml: Path) -> None:
    """Only what a file may not hold is refused; a tag or broken YAML stays a piece of text, as before."""
    assert yaml_files.parse_override("title=!important") == (["title"], "!important")
    assert yaml_files.parse_override("title=a: b: c") == (["title"], "a: b: c")


def test_a_scenario_with_a_byte_order_mark_loads(tmp_path: Path, simple_yaml: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + f"extends: {simple_yaml}\nname: with_bom\n".encode())
    code, _, err = run_main(["validate", str(path)], capsys)
    assert code == 0, err


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_shipped_scenarios_read_the_same_as_with_plain_safe_load(path: Path) -> None:
    """The limits must not touch a real scenario: the new loader gives exactly what yaml.safe_load gives."""
    text = path.read_text(encoding="utf-8")
    assert yaml_files.parse_yaml(text) == yaml.safe_load(text)


# --- Covid inpatients CSV (covid.inpatients_csv), through `run` -----------------------------------------------

def covid_scenario(tmp_path: Path, base: Path, csv_name: str) -> Path:
    return write(tmp_path / "covid.yaml", f"extends: {base}\ncovid:\n  inpatients_csv: {csv_name}\n")


GOOD_HEADER = "date,inpatients\n"
COVID_CASES = [
    ("duplicate date", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,5\n2021-06-08,6\n2021-06-07,7\n"),
     "row 4, column date: 2021-06-07 is also on row 2"),
    ("infinite", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,5\n2021-06-08,inf\n"),
     "row 3, column inpatients: expected a finite number of at least 0, got 'inf'"),
    ("not a number", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,nan\n"),
     "row 2, column inpatients: expected a finite number of at least 0, got 'nan'"),
    ("decimal comma", lambda t: write(t / "c.csv", GOOD_HEADER + '2021-06-07,"1,5"\n'),
     "row 2, column inpatients: expected a number of inpatients with a decimal point, got '1,5'"),
    ("negative", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,-3\n"),
     "row 2, column inpatients: expected a finite number of at least 0, got '-3'"),
    ("impossible date", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-02-30,3\n"),
     "row 2, column date: impossible date '2021-02-30'"),
    ("date with a time", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07 10:00,3\n"),
     "row 2, column date: expected a date as YYYY-MM-DD"),
    ("ragged row", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,3,9\n"), "row 2: 3 cells, the header has 2"),
    ("missing column", lambda t: write(t / "c.csv", "date,patients\n2021-06-07,3\n"), "lacks column(s) inpatients"),
    ("header only", lambda t: write(t / "c.csv", GOOD_HEADER), "no rows below the header"),
    ("empty", lambda t: write(t / "c.csv", ""), "the file is empty"),
    ("not UTF-8", lambda t: write(t / "c.csv", b"date,inpatients\n2021-06-07,\xff\n"), "not UTF-8 text"),
    ("too big", lambda t: write(t / "c.csv", GOOD_HEADER + "2021-06-07,5\n" * (MAX_SERIES_CSV_BYTES // 12)),
     "is at most 5,000,000 bytes (5 MB)"),
    ("/dev/zero", lambda t: symlink(t / "c.csv", "/dev/zero"), "a character device"),
    ("named pipe", lambda t: fifo(t / "c.csv"), "a named pipe (FIFO)"),
    ("folder", lambda t: folder(t / "c.csv"), "a folder, not a regular file"),
]


@pytest.mark.parametrize("make, expected", [(m, e) for _, m, e in COVID_CASES], ids=[i for i, _, _ in COVID_CASES])
def test_hostile_covid_csv_stops_run_before_anything_is_written(make: Callable[[Path], Path], expected: str,
                                                               tmp_path: Path, simple_yaml: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = make(tmp_path)
    scenario = covid_scenario(tmp_path, simple_yaml, csv_path.name)
    results = tmp_path / "results"
    code, lines, err = run_main(["run", str(scenario), "--replications", "1", "--set", "horizon_weeks=4",
                                 "--no-report", "--results-root", str(results)], capsys)
    # the line names the file as resolved: the symlink to /dev/zero is named /dev/zero
    shown = os.path.realpath(csv_path)
    assert_refused(code, lines, err, [str(scenario), "covid.inpatients_csv", shown], expected)
    assert not results.exists() or not any(results.iterdir()), "nothing may be written"


def test_a_good_covid_csv_with_bom_extra_column_and_short_dates_is_embedded(tmp_path: Path,
                                                                           simple_yaml: Path) -> None:
    csv_path = write(tmp_path / "c.csv", b"\xef\xbb\xbfdate,inpatients,note\r\n2021-06-08,6.5,x\r\n"
                                         b"2021-6-7,5,y\r\n2021-06-09,\"1,234\",z\r\n\r\n")
    raw = load_scenario_mapping(covid_scenario(tmp_path, simple_yaml, csv_path.name))
    assert raw["covid"]["inpatients_series"] == [{"date": dt.date(2021, 6, 8), "inpatients": 6.5},
                                                 {"date": dt.date(2021, 6, 7), "inpatients": 5.0},
                                                 {"date": dt.date(2021, 6, 9), "inpatients": 1234.0}]
    assert raw["covid"]["inpatients_csv"] == str(csv_path)


def test_a_good_covid_csv_runs(tmp_path: Path, simple_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write(tmp_path / "c.csv", GOOD_HEADER + "2021-06-07,5\n2021-06-14,10\n")
    code, _, err = run_main(["run", str(covid_scenario(tmp_path, simple_yaml, csv_path.name)), "--replications", "1",
                             "--no-report", "--quiet", "--results-root", str(tmp_path / "results")], capsys)
    assert code == 0, err


# --- observed series (calibrate/backtest --observed, --monthly) and RTT files (start_list.rtt_csv) -------------

HOSTILE_CSVS = [
    ("/dev/zero", lambda t: symlink(t / "x.csv", "/dev/zero"), "a character device"),
    ("named pipe", lambda t: fifo(t / "x.csv"), "a named pipe (FIFO)"),
    ("folder", lambda t: folder(t / "x.csv"), "a folder, not a regular file"),
    ("symlink loop", lambda t: symlink(t / "x.csv", t / "x.csv"), "cannot be read"),
]
CSV_IDS = [i for i, _, _ in HOSTILE_CSVS]
CSV_PARAMS = [(m, e) for _, m, e in HOSTILE_CSVS]


@pytest.mark.parametrize("make, expected", CSV_PARAMS + [
    (lambda t: write(t / "x.csv", b"month,clock_starts\n2021-06,\xff\n"), "not UTF-8 text"),
    (lambda t: write(t / "x.csv", "month\n" + "2021-06\n" * 700_000), "is at most 5,000,000 bytes"),
    (lambda t: write(t / "x.csv", ""), "the file is empty")], ids=CSV_IDS + ["not UTF-8", "too big", "empty"])
def test_hostile_observed_csv_stops_calibrate(make: Callable[[Path], Path], expected: str, tmp_path: Path,
                                             simple_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = make(tmp_path)
    out = tmp_path / "calibrated.yaml"
    code, lines, err = run_main(["calibrate", str(simple_yaml), "--observed", str(csv_path), "--window",
                                 "2021-07:2021-09", "--out", str(out), "--results-root", str(tmp_path / "res")],
                                capsys)
    assert_refused(code, lines, err, [f"--observed {csv_path}"], expected)
    assert not out.exists() and not (tmp_path / "res").exists(), "nothing may be written"


@pytest.mark.parametrize("make, expected", CSV_PARAMS, ids=CSV_IDS)
def test_hostile_monthly_csv_stops_backtest(make: Callable[[Path], Path], expected: str, tmp_path: Path,
                                           simple_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = make(tmp_path)
    code, lines, err = run_main(["backtest", str(simple_yaml), "--monthly", str(csv_path), "--replications", "1",
                                 "--results-root", str(tmp_path / "res")], capsys)
    assert_refused(code, lines, err, [f"--monthly {csv_path}"], expected)
    assert not (tmp_path / "res").exists(), "nothing may be written"


@pytest.mark.parametrize("make, expected", CSV_PARAMS + [
    (lambda t: write(t / "x.csv", ""), "cannot read file: EmptyDataError")], ids=CSV_IDS + ["empty"])
def test_hostile_rtt_csv_is_refused_by_validate(make: Callable[[Path], Path], expected: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = make(tmp_path)
    code, lines, err = run_main(["validate", str(RTT_EXAMPLE), "--set", f"start_list.rtt_csv={csv_path}"], capsys)
    assert_refused(code, lines, err, [str(RTT_EXAMPLE), "rtt_csv"], expected)


@pytest.mark.parametrize("make, expected", CSV_PARAMS, ids=CSV_IDS)
def test_hostile_rtt_csv_stops_backtest(make: Callable[[Path], Path], expected: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = make(tmp_path)
    code, lines, err = run_main(["backtest", str(RTT_EXAMPLE), "--observed", str(RTT_CSV), str(csv_path),
                                 "--replications", "1", "--results-root", str(tmp_path / "res")], capsys)
    assert_refused(code, lines, err, ["--observed"], expected)
    assert not (tmp_path / "res").exists(), "nothing may be written"


def test_the_baseline_still_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["validate", str(BASELINE)], capsys)
    assert code == 0, err


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_file_that_reports_no_size_but_has_content_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """/proc files say 0 bytes and then give more: the reader reads no further than the size it was told."""
    code, lines, err = run_main(["validate", "/proc/self/status"], capsys)
    assert_refused(code, lines, err, ["/proc/self/status"], "grew while being read")
