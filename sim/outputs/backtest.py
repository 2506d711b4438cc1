"""Backtest: start from an observed month's RTT waiting list, simulate forward, compare with later months.

The scenario the backtest runs, and the comparison of its weekly results with the observed months; the command
(`python run_sim.py backtest`, sim.cli.backtest) runs it and writes the folder, and the chart is
sim.outputs.charts.backtest_chart.

Rules (documented here because each is a choice):
- The observed files are ordered by their `Period`; the earliest is the start month. FILE's start_list is used
  with `rtt_csv` replaced by that file (`bands` dropped); its providers, provider_sites (default: each site's
  trust_code), treatment-function mapping, priority mix and the calibrate_*_from_rtt options are kept (so a
  calibration uses the start month's clock starts and completed pathways).
- start_date = the Monday on or after the start month's census date (its last day). The listed waits are as
  counted at the census; the 0-6 days between census and start are not added.
- horizon_weeks: just long enough to reach the last observed census. Validation rounds dated before the start
  are dropped (they could not happen); everything else in FILE is used as written.
- For each later month the simulated value is the weekly snapshot (end of the week, Sunday night) of the week
  that contains the census date.
- Metrics: waiting_total (Part_2, patients with an unknown clock start left out as in the start list),
  waiting_admitted (Part_2A, same rule), waiting_over_{18,52,78,104}w (Part_2 bands with lower bound >= T: NHS
  England's "over T weeks", the same as the model's "waited more than 7T days").
- error = simulated median - observed. MAPE per metric = mean over later months of |median - observed| /
  observed x 100; months where observed is 0 are left out (counted in months_skipped); no usable month = NaN.
"""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim.scenario.build import BuiltScenario, build_scenario, load_scenario_mapping
from sim.scenario.input_files import MAX_RTT_CSV_BYTES, InputFileError, check_regular_file, resolve_path
from sim.scenario.rtt_extract import RttDataError, RttExtract
from sim.scenario.rtt_start_list import load_rtt_cached
from sim.scenario.schema import ScenarioError

METRICS: tuple[str, ...] = ("waiting_total", "waiting_admitted", "waiting_over_18w", "waiting_over_52w",
                            "waiting_over_78w", "waiting_over_104w")
METRIC_TITLES = {"waiting_total": "Waiting list (Part_2)", "waiting_admitted": "Admitted stage (Part_2A)",
                 "waiting_over_18w": "Over 18 weeks", "waiting_over_52w": "Over 52 weeks",
                 "waiting_over_78w": "Over 78 weeks", "waiting_over_104w": "Over 104 weeks"}
BACKTEST_COLUMNS = ["month", "census_date", "week", "metric", "observed", "simulated_median", "simulated_p05",
                    "simulated_p95", "error"]


def monday_on_or_after(day: dt.date) -> dt.date:
    """The backtest's start date for a census date (module rules)."""
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def mape(observed: Sequence[float], simulated: Sequence[float]) -> tuple[float, int, int]:
    """Mean absolute percentage error (in %) of simulated against observed, the months used and those skipped
    because observed is 0 (a percentage of nothing is undefined). NaN when no month is usable."""
    obs, sim = np.asarray(observed, dtype=float), np.asarray(simulated, dtype=float)
    if obs.shape != sim.shape:
        raise ValueError(f"observed and simulated differ in length ({len(obs)} and {len(sim)})")
    use = (obs != 0) & np.isfinite(obs) & np.isfinite(sim)
    skipped = int(len(obs) - use.sum())
    if not use.any():
        return float("nan"), 0, skipped
    return float(np.mean(np.abs(sim[use] - obs[use]) / np.abs(obs[use])) * 100), int(use.sum()), skipped


def observed_metrics(extract: RttExtract) -> dict[str, float]:
    """The backtest metrics as published in one month's file (unknown clock starts left out). Counts above a
    file's open top band (e.g. over 78 weeks in a file that stops at "Gt 52 Weeks") were not published, only
    estimated by spreading the band, so they are NaN here and the month is skipped for that metric."""
    weeks = list(extract.week_columns)
    out: dict[str, float] = {"waiting_total": int(extract.part("Part_2")[weeks].to_numpy().sum()),
                             "waiting_admitted": int(extract.part("Part_2A")[weeks].to_numpy().sum())}
    top = extract.open_band_lower_weeks
    for t in (18, 52, 78, 104):
        published = top is None or t <= top
        out[f"waiting_over_{t}w"] = int(extract.counts_over("Part_2", t)["Total"]) if published else float("nan")
    return out


