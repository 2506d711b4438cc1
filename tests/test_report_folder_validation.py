"""`report DIR` on a folder a run did not write as it is: tampered with, foreign, half written, or left by a killed
run. Each is refused with exit 2 and one line naming the folder, the file and what is wrong: no traceback, nothing
written into the folder, nothing read that is not a regular file (a FIFO would block, /dev/zero never ends). An
untouched run folder, a foreign folder that holds what the report needs, and the golden folders still report; so
does every folder a run can write: scenarios named like pandas' missing values or like numbers, a saved scenario
from before a bound or a rule changed, a long embedded Covid series, tables longer than a spreadsheet sheet. The
only limit on a file's size is the memory this machine has to read it."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import sim.outputs.report
from helpers import ROOT, simple_raw
from sim.cli.main import main
from sim.outputs import run_folder, run_reader

pytestmark = pytest.mark.integration

GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real, tiny finished run folder (one replication, four weeks, no report), made once for the module."""
    base = tmp_path_factory.mktemp("finished")
    scenario = base / "tiny.yaml"
    raw = simple_raw(start_bands=[{"from_weeks": 50, "to_weeks": 60, "count": 30, "admitted_share": 1.0}])
    scenario.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    out = base / "run"
    code = main(["run", str(scenario), "--replications", "1", "--set", "horizon_weeks=4", "--no-report", "--quiet",
                 "--out", str(out)])
    assert code == 0 and (out / "weekly.csv").is_file(), f"expected the tiny run to finish, exit {code}"
    return out


def _snapshot(folder: Path) -> list[str]:
    """Every path under `folder` (symbolic links and FIFOs listed, never followed or opened), with file sizes."""
    seen = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            size = path.lstat().st_size if path.is_file() and not path.is_symlink() else ""
            seen.append(f"{path.relative_to(folder)} {size}")
    return sorted(seen)


# --- ways to tamper with a copy of the finished run: each returns the path given to `report` -------------------


def _rewrite_csv(name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    def tamper(folder: Path) -> Path:
        table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        change(table).to_csv(folder / name, index=False)
        return folder
    return tamper


def _set_cell(name: str, column: str, row: int, value: str) -> Callable[[Path], Path]:
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[row, column] = value
        return table
    return _rewrite_csv(name, change)


def _drop_columns(name: str, *columns: str) -> Callable[[Path], Path]:
    return _rewrite_csv(name, lambda table: table.drop(columns=list(columns)))


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def tamper(folder: Path) -> Path:
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return folder
    return tamper


def _edit_text(name: str, change: Callable[[str], str]) -> Callable[[Path], Path]:
    def tamper(folder: Path) -> Path:
        path = folder / name
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
        return folder
    return tamper


def _replace_with(name: str, make: Callable[[Path], None]) -> Callable[[Path], Path]:
    """`name` removed and made again by `make(path)` (a FIFO, a symbolic link, a folder, a sparse file)."""
    def tamper(folder: Path) -> Path:
        path = folder / name
        path.unlink(missing_ok=True)
        make(path)
        return folder
    return tamper


def _sparse(size_bytes: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.truncate(size_bytes)          # no data written: only a file that says it is this long
    return make


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], Path]:
    def tamper(folder: Path) -> Path:
        path = folder / name
        path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
        return folder
    return tamper


def _with(mapping: dict, **changes: object) -> dict:
    return {**mapping, **changes}


def _drop_weekly_row(index: int) -> Callable[[Path], Path]:
    return _rewrite_csv("weekly.csv", lambda table: table.drop(index=index))


def _rename_partial(folder: Path) -> Path:
    partial = folder.with_name(f".{folder.name}.nwlsim-partial-12345")
    folder.rename(partial)
    return partial


def _shift_week_start(table: pd.DataFrame) -> pd.DataFrame:
    table.loc[2, "week_start"] = (pd.Timestamp(table.loc[2, "week_start"]) + pd.Timedelta(days=1)).date().isoformat()
    return table


