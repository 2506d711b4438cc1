"""Theatre sessions and outpatient slots calibrated from an RTT file's completed pathways
(start_list.calibrate_treatment_from_rtt).

Expected values come from the CSV read with the csv module, and cases per session from this file's own run of the
booking rule (a plain loop, its own random numbers), not from sim.scenario.calibration. The scenario is the shipped
example (RBD, November 2024, put at imperial) cut down to that one site, so nothing else treats its list.
"""
from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import ROOT, run_cli
from sim.model.replication import run_single
from sim.scenario.build import BuiltScenario, build_scenario, build_start_list, load_scenario, start_list_notes
from sim.scenario.schema import ScenarioError
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

REAL = ROOT / "tests" / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
EXAMPLE = ROOT / "scenarios" / "from_rtt_example.yaml"
SITE = "imperial"
KEY = "start_list.calibrate_treatment_from_rtt"


# --- expected values straight from the CSV ----------------------------------------------------------------


def _completions(part: str, mapping: dict[str, str], other: str = "other") -> dict[str, int]:
    """`Total All` of a completed-pathways part by specialty (unknown clock starts included: they were treated)."""
    out: dict[str, int] = {}
    with open(REAL, newline="", encoding="utf-8-sig") as fh:
        for r in csv.DictReader(fh):
            code = r["Treatment Function Code"]
            if r["RTT Part Type"] != part or code == "C_999":
                continue
            spec = mapping.get(code.removeprefix("C_"), other)
            out[spec] = out.get(spec, 0) + int(r["Total All"] or 0)
    return out


def _booked_per_session(spec: dict, inpatient_share: float, template: dict, seed: int = 99,
                        n: int = 100_000) -> float:
    """The model's booking rule run case by case: a session takes the next case while booked minutes plus its
    minutes fit session_minutes x utilisation_cap (the first always), adding a turnaround after each case; the
    case that does not fit opens the next session."""
    rng = np.random.default_rng(seed)

    def lognormal(m: dict, size: int) -> np.ndarray:
        sigma = math.sqrt(math.log(1 + m["cv"] ** 2))
        return rng.lognormal(math.log(m["mean"]) - sigma ** 2 / 2, sigma, size)

    inpatient = rng.random(n) < inpatient_share
    minutes = np.where(inpatient, lognormal(spec["theatre_minutes_inpatient"], n),
                       lognormal(spec["theatre_minutes_day_case"], n)).tolist()
    bookable = template["session_minutes"] * template["utilisation_cap"]
    sessions = cases = booked = 0
    used = 0.0
    for m in minutes:
        if booked and used + m > bookable:
            sessions, cases, booked, used = sessions + 1, cases + booked, 0, 0.0
        booked += 1
        used += m + template["turnaround_minutes"]
    return cases / sessions


# --- scenarios --------------------------------------------------------------------------------------------


def _one_site_raw(hubs: bool = False, calibrate: bool = True, weeks: int = 3) -> dict:
    """The shipped example with imperial only: every borough refers there, its list is RBD's; the Charing Cross hub
    (hosted at imperial, open since 2021) kept if `hubs`."""
    raw = copy.deepcopy(load_raw(EXAMPLE))
    raw["start_list"]["rtt_csv"] = str(REAL)
    raw["start_list"]["calibrate_treatment_from_rtt"] = calibrate
    for name in [s for s in raw["sites"] if s != SITE]:
        del raw["sites"][name]
        del raw["staff"]["establishment"][name]
    for borough in raw["boroughs"].values():
        borough["referred_site_shares"] = {SITE: 1.0}
    if hubs:
        raw["surgical_hubs"]["hubs"] = {"charing_cross": raw["surgical_hubs"]["hubs"]["charing_cross"]}
    else:
        raw["surgical_hubs"] = None
    raw["vaccination"] = None
    raw["horizon_weeks"] = weeks
    return raw


def _calibrated(raw: dict) -> BuiltScenario:
    return build_scenario(raw, "one-site.yaml")


