"""Calibration to a published monthly series: which inputs are fitted, to what, and how.

What the data identify, and the input each fits (everything else stays as the scenario says):
- Referral demand: `referrals.referrals_per_week` (the window's level) and `referrals.monthly_multipliers` (each
  month against that level), from published clock starts.
- Delivered treatment capacity, the two stages apart: `delivery.theatre_productivity_scale` and its monthly
  multipliers from admitted completions; `delivery.clinic_slots_scale` and its monthly multipliers from
  non-admitted completions. A series without admitted completions (North West London's) is split with another
  series' admitted share of completions, month by month (England's, `admitted_share_from`), and says so.
- Removals other than treatment: `removals.rate_multiplier`, one factor on the scenario's rates by weeks waited,
  from the window's starts − completions − change in the list as a share of the list (the rate the factor
  scales). A monthly total cannot tell removals at 10 weeks from removals at 60, so the shape by weeks waited stays
  the scenario's.
- Decisions to treat: `referrals.admitted_share_multiplier`, one factor on every specialty's admitted share, from
  the published admitted (decision-to-admit) list when the series has one (`waiting_admitted`): the decisions a
  window needs are its admitted completions plus the change in the admitted list plus what leaves that list
  otherwise, the last as the run has it. Without it the admitted list follows from the completions alone, and
  decisions 10-15% too few drain it (North West London's fell from 28,000 to a few dozen in the model while
  the published one held at about 35,000).
- The opening list: with hand-written bands and published lists on both sides of the start date, the bands under
  52 weeks are scaled so the list on the start date is the published one interpolated by day (the 52+ bands are
  the seed's count and stay). With a published admitted list too, every band's admitted share is scaled so the
  pathways with a decision to admit on the start date are the published admitted list interpolated the same way.

How: multiplicative fixed-point steps. Each step runs the scenario with the same seed and replications (common
random numbers, so a fitted value moves only because an input moved) and multiplies every fitted input by
observed / simulated for the flow it drives: clock starts are proportional to demand, and while the lists are long
completions are proportional to delivered capacity and the share of the list removed to the removal rate, so one
step lands close and three to five settle within the tolerance (TOLERANCE). Months outside the window run at each
profile's level, so held-out months are a prediction: for demand the mean over the fitted months (the scenario's
seasonality and growth then carry it on), for delivered capacity the median of the last three fitted months
(activity was recovering, the latest quarter is the better guide to the next, and a median ignores one month
pushed hard against a wave). A first, partly simulated month is fitted over the days simulated, against the
published figure pro rata.
"""
from __future__ import annotations

import calendar
import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sim.core.apportionment import largest_remainder
from sim.outputs.monthly_fit import flow_between, stock_at
from sim.scenario.observed import ObservedSeries

# the fitted flows, each from the weekly.csv columns that make it
FLOW_COLUMNS = {"clock_starts": ("clock_starts",), "completed_admitted": ("clock_stops_admitted",),
                "completed_non_admitted": ("clock_stops_non_admitted",),
                "other_removals": ("removals_other",),     # validation removals are part of removals_other
                "decisions_to_treat": ("decisions_to_treat",)}
UNDER_52_WEEKS = 52.0
# Delivered capacity after the window runs at the median of its last three months: activity was recovering through
# 2021/22, so the most recent quarter is the better guide to the next (the whole window's mean lags the trend), and
# the median ignores one month the fit had to push hard against a wave.
DELIVERY_LEVEL_MONTHS = 3
# Every fitted flow within 1% of its target: with three replications a month's admitted completions vary by about half
# a percent from run to run, so a tighter target chases noise.
TOLERANCE = 0.01


