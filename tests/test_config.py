"""Scenario validation: each bad value is reported with its file and key path; good files load."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import BASELINE, ROOT, simple_raw
from sim.scenario import yaml_files
from sim.scenario.build import load_scenario
from sim.scenario.schema import ScenarioError
from sim.scenario.validate import validate
from sim.scenario.yaml_files import load_raw

pytestmark = pytest.mark.unit


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).replace("BASELINE", str(BASELINE)), encoding="utf-8")
    return path


def problems_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return info.value.problems


def test_shipped_baseline_is_valid():
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml").scenario
    assert scenario.name == "baseline" and len(scenario.specialties) >= 8 and len(scenario.sites) == 4
    assert scenario.delivery is not None and scenario.referrals.monthly_multipliers, \
        "the shipped baseline rests on the calibrated core (as_happened_2021_22.yaml)"
    assert not (scenario.covid and scenario.covid.waves), "the baseline has no Covid wave"
    assert sum(b.count for b in scenario.start_list.bands if b.from_weeks >= 52) == 4500, \
        "the default start list must hold the seed's 4,500 patients waiting over a year"


def test_unknown_key_gets_did_you_mean(tmp_path):
    p = write(tmp_path, """
        extends: BASELINE
        bookng_policy: fifo
        """)
    lines = problems_of(p)
    assert any("bookng_policy: unknown key (did you mean 'booking_policy'?)" in x for x in lines), lines
    assert all(str(p) in x for x in lines), "every line names the file"


def test_nested_unknown_key_names_the_full_path(tmp_path):
    p = write(tmp_path, """
        extends: BASELINE
        sites:
          imperial:
            theatres:
              sesion_minutes: 200
        """)
    lines = problems_of(p)
    assert any("sites.imperial.theatres.sesion_minutes: unknown key (did you mean 'session_minutes'?)" in x
               for x in lines), lines


@pytest.mark.parametrize("snippet, expected", [
    ("horizon_weeks: ten", "horizon_weeks: Input should be a valid integer"),
    ("horizon_weeks: 10.5", "horizon_weeks: Input should be a valid integer"),
    ("sites: {imperial: {elective_beds: -5}}",
     "sites.imperial.elective_beds: Input should be greater than or equal to 0"),
    ("sites: {lnwh: {theatres: {sessions_by_weekday: {mon: -3}}}}",
     "sites.lnwh.theatres.sessions_by_weekday.mon: Input should be greater than or equal to 0"),
    ("referrals: {referrals_per_week: -1}", "referrals.referrals_per_week: Input should be greater than or equal to 0"),
    ("boroughs: {brent: {referred_site_shares: {lnwh: 0.5, imperial: 0.2}}}", "must sum to 1"),
    ("specialties: {ent: {priority_mix: {P1: 0.5, P2: 0.6, P3: 0, P4: 0}}}", "specialties.ent.priority_mix"),
    ("start_date: 2021-06-08", "start_date: Value error, must be a Monday"),
    ("booking_policy: random",
     "booking_policy: Input should be 'fifo', 'longest_wait_first' or 'priority_then_longest_wait'"),
    ("boroughs: {brent: {referred_site_shares: {lnwh: 0.8, imperal: 0.2}}}",
     "unknown site 'imperal' (did you mean 'imperial'?)"),
])
def test_bad_values_name_their_key(tmp_path, snippet, expected):
    p = write(tmp_path, "extends: BASELINE\n" + snippet + "\n")
    lines = problems_of(p)
    assert any(expected.replace("Value error, ", "") in x for x in lines), f"expected {expected!r} in {lines}"


def test_impossible_date_is_reported_with_line_and_column(tmp_path):
    p = write(tmp_path, "extends: BASELINE\nstart_date: 2021-02-30\n")
    lines = problems_of(p)
    assert len(lines) == 1 and "line 2, column 13" in lines[0] and "impossible date '2021-02-30'" in lines[0], lines


def test_malformed_yaml_reports_line_and_column(tmp_path):
    p = write(tmp_path, "name: x\nfoo: [1, 2\nbar: 3\n")
    lines = problems_of(p)
    assert len(lines) == 1 and "malformed YAML at line 3, column 4" in lines[0], lines


def test_object_tags_are_refused(tmp_path):
    p = write(tmp_path, '!!python/object/apply:os.system ["echo unsafe"]\n')
    lines = problems_of(p)
    assert "tag not allowed" in lines[0], lines


def test_duplicate_keys_are_refused(tmp_path):
    p = write(tmp_path, "name: a\nname: b\n")
    assert "duplicate key 'name'" in problems_of(p)[0]


def test_every_problem_reported_at_once(tmp_path):
    p = write(tmp_path, """
        extends: BASELINE
        horizon_weeks: -4
        pooling: region
        referrals: {advice_and_guidance_share: 1.5}
        """)
    lines = problems_of(p)
    assert len(lines) == 3, lines


def test_extends_merges_and_overrides(tmp_path):
    p = write(tmp_path, """
        extends: BASELINE
        name: variant
        sites: {imperial: {elective_beds: 140}}
        """)
    scenario = load_scenario(p).scenario
    assert scenario.name == "variant" and scenario.sites["imperial"].elective_beds == 140
    assert scenario.sites["lnwh"].elective_beds == load_scenario(BASELINE).scenario.sites["lnwh"].elective_beds


def test_a_file_read_again_is_parsed_once_and_its_mapping_is_the_callers_own(tmp_path, monkeypatch):
    """`run` loads its scenario twice; the second reading reuses the first parse (yaml_files._PARSED), as a copy: a
    change to one load's mapping is not seen by the next, and a changed file is read afresh."""
    p = write(tmp_path, "extends: BASELINE\nname: variant\nsites: {imperial: {elective_beds: 140}}\n")
    first = load_raw(p)
    first["sites"]["imperial"]["elective_beds"] = 1
    first["sites"]["lnwh"]["theatres"]["sessions_by_weekday"].clear()
    parses = []
    monkeypatch.setattr(yaml_files, "parse_yaml", lambda text, **kw: parses.append(text) or {"name": "never"})
    again = load_raw(p)
    assert parses == [], f"expected the same texts not to be parsed again, saw {len(parses)} parsed"
    assert again["sites"]["imperial"]["elective_beds"] == 140 and again["sites"]["lnwh"]["theatres"][
        "sessions_by_weekday"], "expected the second load unchanged by what the caller did to the first"
    p.write_text(p.read_text(encoding="utf-8").replace("140", "150"), encoding="utf-8")
    assert load_raw(p)["name"] == "never" and len(parses) == 1, "expected a changed file to be parsed again"


def test_circular_extends_is_an_error(tmp_path):
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    assert "circular" in problems_of(tmp_path / "a.yaml")[0]


def test_set_overrides_values_and_rejects_unknown_keys():
    scenario = load_scenario(BASELINE, ["horizon_weeks=52", "sites.imperial.elective_beds=7",
                                        "removals.weekly_rate_by_weeks_waited.0.weekly_rate=0.01"]).scenario
    assert scenario.horizon_weeks == 52 and scenario.sites["imperial"].elective_beds == 7
    assert scenario.removals.weekly_rate_by_weeks_waited[0].weekly_rate == 0.01
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, ["sites.imperial.elective_bedz=3"])
    assert "did you mean 'elective_beds'" in info.value.problems[0]


def test_validation_round_before_the_start_is_an_error():
    raw = simple_raw(horizon_weeks=10)
    raw["removals"]["validation_rounds"] = [{"date": raw["start_date"].replace(year=2020), "min_weeks_waited": 52,
                                             "share_removed": 0.1}]
    with pytest.raises(ScenarioError) as info:
        validate(raw, "x.yaml")
    assert "removals.validation_rounds.0.date" in info.value.problems[0]
