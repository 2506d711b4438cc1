"""`report DIR` on a folder a run did not write as it is: tampered with, foreign, half written, or left by a killed
run. Each is refused with exit 2 and one line naming the folder, the file and what is wrong: no traceback, nothing
written into the folder, nothing read that is not a regular file (a FIFO would block, /dev/zero never ends). An
untouched run folder, a foreign folder that holds what the report needs, and the golden folders still report."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sim.outputs.report
from helpers import ROOT, simple_raw
from sim.cli.main import main
from sim.outputs import run_folder

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
    partial = folder.with_name(f".{folder.name}.partial-12345")
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
CSV_CAP = run_folder.CSV_MAX_BYTES
TEXT_CAP = run_folder.TEXT_MAX_BYTES

# (case, tamper, what the one line must contain besides the folder: the file and the problem)
CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("not a folder", lambda f: f / "weekly.csv", ("weekly.csv", "not a folder")),
    ("no such folder", lambda f: f / "nowhere", ("nowhere", "no such folder")),
    ("partial folder of a killed run", _rename_partial, (".partial-12345", "an unfinished run (partial folder); "
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
    ("weekly.csv a FIFO", _replace_with("weekly.csv", os.mkfifo), ("weekly.csv", "FIFO", "not read")),
    ("weekly.csv a link to /dev/zero", _replace_with("weekly.csv", lambda p: p.symlink_to("/dev/zero")),
     ("weekly.csv", "character device", "not read")),
    ("weekly.csv a link to nothing", _replace_with("weekly.csv", lambda p: p.symlink_to(p.with_name("gone"))),
     ("weekly.csv", "does not exist")),
    ("weekly.csv a folder", _replace_with("weekly.csv", Path.mkdir), ("weekly.csv", "is a folder")),
    ("weekly.csv over the cap", _replace_with("weekly.csv", _sparse(CSV_CAP + 1)),
     ("weekly.csv", f"more than the {CSV_CAP:,}", "not read")),
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
    ("manifest.json over the cap", _replace_with("manifest.json", _sparse(TEXT_CAP + 1)),
     ("manifest.json", "more than the")),
    ("scenario.yaml not YAML", _write("scenario.yaml", "name: [simple\n"), ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml a list", _write("scenario.yaml", "- name: simple\n"), ("scenario.yaml", "not a mapping")),
    ("scenario.yaml empty", _write("scenario.yaml", "# nothing\n"), ("scenario.yaml", "holds no scenario")),
    ("scenario.yaml a mapping as a key", _write("scenario.yaml", "? {a: 1}\n: b\n"),
     ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml nested 5,000 deep", _write("scenario.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
     ("scenario.yaml", "nest")),
    ("scenario.yaml nested 60 deep", _write("scenario.yaml", "a: " + "[" * 60 + "]" * 60 + "\n"),
     ("scenario.yaml", "nested more than 50 deep")),
    ("scenario.yaml alias bomb", _write("scenario.yaml", BILLION_LAUGHS), ("scenario.yaml", "aliases")),
    ("scenario.yaml alias inside itself", _write("scenario.yaml", "a: &a [*a]\n"),
     ("scenario.yaml", "refers to itself")),
    ("scenario.yaml a python tag", _write("scenario.yaml", "name: !!python/object/apply:os.system ['echo x']\n"),
     ("scenario.yaml", "is not valid YAML")),
    ("scenario.yaml a wrong type", _scenario_edit(_bad_beds),
     ("scenario.yaml", "sites.site_a.elective_beds", "integer")),
    ("scenario.yaml a FIFO", _replace_with("scenario.yaml", os.mkfifo), ("scenario.yaml", "FIFO")),
    ("scenario.yaml over the cap", _replace_with("scenario.yaml", _sparse(TEXT_CAP + 1)),
     ("scenario.yaml", "more than the")),
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
    assert not [p for p in folder.rglob("*") if ".partial" in p.name], "expected no staging folder left behind"


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
    run = run_folder.load_run(folder)
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
    run = run_folder.load_run(GOLDEN / name)
    assert run.names and all(info.horizon_weeks > 0 for info in run.scenarios.values())
    assert run.by_site is not None and run.table(run_folder.FINANCE_BY_YEAR_CSV) is not None