def _scenario_edit(change: Callable[[dict], dict]) -> Callable[[Path], Path]:
    def tamper(folder: Path) -> Path:
        path = folder / "scenario.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(change(raw), sort_keys=False), encoding="utf-8")
        return folder
    return tamper


def _bad_beds(raw: dict) -> dict:
    raw["sites"]["site_a"]["elective_beds"] = "many"
    return raw


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))
BINARY = bytes(range(256)) * 8

# (case, tamper, what the one line must contain besides the folder: the file and the problem)
CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("not a folder", lambda f: f / "weekly.csv", ("weekly.csv", "not a folder")),
    ("no such folder", lambda f: f / "nowhere", ("nowhere", "no such folder")),
    ("partial folder of a killed run", _rename_partial, (".nwlsim-partial-12345", "an unfinished run (partial folder); "
                                                        "nothing to report")),
    ("no weekly.csv", lambda f: (f / "weekly.csv").unlink() or f, ("weekly.csv", "not a finished run folder")),
    ("weekly.csv empty", _write("weekly.csv", ""), ("weekly.csv", "is empty")),
    ("weekly.csv header only", _edit_text("weekly.csv", lambda t: t.splitlines()[0] + "\n"),
     ("weekly.csv", "header but no rows")),
    ("weekly.csv without week_start", _drop_columns("weekly.csv", "week_start"),
     ("weekly.csv", "missing column week_start")),
    ("weekly.csv without scenario and week", _drop_columns("weekly.csv", "scenario", "week"),
     ("weekly.csv", "missing columns scenario, week")),
    ("weekly.csv text in a count", _set_cell("weekly.csv", "waiting_total", 1, "lots"),
     ("weekly.csv", "column waiting_total", "'lots' on line 3 is not a number")),
    ("weekly.csv binary", _write("weekly.csv", BINARY), ("weekly.csv", "binary data")),
    ("weekly.csv not UTF-8", _write("weekly.csv", b"scenario,week\n\xff\xfe\xfa,1\n"),
     ("weekly.csv", "not UTF-8")),
    ("weekly.csv not a table", _write("weekly.csv", 'a,b\n1,2\n"3,4\n5,6,7,8\n'), ("weekly.csv",)),
    ("weekly.csv empty count", _set_cell("weekly.csv", "waiting_over_52w", 2, ""),
     ("weekly.csv", "column waiting_over_52w", "empty on line 4")),
    ("weekly.csv negative count", _set_cell("weekly.csv", "waiting_over_18w", 3, "-4"),
     ("weekly.csv", "column waiting_over_18w", "negative")),
    ("weekly.csv infinite count", _set_cell("weekly.csv", "waiting_total", 0, "inf"),
     ("weekly.csv", "column waiting_total", "finite")),
    ("weekly.csv infinite utilisation", _set_cell("weekly.csv", "theatre_utilisation", 1, "-inf"),
     ("weekly.csv", "column theatre_utilisation", "finite")),
    ("weekly.csv NaN week", _set_cell("weekly.csv", "week", 1, "nan"), ("weekly.csv", "column week", "empty")),
    ("weekly.csv fractional week", _set_cell("weekly.csv", "week", 1, "1.5"),
     ("weekly.csv", "column week", "not a whole number")),
    ("weekly.csv true/false counts", _set_cell("weekly.csv", "clock_starts", 1, "yes"),
     ("weekly.csv", "column clock_starts")),
    ("weekly.csv cut mid-line", _edit_text("weekly.csv", lambda t: t[: t.rstrip().rfind("\n") + 30]),
     ("weekly.csv", "empty on line 5")),
    ("weekly.csv a week missing", _drop_weekly_row(1), ("weekly.csv", "without gaps")),
    ("weekly.csv a week twice", _rewrite_csv("weekly.csv", lambda t: pd.concat([t, t.iloc[[2]]])),
     ("weekly.csv", "week 2 appears twice")),
    ("weekly.csv week_start not a date", _set_cell("weekly.csv", "week_start", 2, "someday"),
     ("weekly.csv", "column week_start", "not a date")),
    ("weekly.csv week_start out of step", _rewrite_csv("weekly.csv", _shift_week_start),
     ("weekly.csv", "line 4: week 2 starts")),
    ("weekly.csv a FIFO", _replace_with("weekly.csv", os.mkfifo), ("weekly.csv", "FIFO", "not a regular file")),
    ("weekly.csv a link to /dev/zero", _replace_with("weekly.csv", lambda p: p.symlink_to("/dev/zero")),
     ("weekly.csv", "character device", "not a regular file")),
    ("weekly.csv a link to nothing", _replace_with("weekly.csv", lambda p: p.symlink_to(p.with_name("gone"))),
     ("weekly.csv", "does not exist")),
    ("weekly.csv a folder", _replace_with("weekly.csv", Path.mkdir), ("weekly.csv", "a folder, not a regular file")),
    ("manifest.json not JSON", _write("manifest.json", "{version: 1"), ("manifest.json", "is not JSON")),
    ("manifest.json a list", _write("manifest.json", "[1, 2]"), ("manifest.json", "not a JSON object")),
    ("manifest.json nested deep", _write("manifest.json", "[" * 200_000 + "]" * 200_000),
     ("manifest.json", "nested too deeply")),
    ("manifest.json wrong type", _edit_json("manifest.json", lambda m: _with(m, wall_time_seconds="slow")),
     ("manifest.json", "wall_time_seconds", "expected a number")),
    ("manifest.json bad ranges", _edit_json("manifest.json", lambda m: _with(m, parameter_intervals={"simple": {
        "referrals.referrals_per_week": "wide"}})), ("manifest.json", "parameter_intervals.simple")),
    ("manifest.json binary", _write("manifest.json", BINARY), ("manifest.json", "binary data")),
    ("manifest.json a FIFO", _replace_with("manifest.json", os.mkfifo), ("manifest.json", "FIFO")),
    ("scenario.yaml not YAML", _write("scenario.yaml", "name: [simple\n"), ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml a list", _write("scenario.yaml", "- name: simple\n"), ("scenario.yaml", "not a mapping")),
    ("scenario.yaml empty", _write("scenario.yaml", "# nothing\n"), ("scenario.yaml", "holds no scenario")),
    ("scenario.yaml a mapping as a key", _write("scenario.yaml", "? {a: 1}\n: b\n"),
     ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml nested 5,000 deep", _write("scenario.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
     ("scenario.yaml", "nest")),
    ("scenario.yaml nested 150 deep", _write("scenario.yaml", "a: " + "[" * 150 + "]" * 150 + "\n"),
     ("scenario.yaml", f"nesting deeper than {run_reader.SAVED_SCENARIO_MAX_NESTING} levels")),
    ("scenario.yaml alias bomb", _write("scenario.yaml", BILLION_LAUGHS),
     ("scenario.yaml", "values (an alias *name counts as a copy of what it names)")),
    ("scenario.yaml alias inside itself", _write("scenario.yaml", "a: &a [*a]\n"),
     ("scenario.yaml", "inside the collection it names")),
    ("scenario.yaml a python tag", _write("scenario.yaml", "name: !!python/object/apply:os.system ['echo x']\n"),
     ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml a wrong type", _scenario_edit(_bad_beds),
     ("scenario.yaml", "sites.site_a.elective_beds", "integer")),
    ("scenario.yaml a FIFO", _replace_with("scenario.yaml", os.mkfifo), ("scenario.yaml", "FIFO")),
    ("scenarios/ with bad YAML", _write("scenarios/other.yaml", "a: [\n"),
     ("scenarios/other.yaml", "is not valid YAML")),
    ("replications.csv binary", _write("replications.csv", BINARY), ("replications.csv", "binary data")),
    ("replications.csv without replication", _drop_columns("replications.csv", "replication"),
     ("replications.csv", "missing column replication")),
    ("replications.csv another replication", _set_cell("replications.csv", "replication", 0, "7"),
     ("replications.csv", "does not match weekly.csv")),
    ("replications.csv text in a number", _set_cell("replications.csv", "weeks_to_clear_52w", 0, "soon"),
     ("replications.csv", "column weeks_to_clear_52w")),
    ("replications.csv clears after the run", _set_cell("replications.csv", "weeks_to_clear_52w", 0, "99"),
     ("replications.csv", "outside the run")),
    ("summary.csv without p50", _drop_columns("summary.csv", "p50"), ("summary.csv", "missing column p50")),
    ("summary.csv infinite", _set_cell("summary.csv", "mean", 0, "-inf"), ("summary.csv", "finite")),
    ("weekly_by_site.csv without the 52-week count", _drop_columns("weekly_by_site.csv", "waiting_over_52w"),
     ("weekly_by_site.csv", "missing column waiting_over_52w")),
    ("weekly_by_site.csv a week short", _rewrite_csv("weekly_by_site.csv", lambda t: t.iloc[:-1]),
     ("weekly_by_site.csv", "has 3 rows")),
    ("weekly_by_site.csv a week not run", _set_cell("weekly_by_site.csv", "week", 3, "9"),
     ("weekly_by_site.csv", "is not in weekly.csv")),
    ("finance_by_year.csv text in money", _write("finance_by_year.csv",
                                                 "scenario,metric,statistic,2021/22\nsimple,cost_total,p50,lots\n"),
     ("finance_by_year.csv", "column 2021/22")),
    ("parameters.csv binary", _write("parameters.csv", BINARY), ("parameters.csv", "binary data")),
]


