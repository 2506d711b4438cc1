"""The start list read from an RTT Full CSV, the referral calibration, bad data, and the backtest.

Expected values are computed from the CSV with the csv module (no sim code), so the tests check the reader,
the mapping and the model's start list together. The real extract is RBD (Dorset County Hospital), November
2024; synthetic months are made from it by scaling its counts.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import ROOT, run_cli, simple_raw
from sim.cli import main as cli
from sim.model.replication import run_single
from sim.outputs.backtest import METRICS, mape, monday_on_or_after
from sim.scenario.build import build_scenario, build_start_list, calibrate, load_scenario, start_list_notes
from sim.scenario.schema import ScenarioError
from sim.scenario.validate import validate

REAL = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
BAND = re.compile(r"^Gt (\d+) (?:To \d+ )?Weeks SUM 1$")
MAPPED = {"100": "general", "110": "trauma_orthopaedics", "130": "ophthalmology"}


# --- expected values straight from the CSV ----------------------------------------------------------------


def _rows(path: Path = REAL) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _n(cell: str) -> int:
    return int(cell) if cell.strip() else 0


def _part_rows(part: str, path: Path = REAL) -> list[dict[str, str]]:
    return [r for r in _rows(path) if r["RTT Part Type"] == part and r["Treatment Function Code"] != "C_999"]


def _bands_from(part: str, lower: int, path: Path = REAL) -> int:
    """Patients in bands whose lower bound is >= `lower` (unknown clock starts not included)."""
    return sum(_n(v) for r in _part_rows(part, path) for k, v in r.items()
               if (m := BAND.match(k)) and int(m.group(1)) >= lower)


def _total_by_code(part: str, path: Path = REAL) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in _part_rows(part, path):
        code = r["Treatment Function Code"].removeprefix("C_")
        out[code] = out.get(code, 0) + _n(r["Total All"]) - _n(r["Patients with unknown clock start date"])
    return out


# --- scenarios ------------------------------------------------------------------------------------------


def _raw(rtt_csv: Path | str = REAL, *, referrals: float = 0.0, sessions: int = 0, slots: float = 0.0,
         horizon_weeks: int = 1, **start_list) -> dict:
    """simple_raw with four specialties (three mapped by code, `other`), one site, no capacity by default."""
    raw = simple_raw(referrals_per_week=referrals, sessions_per_day=sessions, clinic_slots_per_week=slots,
                     horizon_weeks=horizon_weeks)
    template = raw["specialties"]["general"]
    raw["specialties"] = {}
    for name, code, share in [("general", "100", 0.4), ("trauma_orthopaedics", "110", 0.3),
                              ("ophthalmology", "130", 0.2), ("other", "X02", 0.1)]:
        spec = copy.deepcopy(template)
        spec.update(treatment_function_code=code, referral_share=share)
        raw["specialties"][name] = spec
    raw["specialties"]["ophthalmology"]["priority_mix"] = {"P1": 0.0, "P2": 0.5, "P3": 0.0, "P4": 0.5}
    site = raw["sites"]["site_a"]
    site["trust_code"] = "RBD"
    site["theatres"]["specialty_session_shares"] = {"general": 0.4, "trauma_orthopaedics": 0.3,
                                                    "ophthalmology": 0.2, "other": 0.1}
    site["outpatient_first_slots_per_week"] = {s: slots for s in raw["specialties"]}
    raw["start_list"] = {"rtt_csv": str(rtt_csv), "provider_sites": {"RBD": "site_a"},
                         "specialty_for_treatment_function": dict(MAPPED), "other_specialty": "other",
                         "priority_mix": "specialty", **start_list}
    return raw


def _write_scenario(folder: Path, raw: dict, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_week():
    """The real RBD list, no referrals and no capacity, one week: (scenario, result)."""
    scenario = build_scenario(_raw(), ROOT / "tests" / "rtt-start-test.yaml").scenario
    return scenario, run_single(scenario, 0)


# --- the start list -------------------------------------------------------------------------------------


@pytest.mark.verification
@pytest.mark.parametrize("weeks", [18, 52, 78, 104])
def test_list_is_the_extract_one_week_older(one_week, weeks):
    _, result = one_week
    row = result.weekly.iloc[0]
    expected = _bands_from("Part_2", weeks - 1)
    seen = int(row[f"waiting_over_{weeks}w"])
    assert seen == expected, (f"over {weeks} weeks at the end of week 0: expected {expected} (Part_2 bands from "
                              f"'Gt {weeks - 1} To {weeks}' up), saw {seen}")


@pytest.mark.verification
def test_totals_and_admitted_stage_match_the_extract(one_week):
    _, result = one_week
    row = result.weekly.iloc[0]
    total = _bands_from("Part_2", 0)
    admitted = _bands_from("Part_2A", 0)
    assert total == 21702, f"file check: expected RBD Part_2 21,702, computed {total}"
    for column, want in [("waiting_total_start", total), ("waiting_total", total), ("waiting_admitted", admitted),
                         ("waiting_outpatient", total - admitted)]:
        assert int(row[column]) == want, f"{column}: expected {want}, saw {int(row[column])}"
    for column in ("clock_starts", "clock_stops_admitted", "clock_stops_non_admitted", "removals_other"):
        assert int(row[column]) == 0, f"{column}: expected 0 with no demand or capacity, saw {int(row[column])}"


@pytest.mark.verification
def test_specialty_mapping_and_other_specialty_report(one_week):
    scenario, result = one_week
    by_code = _total_by_code("Part_2")
    unmapped = {c: n for c, n in by_code.items() if c not in MAPPED}
    week0 = result.by_specialty.set_index("specialty")["waiting_total"]
    for code, spec in MAPPED.items():
        assert int(week0[spec]) == by_code[code], f"{spec} (code {code}): expected {by_code[code]}, saw {week0[spec]}"
    assert int(week0["other"]) == sum(unmapped.values()), \
        f"other: expected the unmapped codes' {sum(unmapped.values())}, saw {int(week0['other'])}"
    rtt = scenario.start_list.rtt
    seen = {code: n for code, _, n in rtt.unmapped}
    assert seen == unmapped, f"unmapped report: expected {unmapped}, saw {seen}"
    note = next((n for n in start_list_notes(scenario) if n.startswith("start_list.other_specialty")), "")
    missing = [c for c in unmapped if f" {c} " not in note]
    assert note and not missing, f"expected a note naming every unmapped code, missing {missing} in {note!r}"


@pytest.mark.unit
def test_priorities_follow_the_specialty_mix(one_week):
    """Ophthalmology's mix is half P2, half P4; the others are all P4 (simple_raw)."""
    scenario, _ = one_week
    from sim.core.rng import Streams
    from sim.model.referrals import PathwayParameters
    from sim.model.start_list import draw_start_list
    attrs, _ = draw_start_list(scenario, Streams(1, 0), PathwayParameters.from_scenario(scenario))
    ophth = attrs["specialty"] == scenario.specialty_names.index("ophthalmology")
    share_p2 = float(np.mean(attrs["priority"][ophth] == 1))
    others = set(np.unique(attrs["priority"][~ophth]).tolist())
    assert abs(share_p2 - 0.5) < 0.03, f"ophthalmology: expected about half P2, saw {share_p2:.3f}"
    assert others == {3}, f"other specialties: expected only P4 (code 3), saw {others}"
    weeks = np.floor((-attrs["clock_start_day"] - 1) / 7).astype(int)
    assert weeks.min() >= 0 and (-attrs["clock_start_day"]).min() >= 1, "every start-list patient has waited >= 1 day"