def _mapping(raw: dict) -> dict[str, str]:
    return {str(k): v for k, v in raw["start_list"]["specialty_for_treatment_function"].items()}


# --- theatres -------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_sessions_reproduce_the_part_1a_rate():
    raw = _one_site_raw()
    new_raw = _calibrated(raw).raw
    admitted = _completions("Part_1A", _mapping(raw))
    assert sum(admitted.values()) == 1544, f"file check: RBD Part_1A is 1,544, read {sum(admitted.values())}"
    theatres = new_raw["sites"][SITE]["theatres"]
    rules = raw["theatre_rules"]
    keep = (1 - rules["on_the_day_cancellation_rate"]) * (1 - rules["session_cancellation_rate"])
    sessions = sum(theatres["sessions_by_weekday"].values())
    shares = theatres["specialty_session_shares"]
    per_session = {s: _booked_per_session(spec, 1 - spec["day_case_share"], theatres) * keep
                   for s, spec in raw["specialties"].items()}
    expected = {s: sessions * shares[s] * per_session[s] for s in raw["specialties"]}
    target = {s: admitted.get(s, 0) * 12 / 52 for s in raw["specialties"]}
    mean_per_session = sum(shares[s] * per_session[s] for s in shares)
    total, want = sum(expected.values()), sum(target.values())
    # whole sessions: at most half a session's cases either way, plus 1% for the two estimates of packing
    assert abs(total - want) <= 0.5 * mean_per_session + 0.01 * want, \
        f"{sessions} sessions treat about {total:.1f} a week; Part_1A x 12/52 is {want:.1f}"
    for s in target:
        assert abs(expected[s] - target[s]) <= 0.5 / sessions * target[s] + 0.02 * target[s] + 0.01, \
            f"{s}: about {expected[s]:.1f} a week from {sessions} x {shares[s]} sessions; Part_1A x 12/52 is " \
            f"{target[s]:.1f}"
    assert sessions != 265, "the example's 265 sessions must change"


@pytest.mark.unit
def test_weekday_pattern_kept_and_sessions_whole():
    raw = _one_site_raw()
    raw["sites"][SITE]["theatres"]["sessions_by_weekday"] = {"mon": 10, "tue": 10, "wed": 10, "thu": 10, "fri": 10,
                                                             "sat": 5, "sun": 0}
    new_raw = _calibrated(raw).raw
    days = new_raw["sites"][SITE]["theatres"]["sessions_by_weekday"]
    assert all(isinstance(n, int) for n in days.values()), days
    assert days["sun"] == 0, f"a day without sessions keeps none: {days}"
    weekdays = [days[d] for d in ("mon", "tue", "wed", "thu", "fri")]
    assert max(weekdays) - min(weekdays) <= 1 and abs(days["sat"] - sum(days.values()) / 11) <= 1, \
        f"expected the 10:10:10:10:10:5 pattern kept, saw {days}"
    shares = new_raw["sites"][SITE]["theatres"]["specialty_session_shares"]
    assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9), shares


@pytest.mark.unit
def test_hub_open_at_the_start_takes_its_share_first():
    """Charing Cross (ENT, gynaecology, general surgery, urology; hosted at imperial) does part of those
    specialties' operations, so imperial's main theatres need fewer sessions and none of the hub's share."""
    raw_without = _calibrated(_one_site_raw(hubs=False)).raw
    with_hub = _calibrated(_one_site_raw(hubs=True))
    raw_with = with_hub.raw
    rec = with_hub.treatment_calibration[0]
    hub_specs = set(raw_with["surgical_hubs"]["hubs"]["charing_cross"]["theatres"]["specialty_session_shares"])
    assert {s for s, n in rec.hub_cases_per_week.items() if n > 0} == hub_specs, rec.hub_cases_per_week
    admitted = _completions("Part_1A", _mapping(raw_with))
    for s in hub_specs:
        assert 0 < rec.hub_cases_per_week[s] <= admitted[s] * 12 / 52, (s, rec.hub_cases_per_week[s])
    n_without = sum(raw_without["sites"][SITE]["theatres"]["sessions_by_weekday"].values())
    n_with = sum(raw_with["sites"][SITE]["theatres"]["sessions_by_weekday"].values())
    assert n_with < n_without, f"the hub must take sessions off the main theatres: {n_with} vs {n_without}"
    notes = " ".join(with_hub.notes)
    assert "charing_cross" in notes, notes