@dataclass(frozen=True)
class FitTargets:
    """The published figures a calibration fits, over the days the run simulates of each month."""

    months: tuple[pd.Period, ...]                      # fitted months, in order
    covered_share: dict[pd.Period, float]              # share of each month's days the run simulates
    clock_starts: dict[pd.Period, float]               # pro rata for a partly simulated month
    completed_admitted: dict[pd.Period, float]
    completed_non_admitted: dict[pd.Period, float]
    waiting_list: dict[pd.Period, float]               # at the month's end
    other_removals_total: float                        # over `removal_months`
    removal_months: tuple[pd.Period, ...]              # fitted months whose previous list is published
    admitted_share_source: str                         # where the admitted split came from
    opening_list: float | None                         # interpolated to the start date, if both sides published
    waiting_admitted: dict[pd.Period, float] = field(default_factory=dict)   # the admitted list at month-ends
    opening_admitted: float | None = None              # the admitted list on the start date, as opening_list


def fit_targets(observed: ObservedSeries, first_month: pd.Period, start_date: dt.date,
                admitted_share: pd.Series | None, admitted_share_source: str) -> FitTargets:
    """Targets from `observed` (cut to end with the window's last month): every month from `first_month` with a day
    on or after the start date. Months before `first_month` are read only for the list the run starts from and the
    list before the first fitted month.

    `admitted_share`: the admitted share of completions by month, used when `observed` has no completed_admitted.
    ValueError (naming the months) when a month needs a share that is not given."""
    table = observed.table
    first_month = max(first_month, pd.Period(start_date, freq="M"))
    months = tuple(m for m in observed.months if m >= first_month)
    if not months:
        raise ValueError(f"no observed month from {first_month} on (the series ends {observed.months[-1]})")
    covered = {m: _covered_share(m, start_date) for m in months}
    has_admitted = "completed_admitted" in table and table.loc[list(months), "completed_admitted"].notna().all()
    if has_admitted:
        shares = admitted_share_of_completions(observed)
        source = "the observed series' own admitted completions"
    else:
        if admitted_share is None:
            raise ValueError("the observed series has no completed_admitted: give a series to take the admitted "
                             "share of completions from (e.g. data/observed/england_monthly.csv)")
        missing = [str(m) for m in months if m not in admitted_share.index or not np.isfinite(admitted_share[m])]
        if missing:
            raise ValueError(f"no admitted share of completions for {', '.join(missing)} in {admitted_share_source}")
        shares, source = admitted_share, admitted_share_source
    starts = {m: float(table.loc[m, "clock_starts"]) * covered[m] for m in months}
    completed = {m: float(table.loc[m, "completed_pathways"]) * covered[m] for m in months}
    admitted = {m: completed[m] * float(shares[m]) for m in months}
    other = observed.other_removals()
    removal_months = tuple(m for m in months if covered[m] == 1.0 and np.isfinite(other.get(m, np.nan)))
    return FitTargets(
        months=months, covered_share=covered, clock_starts=starts, completed_admitted=admitted,
        completed_non_admitted={m: completed[m] - admitted[m] for m in months},
        waiting_list={m: float(table.loc[m, "waiting_list"]) for m in months if covered[m] == 1.0},
        other_removals_total=float(sum(other[m] for m in removal_months)), removal_months=removal_months,
        admitted_share_source=source, opening_list=_opening_list(observed, start_date),
        waiting_admitted=_published_admitted_list(table, months),
        opening_admitted=(_opening_list(observed, start_date, "waiting_admitted")
                          if "waiting_admitted" in table else None))


def _published_admitted_list(table: pd.DataFrame, months: tuple[pd.Period, ...]) -> dict[pd.Period, float]:
    """The admitted list at the end of each fitted month the run reaches, where the series publishes it."""
    if "waiting_admitted" not in table:
        return {}
    return {m: float(table.loc[m, "waiting_admitted"]) for m in months
            if np.isfinite(table.loc[m, "waiting_admitted"])}


def admitted_share_of_completions(series: ObservedSeries) -> pd.Series:
    """completed_admitted ÷ completed_pathways by month (ValueError if the series has no admitted completions)."""
    if "completed_admitted" not in series.table:
        raise ValueError("has no completed_admitted column to take the admitted share from")
    return series.table["completed_admitted"] / series.table["completed_pathways"]


