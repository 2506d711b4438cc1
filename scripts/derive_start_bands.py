"""Derive North West London's start-list bands (`start_list.bands`) for a start month from the published series.

Run:  python scripts/derive_start_bands.py [--month 2021-06]               # prints the YAML block
      python scripts/derive_start_bands.py --check scenarios/x.yaml [--month M]  # exit 1 if x's bands differ

How (every count is for North West London; shapes are England's, data/observed/england_monthly.csv):
- Whole list: NWL's waiting list that month [D: data/observed/nwl_monthly.csv, the RTT series with the
  Part_2A double count removed at England's rate].
- Over 52 weeks: the seed's 4,500 [S, seed 004 "around 4,500 patients who have been waiting over a year", June
  2021; the same figure is used for any month, so another month needs its own sourced count], split 52-78, 78-104
  and 104+ in England's proportions that month (England's over_52w - over_78w, over_78w - over_104w, over_104w).
  The 104+ band ends at 130 weeks [E: the RTT series has no top band; 104+ waiters are few].
- Under 52 weeks: the rest, split 0-18 and 18-52 in England's proportions that month (list - over_18w and
  over_18w - over_52w).
- Inside those two bands: England's cumulative distribution of weeks waited taken as piecewise linear through the
  points it publishes (0 at 0 weeks, 50% at the median wait, 1 - over_18w/list at 18 weeks, 92% at the 92nd
  percentile wait, 1 - over_52w/list at 52 weeks; the median and 92nd percentile to one decimal of a week); each
  linear piece is one band, its share of its 0-18 or 18-52
  band being England's share of that band. The model draws waits uniformly inside a band
  (sim.model.start_list), which is exactly that piecewise-linear distribution.
- Admitted (decision-to-admit) share of each band: the plan's estimates by weeks waited [E: 0.12 under 18
  weeks, 0.20 from 18, 0.25 from 30, 0.30 from 44, 0.45 from 52, 0.50 from 78], averaged over the band's weeks
  (no sourced NWL split by band; England's series has no admitted split by weeks waited).
Counts are rounded by largest remainder so that each group adds up exactly.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from sim.core.apportionment import largest_remainder
from sim.scenario.observed import load_observed
from sim.scenario.yaml_files import load_raw

ROOT = Path(__file__).resolve().parent.parent
ENGLAND = ROOT / "data" / "observed" / "england_monthly.csv"
NWL = ROOT / "data" / "observed" / "nwl_monthly.csv"
NWL_OVER_52_WEEKS = 4500                  # [S] seed 004, June 2021
TOP_BAND_END_WEEKS = 130.0                # [E] end of the open 104+ band
# [E] the plan's admitted share by weeks waited: (from_weeks, share), a step function
ADMITTED_SHARE_FROM_WEEKS = ((0.0, 0.12), (18.0, 0.20), (30.0, 0.25), (44.0, 0.30), (52.0, 0.45), (78.0, 0.50))


def read_month(path: Path, month: str) -> dict[str, float]:
    """One month of a tidy monthly series (sim.scenario.observed), blanks as NaN."""
    table = load_observed(path).table
    period = pd.Period(month, freq="M")
    if period not in table.index:
        raise SystemExit(f"{path.name} has no row for {month}")
    return {str(k): float(v) for k, v in table.loc[period].items()}


def admitted_share(from_weeks: float, to_weeks: float) -> float:
    """The step function ADMITTED_SHARE_FROM_WEEKS averaged over [from_weeks, to_weeks], to 2 decimals."""
    starts = [w for w, _ in ADMITTED_SHARE_FROM_WEEKS] + [math.inf]
    weighted = 0.0
    for (start, share), end in zip(ADMITTED_SHARE_FROM_WEEKS, starts[1:], strict=True):
        overlap = min(end, to_weeks) - max(start, from_weeks)
        weighted += max(overlap, 0.0) * share
    return round(weighted / (to_weeks - from_weeks), 2)


def england_cdf_points(england: dict[str, float]) -> list[tuple[float, float]]:
    """(weeks, share of England's list waiting at most that long) for the points England publishes under 52 weeks."""
    total = england["waiting_list"]
    points = {0.0: 0.0, 18.0: 1 - england["over_18w"] / total, 52.0: 1 - england["over_52w"] / total}
    for column, share in (("median_wait_weeks", 0.5), ("p92_wait_weeks", 0.92)):
        weeks = england[column]
        if math.isfinite(weeks) and 0 < weeks < 52 and weeks not in points:
            points[round(weeks, 1)] = share
    ordered = sorted(points.items())
    if any(b[1] <= a[1] for a, b in zip(ordered, ordered[1:], strict=False)):
        raise SystemExit(f"England's published points are not increasing: {ordered}")
    return ordered


def derive_bands(month: str = "2021-06") -> list[dict]:
    """The StartBand mappings for NWL in `month` (see the module docstring)."""
    england, nwl = read_month(ENGLAND, month), read_month(NWL, month)
    total = int(nwl["waiting_list"])
    over_52, over_78, over_104 = (england[c] for c in ("over_52w", "over_78w", "over_104w"))
    long_counts = largest_remainder(NWL_OVER_52_WEEKS, [over_52 - over_78, over_78 - over_104, over_104])
    points = england_cdf_points(england)
    under_52 = total - NWL_OVER_52_WEEKS
    share_at = dict(points)
    group_counts = largest_remainder(under_52, [share_at[18.0], share_at[52.0] - share_at[18.0]])
    bands: list[dict] = []
    for (low, high), count in zip(((0.0, 18.0), (18.0, 52.0)), group_counts, strict=True):
        pieces = [(a, b) for a, b in zip(points, points[1:], strict=False) if low <= a[0] and b[0] <= high]
        counts = largest_remainder(count, [b[1] - a[1] for a, b in pieces])
        bands += [{"from_weeks": a[0], "to_weeks": b[0], "count": n} for (a, b), n in zip(pieces, counts, strict=True)]
    for (low, high), n in zip(((52.0, 78.0), (78.0, 104.0), (104.0, TOP_BAND_END_WEEKS)), long_counts, strict=True):
        bands.append({"from_weeks": low, "to_weeks": high, "count": n})
    for band in bands:
        band["admitted_share"] = admitted_share(band["from_weeks"], band["to_weeks"])
    return bands


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bands_yaml(bands: list[dict], month: str) -> str:
    """The `bands:` block to paste under start_list, with the comment saying where it comes from."""
    lines = [f"  # Derived by scripts/derive_start_bands.py --month {month} (check: --check FILE.yaml):",
             "  # NWL's list that month [D, nwl_monthly.csv]; 4,500 over 52 weeks [S, seed 004] split",
             "  # 52-78/78-104/104+ as England's; the rest split 0-18/18-52 as England's, and inside those in",
             "  # pieces of England's piecewise-linear distribution through its median and 92nd-percentile waits",
             "  # [D, england_monthly.csv]; 104+ ends at 130 weeks [E]; admitted shares are the plan's",
             "  # estimates by weeks waited [E].",
             "  bands:"]
    for b in bands:
        lines.append(f"    - {{from_weeks: {_number(b['from_weeks'])}, to_weeks: {_number(b['to_weeks'])}, "
                     f"count: {b['count']}, admitted_share: {b['admitted_share']}}}")
    return "\n".join(lines) + "\n"


def check(path: Path, month: str) -> int:
    """0 if the scenario's start_list.bands are the derived ones, else 1 (with the differences)."""
    given = (load_raw(path).get("start_list") or {}).get("bands")
    derived = derive_bands(month)
    normalised = [{k: float(b[k]) if k != "count" else int(b[k]) for k in ("from_weeks", "to_weeks", "count",
                                                                             "admitted_share")} for b in given or []]
    expected = [{k: float(v) if k != "count" else int(v) for k, v in b.items()} for b in derived]
    if normalised == expected:
        print(f"{path}: start_list.bands match the bands derived for {month}")
        return 0
    print(f"{path}: start_list.bands differ from those derived for {month}; expected:\n{bands_yaml(derived, month)}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2021-06", help="start month, YYYY-MM (default 2021-06)")
    parser.add_argument("--check", type=Path, metavar="FILE.yaml", help="compare FILE's start_list.bands, exit 1 "
                        "if they differ")
    args = parser.parse_args(argv)
    if args.check is not None:
        return check(args.check, args.month)
    print(bands_yaml(derive_bands(args.month), args.month), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