def _edited_copy(tmp_path: Path, name: str, edit) -> Path:
    """The real file with its C_999 total rows dropped (so edited rows need no matching total) and `edit`
    applied to each remaining row; Total and Total All recomputed from the bands and unknown clock starts."""
    rows = [r for r in _rows() if r["Treatment Function Code"] != "C_999"]
    header = list(rows[0].keys())
    bands = [k for k in header if BAND.match(k)]
    for r in rows:
        edit(r)
        if r["RTT Part Type"] != "Part_3":
            s = sum(_n(r[b]) for b in bands)
            r["Total"] = str(s)
            r["Total All"] = str(s + _n(r["Patients with unknown clock start date"]))
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.verification
def test_unknown_clock_starts_left_out_and_open_band_kept(tmp_path):
    """Add 5 unknown clock starts and 7 pathways in the open 'Gt 104 Weeks' band (3 of them admitted) to
    trauma and orthopaedics: the 5 are left out and reported; the 7 are all over 104 weeks a week later."""
    done = {"Part_2": False, "Part_2A": False}

    def edit(r):
        part, code = r["RTT Part Type"], r["Treatment Function Code"]
        if code == "C_110" and part in done and not done[part]:
            done[part] = True
            if part == "Part_2":
                r["Patients with unknown clock start date"] = str(_n(r["Patients with unknown clock start date"]) + 5)
            r["Gt 104 Weeks SUM 1"] = str(_n(r["Gt 104 Weeks SUM 1"]) + (7 if part == "Part_2" else 3))

    path = _edited_copy(tmp_path, "edited.csv", edit)
    scenario = build_scenario(_raw(path), tmp_path / "s.yaml").scenario
    row = run_single(scenario, 0).weekly.iloc[0]
    assert int(row["waiting_over_104w"]) == _bands_from("Part_2", 103, path) == _bands_from("Part_2", 103) + 7, \
        f"over 104 weeks: expected the file's {_bands_from('Part_2', 103, path)}, saw {int(row['waiting_over_104w'])}"
    assert int(row["waiting_total"]) == 21702 + 7, \
        f"total: expected 21,709 (21,702 + 7 in the open band; the 5 unknown left out), saw {int(row['waiting_total'])}"
    assert int(row["waiting_admitted"]) == _bands_from("Part_2A", 0) + 3, \
        f"admitted: expected {_bands_from('Part_2A', 0) + 3}, saw {int(row['waiting_admitted'])}"
    notes = " ".join(start_list_notes(scenario))
    assert "5 pathways with an unknown clock start" in notes, f"expected the 5 unknown reported, notes: {notes}"


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("change, words", [
    ({"bands": []}, "exactly one of bands or rtt_csv"),
    ({"rtt_csv": None}, "exactly one of bands or rtt_csv"),
    ({"provider_sites": {"RBD": "site_b"}}, "provider_sites.RBD: unknown site 'site_b'"),
    ({"specialty_for_treatment_function": {"110": "orthopaedics"}}, "specialty_for_treatment_function.110"),
    ({"other_specialty": "misc"}, "other_specialty: 'misc' is not a specialty"),
    ({"specialty_shares": {"general": 1.0}}, "specialty_shares: not used with rtt_csv"),
])
def test_validation_errors_name_the_key(change, words):
    """Settings are checked when the scenario validates; other_specialty only once the file is read (build)."""
    raw = _raw()
    raw["start_list"].update(change)
    with pytest.raises(ScenarioError) as err:
        build_scenario(raw, "scenario.yaml")
    text = "\n".join(err.value.problems)
    assert words in text and "start_list" in text, f"expected {words!r} under start_list, saw {text!r}"