def _covered_share(month: pd.Period, start_date: dt.date) -> float:
    days = calendar.monthrange(month.year, month.month)[1]
    first = month.start_time.date()
    return 1.0 if start_date <= first else (days - (start_date - first).days) / days


def _opening_list(observed: ObservedSeries, start_date: dt.date, column: str = "waiting_list") -> float | None:
    """The list (or `column`, a stock) on the start date, linear by day between the published month-ends either
    side (None if either is missing). The start date's morning: the end of the day before."""
    day_before = start_date - dt.timedelta(days=1)
    month = pd.Period(day_before, freq="M")
    before, after = month - 1, month
    table = observed.table
    if before not in table.index or after not in table.index:
        return None
    days = calendar.monthrange(after.year, after.month)[1]
    into = day_before.day / days
    value = float(table.loc[before, column] + into * (table.loc[after, column] - table.loc[before, column]))
    return value if np.isfinite(value) else None


@dataclass
class FittedInputs:
    """The inputs a calibration sets, in the scenario's own terms."""

    referrals_per_week: float
    demand_by_month: dict[str, float]
    clinic_slots_scale: float
    clinic_by_month: dict[str, float]
    theatre_productivity_scale: float
    theatre_by_month: dict[str, float]
    removal_rate_multiplier: float
    admitted_share_multiplier: float = 1.0
    start_bands: list[dict] | None = None
    start_bands_scale: float | None = None
    start_admitted_scale: float | None = None            # on every band's admitted share, when the list is published

    @classmethod
    def from_raw(cls, raw: dict, months: tuple[pd.Period, ...]) -> FittedInputs:
        """Start from what the scenario says (monthly multipliers of fitted months default to 1)."""
        referrals = raw.get("referrals", {})
        delivery = raw.get("delivery") or {}
        keys = [str(m) for m in months]

        def monthly(given: dict | None) -> dict[str, float]:
            given = given or {}
            return {k: float(given.get(k, 1.0)) for k in keys}

        return cls(referrals_per_week=float(referrals["referrals_per_week"]),
                   demand_by_month=monthly(referrals.get("monthly_multipliers")),
                   clinic_slots_scale=float(delivery.get("clinic_slots_scale", 1.0)),
                   clinic_by_month=monthly(delivery.get("clinic_monthly_multipliers")),
                   theatre_productivity_scale=float(delivery.get("theatre_productivity_scale", 1.0)),
                   theatre_by_month=monthly(delivery.get("theatre_monthly_multipliers")),
                   removal_rate_multiplier=float(raw.get("removals", {}).get("rate_multiplier", 1.0)),
                   admitted_share_multiplier=float(referrals.get("admitted_share_multiplier", 1.0)))

    def rounded(self) -> FittedInputs:
        """As written to the scenario file: demand to 0.1 a week, factors to 4 decimals."""
        def r4(d: dict[str, float]) -> dict[str, float]:
            return {k: round(v, 4) for k, v in d.items()}
        return replace(self, referrals_per_week=round(self.referrals_per_week, 1),
                       demand_by_month=r4(self.demand_by_month),
                       clinic_slots_scale=round(self.clinic_slots_scale, 4), clinic_by_month=r4(self.clinic_by_month),
                       theatre_productivity_scale=round(self.theatre_productivity_scale, 4),
                       theatre_by_month=r4(self.theatre_by_month),
                       removal_rate_multiplier=round(self.removal_rate_multiplier, 4),
                       admitted_share_multiplier=round(self.admitted_share_multiplier, 4))

    def applied_to(self, raw: dict) -> dict:
        """A copy of the scenario mapping with these inputs set."""
        out = copy.deepcopy(raw)
        out.setdefault("referrals", {})
        out["referrals"]["referrals_per_week"] = self.referrals_per_week
        if self.admitted_share_multiplier != 1.0 or "admitted_share_multiplier" in out["referrals"]:
            out["referrals"]["admitted_share_multiplier"] = self.admitted_share_multiplier
        out["referrals"]["monthly_multipliers"] = {**out["referrals"].get("monthly_multipliers", {}),
                                                   **self.demand_by_month}
        delivery = dict(out.get("delivery") or {})
        delivery["clinic_slots_scale"] = self.clinic_slots_scale
        delivery["theatre_productivity_scale"] = self.theatre_productivity_scale
        delivery["clinic_monthly_multipliers"] = {**delivery.get("clinic_monthly_multipliers", {}),
                                                  **self.clinic_by_month}
        delivery["theatre_monthly_multipliers"] = {**delivery.get("theatre_monthly_multipliers", {}),
                                                   **self.theatre_by_month}
        out["delivery"] = delivery
        out.setdefault("removals", {})["rate_multiplier"] = self.removal_rate_multiplier
        if self.start_bands is not None:
            out["start_list"] = {**out["start_list"], "bands": copy.deepcopy(self.start_bands)}
        return out