def later_months(extracts: list[RttExtract], start_date: dt.date) -> list[tuple[str, dt.date, int, dict[str, float]]]:
    """(label, census date, simulated week holding the census, observed metrics) for each month after the first."""
    return [(e.period_label, e.census_date, (e.census_date - start_date).days // 7, observed_metrics(e))
            for e in extracts[1:]]


def compare(weekly: pd.DataFrame, months: list[tuple[str, dt.date, int, dict[str, float]]]) -> pd.DataFrame:
    """Rows of backtest.csv: for each later month (label, census date, week, observed metrics) and metric, the
    observed value beside the simulated median and 5th/95th percentiles over replications at that week."""
    rows = []
    for label, census, week, observed in months:
        at = weekly[weekly["week"] == week]
        if at.empty:
            raise ValueError(f"no simulated week {week} for {label}")
        for metric in METRICS:
            values = at[metric].to_numpy(dtype=float)
            median = float(np.median(values))
            rows.append({"month": label, "census_date": census.isoformat(), "week": week, "metric": metric,
                         "observed": observed[metric], "simulated_median": median,
                         "simulated_p05": float(np.percentile(values, 5)),
                         "simulated_p95": float(np.percentile(values, 95)),
                         "error": median - observed[metric]})
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)


def errors_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of backtest_errors.csv: per metric, the MAPE over later months, months used and skipped, mean error."""
    rows = []
    for metric in METRICS:
        part = table[table["metric"] == metric]
        value, used, skipped = mape(part["observed"], part["simulated_median"])
        rows.append({"metric": metric, "mape_percent": value, "months_used": used, "months_skipped": skipped,
                     "mean_error": float(part["error"].mean()) if len(part) else float("nan")})
    return pd.DataFrame(rows)


def _load_observed(paths: list[Path], providers: Sequence[str] | None, commissioners: Sequence[str] | None,
                   spread: int) -> list[RttExtract]:
    """The observed months' extracts for the start list's providers, earliest first: at least two, one a month."""
    problems: list[str] = []
    extracts = []
    for path in paths:
        path = resolve_path(path.expanduser())
        try:
            check_regular_file(path, MAX_RTT_CSV_BYTES, "an RTT Full CSV file")
        except InputFileError as exc:
            problems.append(f"--observed {path}: {'file not found' if exc.reason == 'no such file' else exc.reason}")
            continue
        try:
            extracts.append(load_rtt_cached(path, providers, commissioners, spread))
        except RttDataError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    extracts.sort(key=lambda e: e.period)
    periods = [e.period_label for e in extracts]
    dupes = sorted({p for p in periods if periods.count(p) > 1})
    if dupes:
        raise ScenarioError([f"--observed: more than one file for {', '.join(dupes)}"])
    if len(extracts) < 2:
        raise ScenarioError(["--observed: give at least two monthly files (the earliest is the start list)"])
    return extracts


def build_backtest_scenario(path: Path, observed: list[Path], overrides: list[str], replications: int | None,
                            seed: int | None) -> tuple[BuiltScenario, list[RttExtract], list[str]]:
    """The scenario a backtest of scenario file `path` runs, the observed months (earliest first) and the notes.
    The scenario pipeline's steps (sim.scenario.build) with the backtest's changes to the mapping between them."""
    raw = load_scenario_mapping(path, overrides)
    raw, extracts, notes = _start_at_first_month(raw, observed, replications, seed)
    built = build_scenario(raw, path)
    return built, extracts, notes + built.notes


def _start_at_first_month(raw: dict, observed: list[Path], replications: int | None, seed: int | None
                          ) -> tuple[dict, list[RttExtract], list[str]]:
    """The scenario mapping changed to start from the earliest observed month and run to the last (module
    rules), the observed months read with the start list's providers, and a note for each change."""
    sl = dict(raw.get("start_list") or {})
    providers = sl.get("providers") or list((sl.get("provider_sites") or {}).keys()) or None
    if providers is None:
        providers = [str(s.get("trust_code")) for s in (raw.get("sites") or {}).values()
                     if isinstance(s, dict) and s.get("trust_code")]
    spread = sl.get("open_band_spread_weeks", 52)
    extracts = _load_observed(observed, providers, sl.get("commissioners"), spread if isinstance(spread, int) else 52)
    first, last = extracts[0], extracts[-1]

    start = monday_on_or_after(first.census_date)
    notes = [f"backtest: start list {first.period_label} ({first.source}); start_date {start.isoformat()} (the "
             f"Monday on or after the census date {first.census_date.isoformat()})"]
    sl["rtt_csv"] = str(Path(first.source).resolve())
    sl["bands"] = None
    for key in ("specialty_shares", "site_shares"):      # bands-only options
        if isinstance(sl.get(key), dict):
            sl[key] = "referral_shares"
            notes.append(f"backtest: start_list.{key} ignored (the RTT file gives specialty and provider)")
    raw = copy.deepcopy(raw)
    raw["start_list"] = sl
    raw["start_date"] = start
    raw["horizon_weeks"] = (last.census_date - start).days // 7 + 1
    rounds = (raw.get("removals") or {}).get("validation_rounds") or []
    kept = [r for r in rounds if not (isinstance(r, dict) and isinstance(r.get("date"), dt.date) and r["date"] < start)]
    if len(kept) != len(rounds):
        raw["removals"]["validation_rounds"] = kept
        notes.append(f"backtest: {len(rounds) - len(kept)} validation round(s) before the start date dropped")
    if replications is not None:
        raw.setdefault("run", {})["replications"] = replications
    if seed is not None:
        raw.setdefault("run", {})["seed"] = seed
    return raw, extracts, notes