@pytest.mark.unit
def test_rtt_keys_refused_with_bands():
    raw = simple_raw()
    raw["start_list"]["provider_sites"] = {"RBD": "site_a"}
    with pytest.raises(ScenarioError) as err:
        validate(raw, "scenario.yaml")
    assert "provider_sites: only used with rtt_csv" in err.value.problems[0], err.value.problems


@pytest.mark.unit
def test_defaults_map_by_treatment_function_code_and_trust_code():
    raw = _raw()
    for key in ("provider_sites", "specialty_for_treatment_function"):
        del raw["start_list"][key]
    rtt = build_scenario(raw, "scenario.yaml").scenario.start_list.rtt
    sites = {site for site, *_ in rtt.cells}
    unmapped = {code for code, _, _ in rtt.unmapped}
    assert sites == {"site_a"}, f"expected RBD at site_a (trust_code RBD), saw {sites}"
    assert not {"100", "110", "130", "X02"} & unmapped, f"codes of the specialties must be mapped, saw {unmapped}"


@pytest.mark.unit
def test_relative_path_is_read_from_the_scenario_folder(tmp_path, monkeypatch):
    data = tmp_path / "scenarios" / "data"
    data.mkdir(parents=True)
    (data / "month.csv").write_bytes(REAL.read_bytes())
    path = _write_scenario(tmp_path / "scenarios", _raw("data/month.csv"))
    monkeypatch.chdir(tmp_path)            # not the scenario's folder
    scenario = load_scenario(path).scenario
    assert scenario.start_list.rtt.source == (data / "month.csv").resolve(), scenario.start_list.rtt.source
    assert scenario.start_list.rtt.total == 21702