def scaled_start_bands(bands: list[dict], opening_list: float) -> tuple[list[dict], float]:
    """Bands whose counts under 52 weeks are scaled (largest remainders, so whole counts) to make the total
    `opening_list`; the bands from 52 weeks on keep their counts. Returns the bands and the scale."""
    fixed = sum(int(b["count"]) for b in bands if float(b["from_weeks"]) >= UNDER_52_WEEKS)
    scalable = [i for i, b in enumerate(bands) if float(b["from_weeks"]) < UNDER_52_WEEKS]
    current = sum(int(bands[i]["count"]) for i in scalable)
    target = round(opening_list) - fixed
    if current <= 0 or target <= 0:
        return copy.deepcopy(bands), 1.0
    whole = largest_remainder(target, [int(bands[i]["count"]) for i in scalable])
    out = copy.deepcopy(bands)
    for i, count in zip(scalable, whole, strict=True):
        out[i]["count"] = count
    return out, target / current


def admitted_start_bands(bands: list[dict], opening_admitted: float) -> tuple[list[dict], float]:
    """Bands whose admitted shares are all scaled (capped at 1, to 4 decimals) so that the expected pathways with a
    decision to admit are `opening_admitted`. Returns the bands and the scale."""
    expected = sum(int(b["count"]) * float(b["admitted_share"]) for b in bands)
    if expected <= 0 or opening_admitted <= 0:
        return copy.deepcopy(bands), 1.0
    scale = opening_admitted / expected
    out = copy.deepcopy(bands)
    for b in out:
        b["admitted_share"] = round(min(1.0, float(b["admitted_share"]) * scale), 4)
    return out, scale


def simulated_for_fit(weekly: pd.DataFrame, start_date: dt.date, targets: FitTargets) -> pd.DataFrame:
    """The fitted series from a run's weekly table, mean over replications: one row per fitted month, flows over
    the days simulated of it, the list at its end."""
    rows = []
    for _, table in weekly.groupby("replication", sort=True):
        table = table.sort_values("week")
        for month in targets.months:
            first = max(month.start_time.date(), start_date)
            last = month.end_time.date()
            row: dict[str, object] = {"month": month}
            for name, columns in FLOW_COLUMNS.items():
                row[name] = flow_between(table[list(columns)].to_numpy(dtype=float).sum(axis=1), start_date, first,
                                         last)
            opening = float(table["waiting_total_start"].iloc[0])
            row["waiting_list"] = stock_at(table["waiting_total"].to_numpy(dtype=float), opening, start_date, last)
            if "waiting_admitted" in table:
                row["waiting_admitted"] = stock_at(table["waiting_admitted"].to_numpy(dtype=float), None,
                                                   start_date, last)
            rows.append(row)
    return pd.DataFrame(rows).groupby("month", sort=True).mean()


@dataclass(frozen=True)
class FlowRatios:
    """observed ÷ simulated for each fitted flow: by month for the three flows, over the removal months' total for
    removals (1.0 where nothing is fitted)."""

    clock_starts: dict[pd.Period, float]
    completed_admitted: dict[pd.Period, float]
    completed_non_admitted: dict[pd.Period, float]
    other_removals: float                  # the rate: removed ÷ list at the months' ends
    decisions_to_treat: float = 1.0        # decisions the published admitted list needs ÷ those simulated

    def worst_error(self) -> float:
        """The largest distance of any ratio from 1."""
        values = [*self.clock_starts.values(), *self.completed_admitted.values(),
                  *self.completed_non_admitted.values(), self.other_removals, self.decisions_to_treat]
        return max(abs(x - 1.0) for x in values)