@pytest.mark.parametrize(("tamper", "expected"), [(t, e) for _, t, e in CASES], ids=[c for c, _, _ in CASES])
def test_tampered_folder_is_refused_with_one_line_and_nothing_written(finished_run, tmp_path, capsys, tamper,
                                                                      expected):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    target = tamper(folder)
    before = _snapshot(tmp_path)
    code = main(["report", str(target)])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, f"expected exit 2, saw {code}; stderr: {captured.err}"
    assert "Traceback" not in captured.err, captured.err
    assert len(lines) == 1, f"expected one line on stderr, saw {lines}"
    assert lines[0].startswith(f"error: {target}"), f"expected the line to name the folder {target}: {lines[0]}"
    for text in expected:
        assert text in lines[0], f"expected {text!r} in {lines[0]!r}"
    assert _snapshot(tmp_path) == before, "expected nothing written into (or beside) a refused folder"


def test_untouched_copy_builds_its_report(finished_run, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    code = main(["report", str(folder)])
    captured = capsys.readouterr()
    assert code == 0, f"expected exit 0, saw {code}: {captured.err}"
    assert (folder / "report.html").is_file() and (folder / "results.xlsx").is_file()
    assert (folder / "charts" / "waiting_list.png").is_file()
    assert not [p for p in folder.rglob("*") if "partial-" in p.name], "expected no staging folder left behind"


def test_foreign_folder_with_only_what_the_report_needs_builds_a_report(tmp_path, capsys):
    """weekly.csv with the four columns the report cannot do without and one count; no other file."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    rows = [{"scenario": "elsewhere", "replication": r, "week": w, "week_start": f"2022-01-{3 + 7 * w:02d}",
             "waiting_over_52w": max(0, 3 - w - r)} for r in range(2) for w in range(4)]
    pd.DataFrame(rows).to_csv(folder / "weekly.csv", index=False)
    code = main(["report", str(folder)])
    captured = capsys.readouterr()
    assert code == 0, f"expected a report from a foreign folder with what it needs, saw exit {code}: {captured.err}"
    text = (folder / "report.md").read_text(encoding="utf-8")
    assert "over 52 weeks" in text, "expected the 52-week clearance derived from weekly.csv"


def test_infinite_value_in_a_column_only_copied_is_kept(finished_run, tmp_path, capsys):
    """A saturated vaccination centre's wait may be infinite: a column the report only copies into results.xlsx
    need not be finite (the columns it draws and summarises must be)."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _set_cell("weekly.csv", "vaccination_mean_wait_minutes", 1, "inf")(folder)
    run = run_reader.load_run(folder)
    assert run.weekly["vaccination_mean_wait_minutes"].iloc[1] == float("inf")
    assert capsys.readouterr().err == ""


def test_report_that_fails_after_the_checks_is_one_line_and_writes_nothing(finished_run, tmp_path, capsys,
                                                                          monkeypatch):
    """The last line of defence: whatever a folder that passed the checks still breaks becomes exit 2."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    before = _snapshot(tmp_path)

    def broken(*args: object, **kwargs: object) -> list:
        raise KeyError("a key the report expected")
    monkeypatch.setattr(sim.outputs.report, "clearance_table", broken)
    code = main(["report", str(folder)])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert "the report could not be made" in lines[0] and "KeyError" in lines[0], lines[0]
    assert _snapshot(tmp_path) == before, "expected nothing left in the folder after the report failed"


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir() if (p / "weekly.csv").is_file()))
def test_golden_folders_pass_the_checks(name):
    """The golden folders are run folders as this version writes them: every check accepts them."""
    run = run_reader.load_run(GOLDEN / name)
    assert run.names and all(info.horizon_weeks > 0 for info in run.scenarios.values())
    assert run.by_site is not None and run.table(run_folder.FINANCE_BY_YEAR_CSV) is not None


# --- folders a run wrote are never refused ------------------------------------------------------------------------


def _tiny_scenario(folder: Path, name: str) -> Path:
    raw = simple_raw(start_bands=[{"from_weeks": 50, "to_weeks": 60, "count": 30, "admitted_share": 1.0}])
    raw["name"] = name
    path = folder / f"tiny_{len(list(folder.glob('tiny_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _report(folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["report", str(folder)])
    captured = capsys.readouterr()
    assert code == 0, f"expected the report of a folder a run wrote, saw exit {code}: {captured.err}"
    return (folder / "report.md").read_text(encoding="utf-8")


def test_a_scenario_named_none_reports(tmp_path, capsys):
    """`None` is a name the scenario's pattern allows; read with pandas' missing-value strings it was an empty
    cell, and the run's own folder was refused ("column scenario: empty")."""
    out = tmp_path / "run"
    code = main(["run", str(_tiny_scenario(tmp_path, "simple")), "--set", "name=None", "--replications", "1",
                 "--set", "horizon_weeks=4", "--no-report", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    _report(out, capsys)
    assert run_reader.load_run(out).names == ["None"]


NAMES_PANDAS_WOULD_CHANGE = ["None", "NA", "null", "nan", "007"]     # missing values to pandas, or a number


def test_scenarios_named_like_missing_values_or_numbers_report_as_written(tmp_path, capsys):
    """A compare of scenarios whose names pandas would read as missing (None, NA, null, nan) or as a number (007
    as 7): every table keeps them as text, so each is found, titled and reported under its own name."""
    files = [str(_tiny_scenario(tmp_path, name)) for name in NAMES_PANDAS_WOULD_CHANGE]
    out = tmp_path / "compare"
    code = main(["compare", *files, "--replications", "1", "--set", "horizon_weeks=4", "--no-report", "--quiet",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    text = _report(out, capsys)
    run = run_reader.load_run(out)
    assert run.names == NAMES_PANDAS_WOULD_CHANGE
    assert all(info.config.get("name") == name for name, info in run.scenarios.items()), \
        "expected each scenario's saved file found under its name"
    assert set(run.by_site["scenario"]) == set(NAMES_PANDAS_WOULD_CHANGE)
    assert set(run.replications["scenario"]) == set(NAMES_PANDAS_WOULD_CHANGE)
    assert "007" in text


def _save_scenario(folder: Path, change: Callable[[dict], None]) -> None:
    """scenario.yaml changed, then written as a run writes it (run_folder.write_resolved_scenario)."""
    raw = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    change(raw)
    run_folder.write_resolved_scenario(folder, raw)


def _beyond_todays_bounds_and_rules(raw: dict) -> None:
    raw["sites"]["site_a"]["elective_beds"] = 10**9                  # above today's MAX_BEDS
    raw["run"].update(replications=20_000, min_replications=60)      # above the cap; min above max
    raw["referrals"]["referrals_per_week"] = float("inf")           # "no limit" before finite numbers were a rule
    raw["specialties"]["general"]["los_days_mean"] = 2               # a whole number where a float is
    raw["booking_policy"] = "retired_policy"                         # a choice this version does not offer
    raw["retired_section"] = {"anything": 1}                         # a key this version does not know


def test_a_saved_scenario_beyond_todays_bounds_and_rules_still_reports(finished_run, tmp_path, capsys):
    """A folder written before a bound or a rule changed must still report: only the types and shapes the report
    needs are checked (a number where a number is, a mapping where a mapping is)."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _save_scenario(folder, _beyond_todays_bounds_and_rules)
    text = _report(folder, capsys)
    assert "retired_policy" in text or "retired_policy" in (folder / "report.html").read_text(encoding="utf-8")
    assert run_reader.load_run(folder).scenarios["simple"].config["sites"]["site_a"]["elective_beds"] == 10**9


def test_a_saved_covid_series_as_long_as_its_bytes_allow_is_read(finished_run, tmp_path, capsys, monkeypatch):
    """The values cap of a saved scenario follows its size (a run embeds a Covid series of up to ~450,000
    points): with no allowance for aliases at all, a run's scenario.yaml holding a 3,000-point series (15,000
    values) is still within it, so no series a run embeds is refused for its length."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    days = [dt.date(2020, 3, 1) + dt.timedelta(days=i) for i in range(3000)]
    _save_scenario(folder, lambda raw: raw.update(covid={"inpatients_series": [
        {"date": day, "inpatients": 1234.5 + i} for i, day in enumerate(days)]}))
    monkeypatch.setattr(run_reader, "MAX_VALUES", 0)
    run = run_reader.load_run(folder)
    assert len(run.scenarios["simple"].config["covid"]["inpatients_series"]) == 3000


def test_a_table_longer_than_a_sheet_gets_a_note_in_the_workbook(finished_run, tmp_path, capsys, monkeypatch):
    """A run may write more rows than an Excel sheet holds (10,000 replications of a 20-year finance table): the
    folder reports, and the sheet says where the table is instead of holding some of its rows."""
    import openpyxl

    import sim.outputs.report.workbook as workbook
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    monkeypatch.setattr(workbook, "EXCEL_MAX_ROWS", 4)        # weekly.csv has 4 rows below its header
    _report(folder, capsys)
    sheets = openpyxl.load_workbook(folder / "results.xlsx", read_only=True)
    note = [row for row in sheets["weekly"].iter_rows(values_only=True)]
    assert note[0] == ("note",) and "has 4 rows" in str(note[1][0]) and "use weekly.csv" in str(note[1][0]), note
    assert sheets["replications"].max_row == 2, "expected a table that fits to be written as it is"


# --- what this machine cannot read ---------------------------------------------------------------------------


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def _memory(monkeypatch: pytest.MonkeyPatch, total: int | None, free: int | None) -> None:
    """What run_reader sees of this machine's memory: `total` in all, `free` now (the name the reader looked up
    before it compared with all the memory is patched too, where it still has it)."""
    monkeypatch.setattr(run_reader, "total_memory_bytes", lambda: total, raising=False)
    monkeypatch.setattr(run_reader, "available_memory_bytes", lambda: free, raising=False)


@pytest.mark.parametrize(("name", "kind"), [("weekly.csv", "csv"), ("manifest.json", "json"),
                                            ("scenario.yaml", "yaml")])
def test_a_file_larger_than_the_memory_can_read_is_refused_without_reading_it(finished_run, tmp_path, capsys,
                                                                             monkeypatch, name, kind):
    """No fixed cap below what a run can write: the limit is the memory this machine has to read the file."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _memory(monkeypatch, total=10**9, free=10**9)
    monkeypatch.setattr(run_reader, "MEMORY_PER_BYTE", {**{k: 1 for k in run_reader.MEMORY_PER_BYTE}, kind: 10**9})
    code = main(["report", str(folder)])
    lines = _one_error_line(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {folder}: {name}: is "), lines[0]
    assert "of memory and this machine has 1 GB in all; not read" in lines[0], lines[0]


def test_a_sparse_weekly_csv_as_large_as_the_memory_is_refused_without_reading_it(finished_run, tmp_path, capsys):
    total = run_reader.total_memory_bytes()
    if total is None:
        pytest.skip("this machine does not say how much memory it has")
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _replace_with("weekly.csv", _sparse(total))(folder)
    code = main(["report", str(folder)])
    lines = _one_error_line(capsys)
    assert code == 2 and len(lines) == 1 and "weekly.csv" in lines[0] and "not read" in lines[0], lines


def test_report_compares_a_file_with_all_the_memory_not_what_is_free_now(finished_run, tmp_path, capsys,
                                                                       monkeypatch):
    """Free memory moves with the page cache and whatever else runs: a folder this machine wrote must report
    while little is free, since the machine can free it to read the folder."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _memory(monkeypatch, total=8 << 30, free=1)
    _report(folder, capsys)


def test_the_memory_factors_stay_above_what_was_measured():
    """Peak memory over a file's size when the report reads it, measured (MEMORY_PER_BYTE's comment): 3.2x for
    weekly.csv, 116x for a scenario.yaml with a long Covid series, 22x for JSON of empty lists; the factors must
    not fall below those, nor grow to refuse folders by a wide margin."""
    assert 3.2 < run_reader.MEMORY_PER_BYTE["csv"] <= 5
    assert 116 < run_reader.MEMORY_PER_BYTE["yaml"] <= 150
    assert 22 < run_reader.MEMORY_PER_BYTE["json"] <= 30


def test_the_runs_own_report_is_not_refused_for_memory_and_a_refusal_names_the_real_folder(tmp_path, capsys,
                                                                                        monkeypatch):
    """The run's report reads the folder it has just written, whose tables it held in memory moments ago: it is
    not compared with the memory at all. `report DIR` on the same folder is, and its line names the folder, never
    the hidden work folder the run wrote into."""
    _memory(monkeypatch, total=1, free=1)
    out = tmp_path / "run"
    code = main(["run", str(_tiny_scenario(tmp_path, "simple")), "--replications", "1", "--set", "horizon_weeks=4",
                 "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and (out / "report.html").is_file(), f"expected the run's own report, exit {code}: {err}"
    assert main(["report", str(out)]) == 2
    lines = _one_error_line(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: weekly.csv: is "), lines
    assert "in all; not read" in lines[0] and "nwlsim" not in lines[0], lines[0]


def test_a_failing_run_report_names_the_folder_the_run_put_in_place(tmp_path, capsys, monkeypatch):
    """A refusal while the run reports on its hidden work folder names the folder as it is once renamed: the one
    the user can give to `report`."""
    real = run_reader._read_manifest

    def refused(run_dir: Path) -> dict:
        real(run_dir)
        raise run_reader._refuse(run_dir, "manifest.json", "refused by the test")
    monkeypatch.setattr(run_reader, "_read_manifest", refused)
    out = tmp_path / "run"
    code = main(["run", str(_tiny_scenario(tmp_path, "simple")), "--replications", "1", "--set", "horizon_weeks=4",
                 "--quiet", "--out", str(out)])
    lines = _one_error_line(capsys)
    assert code == 2 and (out / "weekly.csv").is_file(), lines
    assert f"{out}: manifest.json: refused by the test" in lines[-1], lines
    assert "nwlsim" not in lines[-1], lines[-1]


# --- folders that cannot be read ------------------------------------------------------------------------------


def _symlink_loop(folder: Path) -> Path:
    loop = folder.with_name("loop")
    loop.symlink_to(loop.name)
    return loop


def _denied(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """`target` as a folder this user may not look into (tests run as root, who may read anything)."""
    real = os.stat

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(path) == str(target):
            raise PermissionError(13, "Permission denied", str(target))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "stat", stat)


@pytest.mark.parametrize(("make", "reason"), [
    (_symlink_loop, "Too many levels of symbolic links"),
    ("denied", "Permission denied"),
])
def test_a_folder_that_cannot_be_read_is_one_line_with_the_systems_reason(finished_run, tmp_path, capsys,
                                                                        monkeypatch, make, reason):
    """A symbolic link that loops, a folder this user may not enter: refused with the folder and the system's
    words, not a traceback, and not "could not write the report"."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    if make == "denied":
        target = folder
        _denied(monkeypatch, folder)
    else:
        target = make(folder)
    code = main(["report", str(target)])
    lines = _one_error_line(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == f"error: {target}: cannot be read ({reason})", lines[0]


def test_a_file_that_becomes_unreadable_while_the_folder_is_read_is_named(finished_run, tmp_path, capsys,
                                                                        monkeypatch):
    """Whatever the system refuses while the folder is read is a line naming the folder, the file and the
    system's reason: reading failed, not writing the report."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)

    def denied(run_dir: Path) -> dict:
        raise PermissionError(13, "Permission denied", str(run_dir / "manifest.json"))
    monkeypatch.setattr(run_reader, "_read_manifest", denied)
    code = main(["report", str(folder)])
    lines = _one_error_line(capsys)
    assert code == 2 and lines == [f"error: {folder}: manifest.json: could not be read (Permission denied)"], lines
    assert not (folder / "report.html").exists()


# --- the saved scenario's alias allowance ---------------------------------------------------------------------


TEN_MILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))


@pytest.mark.parametrize("override", ["run.seed=1", "x=[&a 1, *a]"])
def test_a_manifest_claiming_many_overrides_does_not_raise_the_alias_cap(finished_run, tmp_path, capsys,
                                                                       override):
    """The allowance for --set values that expand aliases comes from the manifest, in the folder being checked:
    a thousand claimed overrides must not let a 10-million-value alias bomb through (at most
    MAX_SET_VALUES_WITH_ALIASES of them count)."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    _write("scenario.yaml", TEN_MILLION_LAUGHS)(folder)
    _edit_json("manifest.json", lambda m: _with(m, overrides=[override] * 1000))(folder)
    code = main(["report", str(folder)])
    lines = _one_error_line(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "scenario.yaml" in lines[0] and "values (an alias *name counts as a copy of what it names)" in lines[0]
    allowed = run_reader._saved_scenario_values(len(TEN_MILLION_LAUGHS), 1000)
    assert allowed <= len(TEN_MILLION_LAUGHS) + 40 * run_reader.MAX_VALUES < 10**7


def test_a_runs_set_value_with_an_alias_still_reports(tmp_path, capsys):
    """What the cap must let through: a --set value whose alias is written as one in the saved scenario."""
    out = tmp_path / "run"
    code = main(["run", str(_tiny_scenario(tmp_path, "simple")), "--replications", "1", "--set", "horizon_weeks=4",
                 "--set", "extra_bank_holidays=[&d 2021-06-08, *d]", "--no-report", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    _report(out, capsys)


@pytest.mark.parametrize(("name", "partial"), [(".20210607-120000.partial-123", True),
                                               (".20210607-120000.nwlsim-partial-123", True),
                                               (".report.nwlsim-partial-9", True), (".x.nwlsim-lock", True),
                                               (".x.partial-backup", False), ("20210607-120000", False),
                                               ("partial-123", False), (".hidden", False)])
def test_work_folders_of_both_namings_are_not_finished_runs(tmp_path, name, partial):
    assert run_reader.is_partial_folder(tmp_path / name) is partial