@pytest.mark.unit
def test_calibrate_referrals_from_part_3():
    raw = _raw(calibrate_referrals_from_rtt=True)
    raw["referrals"]["advice_and_guidance_share"] = 0.1
    scenario = build_start_list(validate(raw, "scenario.yaml"), "scenario.yaml")
    clock_starts = sum(_n(r["Total All"]) for r in _part_rows("Part_3"))
    expected = round(clock_starts * 12 / 52 / 0.9, 1)
    assert any("NOT applied" in n for n in start_list_notes(scenario)), "before applying, notes must say so"
    built = calibrate(scenario, raw, "scenario.yaml")
    calibrated, new_raw = built.scenario, built.raw
    assert calibrated.referrals.referrals_per_week == expected, \
        f"expected {clock_starts} x 12 / 52 / 0.9 = {expected}, saw {calibrated.referrals.referrals_per_week}"
    assert new_raw["referrals"]["referrals_per_week"] == expected and raw["referrals"]["referrals_per_week"] == 0
    note = [n for n in built.notes if "calibrate_referrals_from_rtt" in n]
    assert note and f"{expected:,.1f}" in note[0] and f"{clock_starts:,}" in note[0], note


# --- bad data on the command line -----------------------------------------------------------------------


@pytest.mark.integration
def test_not_an_rtt_file_exits_2_naming_the_file(tmp_path):
    bad = tmp_path / "not_rtt.csv"
    bad.write_text("date,inpatients\n2021-01-01,5\n", encoding="utf-8")
    path = _write_scenario(tmp_path, _raw("not_rtt.csv"))
    proc = run_cli("validate", str(path), cwd=ROOT)
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2, f"expected exit 2, saw {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines and all(str(bad) in x for x in lines), f"expected every line to name {bad}, saw {lines}"
    assert "not an RTT Full CSV" in proc.stderr, proc.stderr


@pytest.mark.integration
def test_provider_with_no_rows_exits_2_and_writes_nothing(tmp_path):
    raw = _raw(providers=["RBD", "RYJ"], provider_sites={"RBD": "site_a", "RYJ": "site_a"})
    path = _write_scenario(tmp_path, raw)
    out = tmp_path / "out"
    proc = run_cli("run", str(path), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, f"expected exit 2, saw {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr and str(REAL) in proc.stderr and "'RYJ' have no rows" in proc.stderr, \
        proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*")), "nothing may be written for bad data"


# --- backtest -------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_mape_known_case():
    value, used, skipped = mape([100, 200, 0], [110, 150, 5])
    assert math.isclose(value, 17.5) and (used, skipped) == (2, 1), \
        f"expected (10% + 25%) / 2 = 17.5% over 2 months, 1 skipped; saw {value}, {used}, {skipped}"
    value, used, skipped = mape([0, 0], [1, 2])
    assert math.isnan(value) and (used, skipped) == (0, 2), (value, used, skipped)


@pytest.mark.unit
def test_monday_on_or_after():
    import datetime as dt
    assert monday_on_or_after(dt.date(2024, 11, 30)) == dt.date(2024, 12, 2)
    assert monday_on_or_after(dt.date(2024, 12, 2)) == dt.date(2024, 12, 2)


def _scaled_month(tmp_path: Path, period: str, factor: float) -> Path:
    def edit(r):
        r["Period"] = period
        cols = [k for k in r if BAND.match(k)] + ["Patients with unknown clock start date"]
        if r["RTT Part Type"] == "Part_3":
            cols = ["Total All"] + (["Total"] if r["Total"].strip() else [])
        for k in cols:
            if r[k].strip():
                r[k] = str(int(round(_n(r[k]) * factor)))
    return _edited_copy(tmp_path, f"{period}.csv", edit)