@dataclass
class FitStep:
    """One simulation of the fit: the inputs it ran with and how far each fitted series was from its target."""

    inputs: FittedInputs
    ratios: FlowRatios
    list_mape_percent: float

    @property
    def worst_ratio_error(self) -> float:
        return self.ratios.worst_error()


def ratios(simulated: pd.DataFrame, targets: FitTargets) -> FlowRatios:
    """observed ÷ simulated for every fitted flow."""
    def by_month(name: str) -> dict[pd.Period, float]:
        seen = getattr(targets, name)
        return {m: _ratio(seen[m], float(simulated.loc[m, name])) for m in targets.months}

    # removals as a rate: removed per pathway on the list at the months' ends. The multiplier scales a hazard, so the
    # rate is what it moves; matching the total instead would let a list a few percent off (flows are matched to
    # TOLERANCE) bias the multiplier by as much.
    removal = 1.0
    if targets.removal_months:
        months = list(targets.removal_months)
        seen_rate = targets.other_removals_total / sum(targets.waiting_list[m] for m in months)
        simulated_rate = (float(simulated.loc[months, "other_removals"].sum())
                          / float(simulated.loc[months, "waiting_list"].sum()))
        removal = _ratio(seen_rate, simulated_rate)
    return FlowRatios(by_month("clock_starts"), by_month("completed_admitted"), by_month("completed_non_admitted"),
                      removal, decisions_needed_ratio(simulated, targets))


def decisions_needed_ratio(simulated: pd.DataFrame, targets: FitTargets) -> float:
    """Decisions to treat the published admitted list needs ÷ those simulated, between the first and last month-ends
    with a published admitted list (1.0 without two). By the admitted list's own stock and flow, decisions =
    admitted completions + the list's change + what leaves it otherwise (removals, validation; as simulated); so the
    decisions needed are the simulated ones corrected by the gaps in completions and in the list's change."""
    published = [m for m in targets.months if m in targets.waiting_admitted]
    if len(published) < 2 or "decisions_to_treat" not in simulated or "waiting_admitted" not in simulated:
        return 1.0
    first, last = published[0], published[-1]
    between = [m for m in targets.months if first < m <= last]
    simulated_decisions = float(simulated.loc[between, "decisions_to_treat"].sum())
    completions_gap = sum(targets.completed_admitted[m] for m in between) - float(
        simulated.loc[between, "completed_admitted"].sum())
    change_gap = ((targets.waiting_admitted[last] - targets.waiting_admitted[first])
                  - float(simulated.loc[last, "waiting_admitted"] - simulated.loc[first, "waiting_admitted"]))
    return _ratio(simulated_decisions + completions_gap + change_gap, simulated_decisions)


def _ratio(observed: float, simulated: float) -> float:
    if simulated <= 0:
        return 1.0 if observed <= 0 else 2.0           # nothing simulated: double the input and look again
    return max(observed, 0.0) / simulated if observed > 0 else 0.5