# --- outpatients ----------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_outpatient_slots_are_completions_grossed_up_for_dnas():
    raw = _one_site_raw()
    new_raw = _calibrated(raw).raw
    mapping = _mapping(raw)
    completed = {s: _completions("Part_1A", mapping).get(s, 0) + _completions("Part_1B", mapping).get(s, 0)
                 for s in raw["specialties"]}
    assert sum(completed.values()) == 1544 + 2925, f"file check: Part_1A + Part_1B = 4,469, read {completed}"
    op = raw["outpatients"]
    per_attendance = (op["virtual_share"] / (1 - op["dna_rate_virtual"])
                      + (1 - op["virtual_share"]) / (1 - op["dna_rate_face_to_face"]))
    slots = new_raw["sites"][SITE]["outpatient_first_slots_per_week"]
    want = sum(completed.values()) * 12 / 52 * per_attendance
    assert abs(sum(slots.values()) - want) <= 0.05 * len(slots) + 1e-9, \
        f"slots a week: expected (1,544 + 2,925) x 12/52 x {per_attendance:.4f} = {want:.1f}, saw {sum(slots.values())}"
    for s, n in completed.items():
        assert abs(slots[s] - n * 12 / 52 * per_attendance) <= 0.05 + 1e-9, (s, slots[s], n)


@pytest.mark.unit
def test_specialty_without_completions_gets_nothing_and_is_named():
    """Map General Internal Medicine (300: 11 waiting, no completions in the month) to cardiology and send
    cardiology's own code (320) to other: cardiology then has patients but no completions."""
    raw = _one_site_raw()
    mapping = raw["start_list"]["specialty_for_treatment_function"]
    del mapping["320"]
    mapping["300"] = "cardiology"
    built = _calibrated(raw)
    site = built.raw["sites"][SITE]
    assert site["outpatient_first_slots_per_week"]["cardiology"] == 0, site["outpatient_first_slots_per_week"]
    assert site["theatres"]["specialty_session_shares"]["cardiology"] == 0, site["theatres"]
    notes = [n for n in built.notes if "no completions" in n]
    assert notes and "cardiology (11 waiting)" in notes[0], built.notes


# --- flag off, notes, resolved scenario ------------------------------------------------------------------------


@pytest.mark.unit
def test_untouched_when_the_flag_is_false():
    raw = _one_site_raw(calibrate=False)
    built = _calibrated(raw)
    assert built.raw == raw, "the plain mapping must not change"
    assert built.scenario.sites == validate(raw, "x.yaml").sites and built.treatment_calibration is None
    assert not [n for n in built.notes if KEY in n]
    scenario = load_scenario(EXAMPLE).scenario
    assert sum(scenario.sites[SITE].theatres.sessions_by_weekday.values()) == 265, "the example leaves it off"


@pytest.mark.unit
def test_notes_name_each_quantity_and_what_it_came_from():
    raw = _one_site_raw()
    before = build_start_list(validate(raw, "x.yaml"), "x.yaml")
    not_applied = [n for n in start_list_notes(before) if KEY in n]
    assert all("NOT applied" in n for n in not_applied), not_applied
    assert len([n for n in not_applied if "admitted_share" not in n]) == 2, not_applied
    built = _calibrated(raw)
    new_raw = built.raw
    notes = [n for n in built.notes if KEY in n]
    sessions = sum(new_raw["sites"][SITE]["theatres"]["sessions_by_weekday"].values())
    slots = sum(new_raw["sites"][SITE]["outpatient_first_slots_per_week"].values())
    theatre = [n for n in notes if f"{SITE} theatres" in n]
    clinic = [n for n in notes if f"{SITE} outpatient first slots" in n]
    assert theatre and f"{sessions} sessions a week (was 265)" in theatre[0] and "1,544" in theatre[0] \
        and "Part_1A" in theatre[0] and "November 2024" in theatre[0], theatre
    assert clinic and f"{slots:,.1f} a week (was 4,113.0)" in clinic[0] and "Part_1B 2,925" in clinic[0], clinic