def _observed(path: Path) -> dict[str, int]:
    out = {"waiting_total": _bands_from("Part_2", 0, path), "waiting_admitted": _bands_from("Part_2A", 0, path)}
    out.update({f"waiting_over_{t}w": _bands_from("Part_2", t, path) for t in (18, 52, 78, 104)})
    return out


@pytest.mark.integration
def test_backtest_against_synthetic_months(tmp_path, capsys):
    dec = _scaled_month(tmp_path, "RTT-December-2024", 1.03)
    jan = _scaled_month(tmp_path, "RTT-January-2025", 1.06)
    raw = _raw(referrals=1200.0, sessions=30, slots=1500.0, calibrate_referrals_from_rtt=True)
    raw["removals"]["validation_rounds"] = []
    scenario_path = _write_scenario(tmp_path, raw)
    out = tmp_path / "bt"
    code = cli.main(["backtest", str(scenario_path), "--observed", str(jan), str(REAL), str(dec),
                     "--replications", "3", "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, f"expected exit 0, saw {code}: {printed.err}"
    table = pd.read_csv(out / "backtest.csv")
    months = sorted(set(table["month"]))
    assert months == ["RTT-December-2024", "RTT-January-2025"], f"expected the two later months, saw {months}"
    assert sorted(set(table["metric"])) == sorted(METRICS), f"expected metrics {METRICS}, saw {set(table['metric'])}"
    assert len(table) == 2 * len(METRICS), f"expected one row per month and metric, saw {len(table)} rows"
    # start 2024-12-02 (Monday after 30 Nov); census 31 Dec is in week 4, 31 Jan in week 8
    weeks = table.groupby("month")["week"].first().to_dict()
    assert weeks == {"RTT-December-2024": 4, "RTT-January-2025": 8}, f"expected census weeks 4 and 8, saw {weeks}"
    for path, month in ((dec, "RTT-December-2024"), (jan, "RTT-January-2025")):
        seen = table[table["month"] == month].set_index("metric")["observed"].astype(int).to_dict()
        assert seen == _observed(path), f"{month}: expected observed {_observed(path)}, saw {seen}"
    weekly = pd.read_csv(out / "weekly.csv")
    for r in table.itertuples():
        values = weekly.loc[weekly["week"] == r.week, r.metric].to_numpy(dtype=float)
        assert len(values) == 3 and math.isclose(r.simulated_median, float(np.median(values))), (r, values)
        assert r.simulated_p05 <= r.simulated_median <= r.simulated_p95, r
        assert math.isclose(r.error, r.simulated_median - r.observed), r
    errors = pd.read_csv(out / "backtest_errors.csv").set_index("metric")
    for metric in METRICS:
        part = table[table["metric"] == metric]
        want = float(np.mean(np.abs(part["simulated_median"] - part["observed"]) / part["observed"]) * 100) \
            if (part["observed"] > 0).all() else None
        if want is not None:
            assert math.isclose(errors.loc[metric, "mape_percent"], want), \
                f"{metric}: expected MAPE {want}, saw {errors.loc[metric, 'mape_percent']}"
        assert f"MAPE {metric}:" in printed.out, f"expected MAPE for {metric} printed, saw {printed.out}"
    assert (out / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "backtest.png must be a PNG"
    manifest = json.loads((out / "manifest.json").read_text())
    clock_starts = sum(_n(r["Total All"]) for r in _part_rows("Part_3"))
    resolved = yaml.safe_load((out / "scenario.yaml").read_text())
    assert resolved["referrals"]["referrals_per_week"] == round(clock_starts * 12 / 52, 1), \
        f"calibrated referrals: expected {round(clock_starts * 12 / 52, 1)}, saw {resolved['referrals']}"
    assert any("calibrate_referrals_from_rtt: referrals.referrals_per_week" in n for n in manifest["notes"]), \
        manifest["notes"]
    assert str(resolved["start_date"]) == "2024-12-02" and Path(resolved["start_list"]["rtt_csv"]) == REAL


@pytest.mark.integration
def test_backtest_bad_observed_file_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    scenario_path = _write_scenario(tmp_path, _raw())
    out = tmp_path / "bt"
    code = cli.main(["backtest", str(scenario_path), "--observed", str(REAL), str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err, f"expected exit 2 naming {bad}, saw {code}: {err}"
    assert not out.exists(), "nothing may be written"