def stepped(inputs: FittedInputs, r: FlowRatios) -> FittedInputs:
    """The next inputs: each multiplied by its flow's ratio, then each profile's level moved into its scale (the
    mean of all months for demand, the median of the last DELIVERY_LEVEL_MONTHS for delivery)."""
    def profile(scale: float, by_month: dict[str, float], ratio: dict[pd.Period, float],
                level_months: int | None) -> tuple[float, dict[str, float]]:
        moved = {k: v * ratio[pd.Period(k, freq="M")] for k, v in by_month.items()}
        values = list(moved.values())
        level = float(np.median(values[-level_months:]) if level_months else np.mean(values))
        return scale * level, {k: v / level for k, v in moved.items()}

    demand, demand_by_month = profile(inputs.referrals_per_week, inputs.demand_by_month, r.clock_starts, None)
    clinics, clinic_by_month = profile(inputs.clinic_slots_scale, inputs.clinic_by_month, r.completed_non_admitted,
                                       DELIVERY_LEVEL_MONTHS)
    theatres, theatre_by_month = profile(inputs.theatre_productivity_scale, inputs.theatre_by_month,
                                         r.completed_admitted, DELIVERY_LEVEL_MONTHS)
    return replace(inputs, referrals_per_week=demand, demand_by_month=demand_by_month, clinic_slots_scale=clinics,
                   clinic_by_month=clinic_by_month, theatre_productivity_scale=theatres,
                   theatre_by_month=theatre_by_month,
                   removal_rate_multiplier=inputs.removal_rate_multiplier * r.other_removals,
                   admitted_share_multiplier=inputs.admitted_share_multiplier * r.decisions_to_treat)


@dataclass
class FitResult:
    inputs: FittedInputs                  # rounded, as written
    steps: list[FitStep] = field(default_factory=list)
    converged: bool = False


def fit(raw: dict, targets: FitTargets, simulate: Callable[[dict], pd.DataFrame], start_date: dt.date,
        max_steps: int = 6, tolerance: float = TOLERANCE,
        on_step: Callable[[FitStep], None] | None = None) -> FitResult:
    """Fit the inputs of `raw` to `targets`: `simulate(mapping)` runs a scenario mapping and returns its weekly
    table (same seed and replications every time). Stops when every ratio is within `tolerance` of 1, or after
    `max_steps` simulations; the result's inputs are rounded as they will be written."""
    inputs = FittedInputs.from_raw(raw, targets.months)
    bands = raw.get("start_list", {}).get("bands")
    if targets.opening_list is not None and bands:
        inputs.start_bands, inputs.start_bands_scale = scaled_start_bands(bands, targets.opening_list)
        if targets.opening_admitted is not None:
            inputs.start_bands, inputs.start_admitted_scale = admitted_start_bands(inputs.start_bands,
                                                                                  targets.opening_admitted)
    result = FitResult(inputs=inputs.rounded())
    for _ in range(max_steps):
        current = inputs.rounded()
        simulated = simulated_for_fit(simulate(current.applied_to(raw)), start_date, targets)
        r = ratios(simulated, targets)
        listed = [m for m in targets.months if m in targets.waiting_list]
        mape = float(np.mean([abs(simulated.loc[m, "waiting_list"] / targets.waiting_list[m] - 1) * 100
                              for m in listed])) if listed else float("nan")
        step = FitStep(inputs=current, ratios=r, list_mape_percent=mape)
        result.steps.append(step)
        result.inputs = current
        if on_step is not None:
            on_step(step)
        if step.worst_ratio_error <= tolerance:
            result.converged = True
            break
        inputs = stepped(current, r)
    return result


def steps_table(result: FitResult) -> pd.DataFrame:
    """One row per simulation of the fit: the inputs it ran with and its distance from the targets."""
    rows = []
    for k, step in enumerate(result.steps, start=1):
        i = step.inputs
        rows.append({"step": k, "referrals_per_week": i.referrals_per_week,
                     "clinic_slots_scale": i.clinic_slots_scale,
                     "theatre_productivity_scale": i.theatre_productivity_scale,
                     "removal_rate_multiplier": i.removal_rate_multiplier,
                     "admitted_share_multiplier": i.admitted_share_multiplier,
                     "worst_ratio_error_percent": round(step.worst_ratio_error * 100, 3),
                     "waiting_list_mape_percent": round(step.list_mape_percent, 3)})
    return pd.DataFrame(rows)


