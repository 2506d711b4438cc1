"""Building a scenario: the one pipeline from a scenario file to the Scenario a run uses.

The steps, in order (each needs the one before):
1. load_raw            read the file and everything it `extends:` (sim.scenario.yaml_files)
2. apply_overrides     `--set dotted.key=value`
3. embed input files   Covid CSV series into the mapping, rtt_csv made absolute, so the saved scenario stands alone
4. validate            schema and cross-section checks, [low, high] ranges (sim.scenario.validate)
5. RTT start list      read rtt_csv into the start list's counts
6. calibrate           referrals and treatment capacity from the RTT file, when the start list asks for it

`load_scenario` runs them all. Before a run, `check_draws` validates every replication's drawn inputs.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from sim.model.start_list import apply_rtt_calibration, embed_rtt_csv_path
from sim.scenario.intervals import scenario_for_replication
from sim.scenario.schema import Scenario, ScenarioError
from sim.scenario.validate import cross_reference_problems, format_validation_errors, validate
from sim.scenario.yaml_files import apply_overrides, load_raw


def load_scenario(path: Path | str, overrides: list[str] | None = None) -> tuple[Scenario, dict]:
    """Load, inherit, override and validate. Returns the Scenario and the resolved plain mapping."""
    path = Path(path)
    raw = load_raw(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    raw = embed_covid_series(raw, path)
    raw = embed_rtt_csv_path(raw, path)
    scenario = validate(raw, path)
    return apply_rtt_calibration(scenario, raw, source=path)


def embed_covid_series(raw: dict, path: Path) -> dict:
    """Read covid.inpatients_csv (columns date, inpatients; relative to the scenario file) into the scenario,
    so the resolved scenario saved with a run carries the series itself."""
    covid = raw.get("covid")
    if not isinstance(covid, dict) or not covid.get("inpatients_csv"):
        return raw
    csv_path = (path.parent / str(covid["inpatients_csv"])).resolve()
    where = f"{path}: covid.inpatients_csv"
    try:
        frame = pd.read_csv(csv_path)
    except FileNotFoundError:
        raise ScenarioError([f"{where}: file {csv_path} not found"]) from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is reported, not raised
        raise ScenarioError([f"{where}: cannot read {csv_path} ({exc})"]) from None
    missing = {"date", "inpatients"} - set(frame.columns)
    if missing:
        raise ScenarioError([f"{where}: {csv_path} lacks column(s) {', '.join(sorted(missing))}"])
    try:
        dates = pd.to_datetime(frame["date"], format="%Y-%m-%d").dt.date
        values = pd.to_numeric(frame["inpatients"], errors="raise")
    except (ValueError, TypeError) as exc:
        raise ScenarioError([f"{where}: {csv_path}: {exc}"]) from None
    out = copy.deepcopy(raw)
    out["covid"]["inpatients_series"] = [{"date": d, "inpatients": float(v)} for d, v in zip(dates, values)]
    out["covid"]["inpatients_csv"] = str(csv_path)
    return out


def check_draws(scenario: Scenario, seed: int, replications: int | str, source: object = None) -> None:
    """Validate every replication's drawn scenario like a scenario file, before any of them runs; a draw that
    breaks a rule (shares that must add to one, bands in order, a share above 1) is a ScenarioError naming the
    replication, the values drawn and the rule, so nothing is run or written. `replications`: a count, or
    "auto" (every replication up to the cap); `source`: the scenario file, for the message (default: its name)."""
    problems: list[str] = []
    count = scenario.run.max_replications if replications == "auto" else int(replications)
    for r in range(count):
        drawn, values = scenario_for_replication(scenario, seed, r)
        if not values:
            return
        mapping = drawn.model_dump(exclude_unset=True)
        where = (f"{source or scenario.name}: replication {r} drew "
                 + ", ".join(f"{k}={v:g}" for k, v in values.items()) + ";")
        found = cross_reference_problems(mapping)
        try:
            Scenario.model_validate(mapping, context={"source": scenario.name, "raw": mapping})
        except ValidationError as exc:
            found = [line.split(": ", 1)[-1] for line in format_validation_errors(scenario.name, exc)] + found
        problems += [f"{where} {p} (narrow the [low, high] ranges involved)" for p in found]
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
