"""Building a scenario: the one pipeline from a scenario file to the Scenario a run uses.

The steps, in this order (each needs the one before):
1. load_raw            read the file and everything it `extends:` (sim.scenario.yaml_files)
2. apply_overrides     `--set dotted.key=value`
3. embed_input_files   read covid.inpatients_csv into the mapping and make start_list.rtt_csv absolute, so the
                       resolved mapping saved with a run stands alone
4. validate            the schema, checks across sections and [low, high] ranges (sim.scenario.validate); reads
                       no file
5. build_start_list    read start_list.rtt_csv into the start list's counts (sim.scenario.rtt_start_list)
6. calibrate           referrals and treatment capacity from that file, when the start list asks for it
                       (sim.scenario.calibration)
7. check_pathway_limit one replication must stay within the pathways the model can number
                       (sim.scenario.resources); it depends on the scenario alone

`load_scenario` runs all seven. A caller that changes the mapping between the steps (backtest replaces the start
list and the dates) runs `load_scenario_mapping` (1-3), its changes, then `build_scenario` (4-7). Problems in an
RTT file are found at step 5, so they are reported once the scenario's own problems are fixed, not in the same
list.

Before a command runs anything, `check_draws` validates every replication's drawn inputs like a scenario file, and
checks that the replications that will run at once, with those draws, fit in the memory the machine has free now
(once: a check between the scenarios of a command would count memory the finished ones' workers still hold).
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import datetime as dt
import io
import math
import re
from pathlib import Path

from pydantic import ValidationError

from sim.scenario.calibration import (
    SiteCalibration,
    apply_referral_calibration,
    apply_treatment_calibration,
    rtt_referrals_per_week,
    treatment_calibration,
    treatment_calibration_notes,
)
from sim.scenario.input_files import MAX_SERIES_CSV_BYTES, InputFileError, read_text, resolve_path
from sim.scenario.intervals import scenario_for_replication
from sim.scenario.resources import at_most_pathways, check_memory, check_pathway_limit
from sim.scenario.rtt_start_list import RttStartListError, read_rtt_start_list, resolve_rtt_csv
from sim.scenario.schema import Scenario, ScenarioError
from sim.scenario.validate import cross_reference_problems, format_validation_errors, validate
from sim.scenario.yaml_files import apply_overrides, load_raw


@dataclasses.dataclass(frozen=True)
class BuiltScenario:
    """A scenario ready to run, the plain mapping saved with its results, and what building it did."""

    scenario: Scenario
    raw: dict              # the resolved mapping: input files embedded, calibrated values set
    treatment_calibration: tuple[SiteCalibration, ...] | None = None   # per calibrated site, with values before

    @property
    def notes(self) -> list[str]:
        """What the start list read and the calibrations set, one line each (command line and manifest)."""
        return start_list_notes(self.scenario, self.treatment_calibration)


def load_scenario(path: Path | str, overrides: list[str] | None = None) -> BuiltScenario:
    """Every step of the pipeline (module docstring) for one scenario file and its `--set` overrides."""
    return build_scenario(load_scenario_mapping(path, overrides), path)


def load_scenario_mapping(path: Path | str, overrides: list[str] | None = None) -> dict:
    """Steps 1-3: the file merged with what it extends, the overrides applied, its input files embedded."""
    path = Path(path)
    raw = load_raw(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return embed_input_files(raw, path)


def build_scenario(raw: dict, source: Path | str) -> BuiltScenario:
    """Steps 4-7 on a mapping whose input files are embedded: validate, read the RTT start list, calibrate,
    check that one replication stays within the pathways the model can number. `source` names the scenario file
    in messages, and relative paths are read from its folder."""
    scenario = validate(raw, source)
    scenario = build_start_list(scenario, source)
    built = calibrate(scenario, raw, source)
    check_pathway_limit([at_most_pathways(built.scenario)], source)   # the machine's memory: check_draws
    return built


def embed_input_files(raw: dict, path: Path) -> dict:
    """Step 3: the mapping with the input files it names made part of it (`path` is the scenario file)."""
    return _embed_rtt_csv_path(_embed_covid_series(raw, path), path)


_MAX_CSV_PROBLEMS = 20


def _embed_covid_series(raw: dict, path: Path) -> dict:
    """Read covid.inpatients_csv (columns date, inpatients; relative to the scenario file) into the scenario,
    so the resolved scenario saved with a run carries the series itself.

    The file must be a regular UTF-8 CSV file of at most 5 MB (sim.scenario.input_files); each row a real date
    (YYYY-MM-DD) and a finite number of inpatients of at least 0, no date twice. Every problem is one line
    naming the scenario, the key, the file and the row (the header is row 1); the first 20 are reported."""
    covid = raw.get("covid")
    if not isinstance(covid, dict) or not covid.get("inpatients_csv"):
        return raw
    csv_path = resolve_path(path.parent / str(covid["inpatients_csv"]))
    where = f"{path}: covid.inpatients_csv: {csv_path}"
    try:
        text = read_text(csv_path, MAX_SERIES_CSV_BYTES, "a CSV file with columns date, inpatients")
    except InputFileError as exc:
        if exc.reason.startswith("no such file"):
            raise ScenarioError([f"{path}: covid.inpatients_csv: file {csv_path} not found"]) from None
        raise ScenarioError([f"{where}: {exc.reason}"]) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ScenarioError([f"{where}: not a CSV file ({exc})"]) from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ScenarioError([f"{where}: the file is empty; expected a header row date,inpatients"])
    header = [cell.strip() for cell in rows[0]]
    missing = [c for c in ("date", "inpatients") if c not in header]
    if missing:
        raise ScenarioError([f"{where}: row 1: lacks column(s) {', '.join(missing)}; expected a header row "
                             "date,inpatients"])
    twice = sorted({c for c in ("date", "inpatients") if header.count(c) > 1})
    if twice:
        raise ScenarioError([f"{where}: row 1: column(s) given twice: {', '.join(twice)}"])
    date_at, value_at = header.index("date"), header.index("inpatients")
    problems: list[str] = []
    series: list[dict] = []
    first_row_of: dict[dt.date, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"{where}: row {number}: {len(row)} cells, the header has {len(header)}")
            continue
        day = _covid_date(row[date_at].strip(), f"{where}: row {number}, column date", problems)
        value = _covid_inpatients(row[value_at].strip(), f"{where}: row {number}, column inpatients", problems)
        if day is not None and day in first_row_of:
            problems.append(f"{where}: row {number}, column date: {day} is also on row {first_row_of[day]}; "
                            "one row a date")
        elif day is not None:
            first_row_of[day] = number
        if day is not None and value is not None:
            series.append({"date": day, "inpatients": value})
    if not problems and not series:
        problems.append(f"{where}: no rows below the header; expected one row a date")
    if len(problems) > _MAX_CSV_PROBLEMS:
        extra = len(problems) - _MAX_CSV_PROBLEMS
        problems = problems[:_MAX_CSV_PROBLEMS] + [f"{where}: ... and {extra} more problems"]
    if problems:
        raise ScenarioError(problems)
    out = copy.deepcopy(raw)
    out["covid"]["inpatients_series"] = series
    out["covid"]["inpatients_csv"] = str(csv_path)
    return out


def _covid_date(text: str, where: str, problems: list[str]) -> dt.date | None:
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not match:
        problems.append(f"{where}: expected a date as YYYY-MM-DD, got {text!r}")
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        problems.append(f"{where}: impossible date {text!r} ({exc})")
        return None


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def _covid_inpatients(text: str, where: str, problems: list[str]) -> float | None:
    # thousands separators (1,234) are read; any other comma (a decimal comma, 1,5) is refused, not read as 15
    if "," in text and not _THOUSANDS.fullmatch(text.strip()):
        problems.append(f"{where}: expected a number of inpatients with a decimal point, got {text!r}")
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        problems.append(f"{where}: expected a number of inpatients, got {text!r}")
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(f"{where}: expected a finite number of at least 0, got {text!r}")
        return None
    return value


def _embed_rtt_csv_path(raw: dict, path: Path) -> dict:
    """The mapping with start_list.rtt_csv made absolute (read from the scenario file's folder), so the resolved
    scenario saved with a run still finds the file. The file is read at step 5, after validation."""
    start_list = raw.get("start_list")
    if not isinstance(start_list, dict) or not isinstance(start_list.get("rtt_csv"), str):
        return raw
    out = copy.deepcopy(raw)
    out["start_list"]["rtt_csv"] = str(resolve_rtt_csv(start_list["rtt_csv"], path))
    return out


def build_start_list(scenario: Scenario, source: Path | str) -> Scenario:
    """Step 5: the validated scenario with its start list read from rtt_csv (`start_list.rtt`); a `bands` list is
    returned as it is. Problems with the file are a ScenarioError, one line each under start_list."""
    start_list = scenario.start_list
    if start_list.rtt_csv is None:
        return scenario
    try:
        rtt = read_rtt_start_list(
            resolve_rtt_csv(start_list.rtt_csv, source),
            site_trust_codes={name: site.trust_code for name, site in scenario.sites.items()},
            specialty_codes={name: spec.treatment_function_code for name, spec in scenario.specialties.items()},
            provider_sites=start_list.provider_sites, providers=start_list.providers,
            commissioners=start_list.commissioners,
            specialty_for_treatment_function=start_list.specialty_for_treatment_function,
            other_specialty=start_list.other_specialty, open_band_spread_weeks=start_list.open_band_spread_weeks,
            with_completions=start_list.calibrate_treatment_from_rtt)
    except RttStartListError as exc:
        raise ScenarioError([f"{source}: start_list: {line}" for line in exc.problems]) from None
    return scenario.model_copy(update={"start_list": start_list.model_copy(update={"rtt": rtt})})


def calibrate(scenario: Scenario, raw: dict, source: Path | str) -> BuiltScenario:
    """Step 6: what start_list.calibrate_referrals_from_rtt and calibrate_treatment_from_rtt set from the RTT file,
    in the scenario and in its mapping (so the resolved scenario saved with a run carries the values). A scenario
    that asks for neither is returned unchanged."""
    start_list = scenario.start_list
    if start_list.rtt is None:
        return BuiltScenario(scenario, raw)
    _refuse_ranges_on_calibrated_keys(scenario, source)
    if start_list.calibrate_referrals_from_rtt:
        scenario, raw = apply_referral_calibration(scenario, raw)
    records = None
    if start_list.calibrate_treatment_from_rtt:
        records = treatment_calibration(scenario)
        scenario, raw = apply_treatment_calibration(scenario, records, raw)
    return BuiltScenario(scenario, raw, records)


def _refuse_ranges_on_calibrated_keys(scenario: Scenario, source: Path | str) -> None:
    """A [low, high] range is the scenario setting a value, and a calibration sets it from the file: both at
    once would leave the saved scenario and the notes saying one thing and the run doing another."""
    start_list = scenario.start_list
    calibrated: list[tuple[str, str]] = []
    if start_list.calibrate_referrals_from_rtt:
        calibrated.append(("referrals.referrals_per_week", "calibrate_referrals_from_rtt"))
    if start_list.calibrate_treatment_from_rtt and start_list.rtt is not None:
        calibrated.append(("specialties.", "calibrate_treatment_from_rtt"))
        for site in start_list.rtt.calibrated_sites:
            calibrated += [(f"sites.{site}.{k}", "calibrate_treatment_from_rtt")
                           for k in ("theatres.sessions_by_weekday", "theatres.specialty_session_shares",
                                     "outpatient_first_slots_per_week")]
    problems = []
    for p in scenario.parameter_intervals:
        for prefix, flag in calibrated:
            if p.key == prefix or p.key.startswith(prefix + ".") or (prefix == "specialties." and
                                                                     p.key.startswith(prefix)
                                                                     and p.key.endswith(".admitted_share")):
                problems.append(f"{source or scenario.name}: {p.key}: a [low, high] range cannot be combined with "
                                f"start_list.{flag}, which sets this value from the RTT file (give one or the other)")
    if problems:
        raise ScenarioError(problems)


def start_list_notes(scenario: Scenario, treatment_calibration_applied: tuple[SiteCalibration, ...] | None = None
                     ) -> list[str]:
    """What the RTT start list did (file, totals, unmapped treatment functions, unknown clock starts, the
    referral and treatment calibrations): one line each, for the command line and the manifest. Empty for a
    `bands` list. A calibration the scenario asks for but that was not applied to it (a scenario from
    build_start_list, before calibrate) is noted as NOT applied, with what it would set."""
    start_list = scenario.start_list
    rtt = start_list.rtt
    if rtt is None:
        return []
    notes = list(rtt.notes)
    gap = (scenario.start_date - rtt.census_date).days
    if abs(gap) > 7:
        notes.append(f"start_list: the run starts {scenario.start_date} but the file's census is {rtt.census_date} "
                     f"({gap:+d} days): waits are counted as at the start date, so they are {abs(gap) // 7} weeks "
                     f"{'shorter' if gap > 0 else 'longer'} than they would be")
    if start_list.calibrate_referrals_from_rtt:
        share = scenario.referrals.advice_and_guidance_share
        value = rtt_referrals_per_week(rtt, share)
        how = (f"{rtt.clock_starts_in_month:,} clock starts (Part_3) in {rtt.period_label} x 12 / 52, grossed up "
               f"for advice and guidance share {share:g}")
        if scenario.referrals.referrals_per_week == value:
            notes.append(f"start_list.calibrate_referrals_from_rtt: referrals.referrals_per_week = {value:,.1f} "
                         f"({how})")
        else:
            notes.append(f"start_list.calibrate_referrals_from_rtt: NOT applied by this command; the RTT value "
                         f"would be {value:,.1f} ({how}); the run uses {scenario.referrals.referrals_per_week:,.1f}")
    if start_list.calibrate_treatment_from_rtt:
        notes.extend(treatment_calibration_notes(scenario, treatment_calibration_applied))
    return notes


def check_draws(scenario: Scenario, seed: int, replications: int | str, source: object = None,
                workers: int = 1, memory: bool = True) -> None:
    """Validate every replication's drawn scenario like a scenario file, before any of them runs; a draw that
    breaks a rule (shares that must add to one, bands in order, a share above 1) is a ScenarioError naming the
    replication, the values drawn and the rule, so nothing is run or written. Then the memory: the largest
    replication (with its draws), times the replications that run at once (`workers`, at most the count), must
    fit in the memory available (sim.scenario.resources.check_memory); `memory=False` checks only the pathways
    the model can number. `replications`: a count, or "auto" (every replication up to the cap); `source`: the
    scenario file, for the message (default: its name)."""
    problems: list[str] = []
    count = scenario.run.max_replications if replications == "auto" else int(replications)
    runs = [scenario]
    count_moves = any(p.key.startswith("referrals.") for p in scenario.parameter_intervals)
    for r in range(count):
        drawn, values = scenario_for_replication(scenario, seed, r)
        if not values:
            break
        if count_moves:                 # a drawn referral input changes the pathways that replication makes
            runs.append(drawn)
        mapping = drawn.model_dump(exclude_unset=True)
        where = (f"{source or scenario.name}: replication {r} drew "
                 + ", ".join(f"{k}={v:g}" for k, v in values.items()) + ";")
        found = cross_reference_problems(mapping)
        try:
            Scenario.model_validate(mapping)
        except ValidationError as exc:
            found = [line.split(": ", 1)[-1] for line in format_validation_errors(scenario.name, exc)] + found
        problems += [f"{where} {p} (narrow the [low, high] ranges involved)" for p in found]
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    if memory:
        check_memory(runs, source or scenario.name, workers=min(workers, max(count, 1)))
    else:
        check_pathway_limit(runs, source or scenario.name)