def scenario_text(result: FitResult, targets: FitTargets, *, extends: str, name: str, title: str,
                  header: list[str]) -> str:
    """The calibrated scenario as YAML text: `extends:` the input, every fitted value with the published figure it
    came from in a comment. Deterministic: the same fit gives the same text."""
    i = result.inputs
    months = list(targets.months)

    def whole_month(values: dict[pd.Period, float], m: pd.Period) -> float:
        return values[m] / targets.covered_share[m]

    def monthly_lines(fitted: dict[str, float], values: dict[pd.Period, float], what: str) -> list[str]:
        out = []
        for m in months:
            part = "" if targets.covered_share[m] == 1.0 else f" (the run has {targets.covered_share[m]:.0%} of it)"
            out.append(f"    {m}: {fitted[str(m)]}   # {whole_month(values, m):,.0f} {what}{part}")
        return out

    def mean_of(values: dict[pd.Period, float]) -> float:
        return float(np.mean([whole_month(values, m) for m in months]))

    span = f"{months[0]} to {months[-1]}"
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"extends: {extends}", f"name: {name}", f"title: {_quoted(title)}", "",
              "referrals:",
              f"  referrals_per_week: {i.referrals_per_week}   # [D] fitted: published clock starts averaged "
              f"{mean_of(targets.clock_starts):,.0f} a month, {span}",
              *_decisions_lines(i, targets),
              "  monthly_multipliers:   # [D] fitted: each month's published clock starts against that level",
              *monthly_lines(i.demand_by_month, targets.clock_starts, "clock starts"),
              "", "delivery:",
              f"  # the admitted share of completions is from {targets.admitted_share_source}",
              f"  clinic_slots_scale: {i.clinic_slots_scale}   # [D] fitted: non-admitted completions "
              f"{mean_of(targets.completed_non_admitted):,.0f} a month",
              f"  theatre_productivity_scale: {i.theatre_productivity_scale}   # [D] fitted: admitted completions "
              f"{mean_of(targets.completed_admitted):,.0f} a month",
              "  clinic_monthly_multipliers:   # [D] fitted: each month's non-admitted completions against the level",
              *monthly_lines(i.clinic_by_month, targets.completed_non_admitted, "non-admitted completions"),
              "  theatre_monthly_multipliers:   # [D] fitted: each month's admitted completions against the level",
              *monthly_lines(i.theatre_by_month, targets.completed_admitted, "admitted completions")]
    removal_months = targets.removal_months
    if removal_months:
        removal_note = (f"published starts - completions - change in the list averaged "
                        f"{targets.other_removals_total / len(removal_months):,.0f} a month, "
                        f"{removal_months[0]} to {removal_months[-1]}")
    else:
        removal_note = "no month with a published list before it, so left as the scenario says"
    lines += ["", "removals:", f"  rate_multiplier: {i.removal_rate_multiplier}   # [D] fitted: {removal_note}"]
    if i.start_bands is not None and targets.opening_list is not None:
        lines += ["", "start_list:",
                  f"  # [D] bands under 52 weeks scaled x{i.start_bands_scale:.4f} so that the list on the start date "
                  f"is {targets.opening_list:,.0f}:",
                  "  # the published month-end lists either side, interpolated by day; the 52+ week bands as given",
                  *([f"  # and every band's admitted share x{i.start_admitted_scale:.4f} so that the admitted list "
                     f"on the start date is {targets.opening_admitted:,.0f}, interpolated the same way"]
                    if i.start_admitted_scale is not None and targets.opening_admitted is not None else []),
                  "  bands:"]
        lines += ["    - {" + ", ".join(f"{k}: {_plain(v)}" for k, v in b.items()) + "}" for b in i.start_bands]
    return "\n".join(lines) + "\n"


def _decisions_lines(inputs: FittedInputs, targets: FitTargets) -> list[str]:
    """The fitted decisions-to-treat factor with the published admitted list it came from (nothing when unfitted)."""
    published = [m for m in targets.months if m in targets.waiting_admitted]
    if len(published) < 2:
        return []
    first, last = published[0], published[-1]
    return [f"  admitted_share_multiplier: {inputs.admitted_share_multiplier}   # [D] fitted: the published admitted "
            f"list {targets.waiting_admitted[first]:,.0f} at the end of {first}, "
            f"{targets.waiting_admitted[last]:,.0f} at the end of {last}"]


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
