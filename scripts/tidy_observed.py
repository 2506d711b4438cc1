"""Derive the tidy monthly series in data/observed/ from the published files in data/observed/published/.

    .venv/bin/python scripts/tidy_observed.py          # rewrite data/observed/*_monthly.csv
    .venv/bin/python scripts/tidy_observed.py --check  # exit 1 if the shipped files differ from what is derived

North West London (provider basis): waiting_list = the source's `incomplete_estimated`, i.e. its summed list with
the double count of decision-to-admit pathways removed at England's rate (data/observed/README.md);
waiting_admitted = that double count itself, `incomplete_as_summed_by_source - incomplete_estimated`: the
decision-to-admit pathways at England's share of the list; the other columns as published. England (commissioner
basis): completed_pathways = admitted (unadjusted) + non-admitted; a "-" (not yet published) and a 92nd-percentile
wait given only as "52+" (beyond the top band, February and March 2021) become blank cells.
A test checks that the shipped files match this script.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from sim.scenario.observed import ObservedSeries

ROOT = Path(__file__).resolve().parents[1]
OBSERVED = ROOT / "data" / "observed"
PUBLISHED = OBSERVED / "published"
NWL_PUBLISHED = PUBLISHED / "nwl_rtt_monthly_2020-04_to_2022-03.csv"
ENGLAND_PUBLISHED = PUBLISHED / "england_rtt_monthly_2019-04_to_2022-03.csv"
NWL_TIDY = OBSERVED / "nwl_monthly.csv"
ENGLAND_TIDY = OBSERVED / "england_monthly.csv"


def tidy_nwl() -> ObservedSeries:
    raw = pd.read_csv(NWL_PUBLISHED)
    table = pd.DataFrame({
        "clock_starts": raw["clock_starts"], "completed_pathways": raw["completed_pathways"],
        "waiting_list": raw["incomplete_estimated"],
        "waiting_admitted": raw["incomplete_as_summed_by_source"] - raw["incomplete_estimated"]}).astype(float)
    table.index = pd.PeriodIndex(raw["month"], freq="M", name="month")
    return ObservedSeries(str(NWL_PUBLISHED), table)


def tidy_england() -> ObservedSeries:
    # "-": not yet published; "52+": the 92nd percentile was beyond the top band (Feb-Mar 2021), so unknown
    raw = pd.read_csv(ENGLAND_PUBLISHED, na_values=["-", "52+"])
    table = pd.DataFrame({
        "clock_starts": raw["clock_starts"],
        "completed_pathways": raw["completed_admitted"] + raw["completed_non_admitted"],
        "waiting_list": raw["waiting_list"], "completed_admitted": raw["completed_admitted"],
        "over_18w": raw["over_18w"], "over_52w": raw["over_52w"], "over_78w": raw["over_78w"],
        "over_104w": raw["over_104w"], "median_wait_weeks": raw["median_wait_weeks"].round(3),
        "p92_wait_weeks": raw["p92_wait_weeks"].round(3)}).astype(float)
    table.index = pd.PeriodIndex(raw["month"], freq="M", name="month")
    return ObservedSeries(str(ENGLAND_PUBLISHED), table)


def derived_files() -> dict[Path, ObservedSeries]:
    return {NWL_TIDY: tidy_nwl(), ENGLAND_TIDY: tidy_england()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files, change nothing")
    args = parser.parse_args(argv)
    stale = []
    for target, series in derived_files().items():
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / target.name
                series.to_csv(fresh)
                if not target.exists() or fresh.read_bytes() != target.read_bytes():
                    stale.append(target.name)
        else:
            series.to_csv(target)
            print(f"wrote {target.relative_to(ROOT)} ({len(series.months)} months)")
    if stale:
        print(f"out of date: {', '.join(stale)} (run scripts/tidy_observed.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