@pytest.mark.unit
def test_resolved_mapping_carries_the_values_and_reloads_the_same():
    raw = _one_site_raw()
    built = _calibrated(raw)
    new_raw = built.raw
    site = built.scenario.sites[SITE]
    raw_site = new_raw["sites"][SITE]
    assert raw_site["theatres"]["sessions_by_weekday"] == dict(site.theatres.sessions_by_weekday)
    assert raw_site["theatres"]["specialty_session_shares"] == dict(site.theatres.specialty_session_shares)
    assert raw_site["outpatient_first_slots_per_week"] == dict(site.outpatient_first_slots_per_week)
    assert raw["sites"][SITE]["theatres"]["sessions_by_weekday"]["mon"] == 53, "the input mapping is not changed"
    dumped = yaml.safe_load(yaml.safe_dump(new_raw, sort_keys=False))
    again = _calibrated(dumped)                      # the resolved scenario, loaded and calibrated again
    assert again.raw["sites"][SITE] == raw_site, "calibrating the resolved scenario again must change nothing"
    assert again.scenario.sites[SITE] == site


@pytest.mark.integration
def test_run_writes_the_calibrated_scenario(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(EXAMPLE), "--set", "start_list.calibrate_treatment_from_rtt=true", "--set",
                   "horizon_weeks=1", "--replications", "1", "--no-report", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{KEY}: {SITE} theatres" in proc.stderr and f"{KEY}: {SITE} outpatient first slots" in proc.stderr, \
        proc.stderr
    resolved = yaml.safe_load((out / "scenario.yaml").read_text(encoding="utf-8"))
    scenario = load_scenario(EXAMPLE, ["start_list.calibrate_treatment_from_rtt=true"]).scenario
    assert resolved["sites"][SITE]["theatres"]["sessions_by_weekday"] == \
        dict(scenario.sites[SITE].theatres.sessions_by_weekday)
    assert resolved["sites"][SITE]["outpatient_first_slots_per_week"] == \
        dict(scenario.sites[SITE].outpatient_first_slots_per_week)
    assert resolved["sites"]["lnwh"]["theatres"]["sessions_by_weekday"]["mon"] == 72, "other sites keep theirs"


# --- bad data -------------------------------------------------------------------------------------------------


def _without_part(tmp_path: Path, part: str) -> Path:
    with open(REAL, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    path = tmp_path / f"no_{part}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["RTT Part Type"] != part)
    return path


@pytest.mark.unit
@pytest.mark.parametrize("part", ["Part_1A", "Part_1B"])
def test_file_without_completions_is_a_clear_error(tmp_path, part):
    path = _without_part(tmp_path, part)
    raw = _one_site_raw()
    raw["start_list"]["rtt_csv"] = str(path)
    with pytest.raises(ScenarioError) as err:
        build_scenario(raw, "scenario.yaml")
    text = "\n".join(err.value.problems)
    assert str(path) in text and f"no {part}" in text and "RBD" in text and "calibrate_treatment_from_rtt" in text, text
    raw["start_list"]["calibrate_treatment_from_rtt"] = False
    assert build_scenario(raw, "scenario.yaml").scenario.start_list.rtt.total == 21702, \
        "without the flag the file is fine"


@pytest.mark.integration
def test_file_without_part_1a_exits_2_on_the_command_line(tmp_path):
    path = _without_part(tmp_path, "Part_1A")
    raw = _one_site_raw()
    raw["start_list"]["rtt_csv"] = str(path)
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    proc = run_cli("validate", str(scenario_path), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in proc.stderr and "no Part_1A (completed admitted pathways) rows" in proc.stderr, proc.stderr


@pytest.mark.unit
def test_flag_refused_with_bands():
    raw = load_raw(ROOT / "scenarios" / "baseline.yaml")
    raw["start_list"]["calibrate_treatment_from_rtt"] = True
    with pytest.raises(ScenarioError) as err:
        validate(raw, "baseline.yaml")
    assert any("calibrate_treatment_from_rtt: only used with rtt_csv" in p for p in err.value.problems), \
        err.value.problems


# --- the model ------------------------------------------------------------------------------------------------


@pytest.mark.verification
def test_model_treats_at_the_part_1a_rate_while_capacity_binds():
    """Three weeks before Christmas (no bank holidays), one replication, the list long enough that theatres are
    the limit (RBD had 5,322 with a decision to admit, 15 weeks of Part_1A), Charing Cross hub included.

    Tolerance 6%: weekly operations vary by about 2% (sd of a three-week mean over replications, measured 7 a week
    around 351); gastroenterology's admitted list is 3 patients, so its 15 a week cannot all be done, and a few
    hub sessions lose staff (together about -1.5%); 6% is that bias plus two and a half standard deviations.
    """
    raw = _one_site_raw(hubs=True, weeks=3)
    scenario = _calibrated(raw).scenario
    assert scenario.covid is None or not scenario.covid.waves, "no Covid pressure in this test"
    weekly = run_single(scenario, 0).weekly
    want = 1544 * 12 / 52
    seen = float(weekly["clock_stops_admitted"].mean())
    assert abs(seen - want) <= 0.06 * want, \
        f"expected about {want:.1f} operations a week (Part_1A x 12/52), the model did {seen:.1f}"
    assert int(weekly["theatre_slots_lost_no_bed"].sum()) == 0, "beds must not bind in this test"
    before = build_scenario(_one_site_raw(hubs=True, calibrate=False), "x.yaml").scenario
    uncalibrated = float(run_single(before, 0).weekly["clock_stops_admitted"].mean())
    assert uncalibrated > 1.5 * want, f"check: the example's own 265 sessions would do far more ({uncalibrated:.0f})"


@pytest.mark.unit
def test_admitted_share_is_the_files_admitted_share_of_completions():
    """Decisions to treat follow the file: each specialty's admitted_share = Part_1A / (Part_1A + Part_1B), read
    here straight from the CSV; named in the notes and carried by the resolved mapping; untouched without the flag."""
    raw = _one_site_raw()
    admitted = _completions("Part_1A", _mapping(raw))
    non_admitted = _completions("Part_1B", _mapping(raw))
    built = _calibrated(raw)
    scenario, new_raw = built.scenario, built.raw
    notes = [n for n in built.notes if "admitted_share" in n]
    checked = 0
    for spec in scenario.specialties:
        a, b = admitted.get(spec, 0), non_admitted.get(spec, 0)
        if a + b == 0:
            assert scenario.specialties[spec].admitted_share == raw["specialties"][spec]["admitted_share"]
            continue
        expected = a / (a + b)
        assert scenario.specialties[spec].admitted_share == pytest.approx(expected, abs=5e-4), spec
        assert new_raw["specialties"][spec]["admitted_share"] == scenario.specialties[spec].admitted_share
        assert any(f"specialties.{spec}.admitted_share = " in n and f"Part_1A {a:,}" in n for n in notes), notes
        checked += 1
    assert checked >= 5
    overall = sum(admitted.values()) / (sum(admitted.values()) + sum(non_admitted.values()))
    assert 0.3 < overall < 0.4, "RBD, November 2024: about a third of completed pathways were admitted"
    untouched = _calibrated(_one_site_raw(calibrate=False)).scenario
    assert all(untouched.specialties[s].admitted_share == raw["specialties"][s]["admitted_share"]
               for s in raw["specialties"])
