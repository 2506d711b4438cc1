"""Solve for the capacity that meets a target: the smallest lever value at which enough replications meet it.

Planners ask the inverse question: not "when does the 52-week backlog clear with these sessions?" but "how many
extra sessions do we need to have nobody over 52 weeks by 31 March 2022, with 80% confidence?". Here:

- A **lever** (LEVERS) is a named way of adding capacity or taking away demand: a number in stated units mapped to
  scenario overrides (dotted keys, exactly what `--set` takes), with a step (the precision the answer is given to)
  and a direction (+1: a larger value is more capacity or less demand). The mappings are in each lever's
  docstring-like `description` and in the functions below.
- A **target** (Target) is a condition on the weekly table at the `--by` date: nobody waiting over N weeks
  (`max_wait_weeks`), the list no larger than X (`list_at_most`), or at least a share within 18 weeks
  (`within_18_weeks`). "At the date" is the end of the last model week ending on or before it, the rule the run's
  target probabilities use (sim.outputs.analysis.target_probabilities); each evaluation runs only that far.
- An **evaluation** builds the scenario with the lever's overrides and runs replications 0..N-1 with the same seed
  every time, so replication r sees the same patients at every lever value (common random numbers): the share of
  replications meeting the target moves only because the lever moved.
- The **search** starts from a fluid estimate (`fluid_estimate`: the lever value at which capacity covers the
  backlog that must go by the date spread over the weeks to it, plus the demand that is booked first), brackets
  the answer by doubling from it, then bisects on the share (monotone in the lever) until the bracket is one step
  wide. Every evaluation is recorded. A larger value that ever gives a lower share (with common random numbers
  any drop is the lever's doing, not noise) is reported as "not monotone"; a target not met even at `max` is
  "not reachable within [min, max]", with the best share reached.
- `steady_state`: the lever value at which the list stops growing, from the scenario's demand, removals and
  capacity (the fluid balance below, no simulation).

The fluid model (`fluid_flows`), per specialty s, in pathways a week averaged over the weeks considered:
  arrivals a_s  = referrals a week x (1 - advice and guidance share) x referral share x the mean of seasonality,
                  growth and the monthly multipliers over those weeks
  removals r_s  = sum over start-list bands of count x specialty share x the band's weekly rate x rate_multiplier
  need_s        = a_s - r_s, what treatment must take off the list for it to stay level
  clinics o_s   = first slots a week x delivered share / slots used per attended appointment
  theatres t_s  = sum over suites of the specialty's whole sessions a week (Webster-apportioned as the model does)
                  x cases a session treats (the model's booking rule, less cancellations) x delivered share
                  x the share of the weeks the suite is open
The list stops growing in s when o_s >= need_s and t_s >= admitted_share_s x min(need_s, o_s). Left out: Covid
waves, staff absence, beds, bank holidays, further outpatient visits, deferrals and the scarce resource; so the
fluid figure starts the search and gives the steady state, and the simulation gives the answer.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from sim.core.apportionment import apportion
from sim.core.nhs_calendar import multipliers_by_day
from sim.experiment.executors import ReplicationExecutor
from sim.experiment.replications import run_replications
from sim.model.delivery import delivered_share_by_day
from sim.model.replication import ReplicationResult
from sim.scenario.build import BuiltScenario, load_scenario
from sim.scenario.calibration import booked_cases_per_session, slots_per_attendance
from sim.scenario.intervals import without_parameter_uncertainty
from sim.scenario.schema import MAX_SESSIONS_PER_DAY, WEEKDAYS, Scenario, ScenarioError, TheatreTemplate

TargetKind = Literal["max_wait_weeks", "list_at_most", "within_18_weeks"]
TARGET_KINDS: tuple[TargetKind, ...] = ("max_wait_weeks", "list_at_most", "within_18_weeks")
MAX_WAIT_THRESHOLDS = (18, 52, 78, 104)          # the weekly table's waiting_over_{N}w columns


# ---------------------------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Target:
    """A condition on the list at the end of the last model week ending on or before `by`."""

    kind: TargetKind
    value: float
    by: dt.date

    def describe(self) -> str:
        when = f"{self.by.day} {self.by:%B %Y}"
        if self.kind == "max_wait_weeks":
            return f"nobody waiting over {self.value:g} weeks by {when}"
        if self.kind == "list_at_most":
            return f"the waiting list at most {self.value:,.0f} by {when}"
        return f"at least {self.value:.0%} waiting under 18 weeks by {when}"

    def holds(self, weekly: pd.DataFrame) -> np.ndarray:
        """Whether the condition holds at the end of each week of one replication's weekly table."""
        if self.kind == "max_wait_weeks":
            return weekly[f"waiting_over_{int(self.value)}w"].to_numpy() == 0
        total = weekly["waiting_total"].to_numpy(dtype=float)
        if self.kind == "list_at_most":
            return total <= self.value
        over = weekly["waiting_over_18w"].to_numpy(dtype=float)
        within = np.where(total > 0, 1 - over / np.where(total > 0, total, 1), 1.0)
        return within >= self.value - 1e-12


def parse_target(text: str, by: dt.date) -> Target:
    """`KIND=VALUE` from --target; a ScenarioError naming the option when it is not one of the kinds."""
    kinds = ", ".join(f"{k}=..." for k in TARGET_KINDS)
    if "=" not in text:
        raise ScenarioError([f"--target {text!r}: expected KIND=VALUE, one of {kinds}"])
    kind, value_text = (part.strip() for part in text.split("=", 1))
    if kind not in TARGET_KINDS:
        raise ScenarioError([f"--target {text!r}: unknown kind {kind!r}; expected one of {kinds}"])
    try:
        value = float(value_text.rstrip("%")) / (100 if value_text.endswith("%") else 1)
    except ValueError:
        raise ScenarioError([f"--target {text!r}: {value_text!r} is not a number"]) from None
    if not math.isfinite(value):
        raise ScenarioError([f"--target {text!r}: {value_text!r} is not a finite number"])
    if kind == "max_wait_weeks" and value not in MAX_WAIT_THRESHOLDS:
        raise ScenarioError([f"--target {text!r}: max_wait_weeks must be one of "
                             f"{', '.join(map(str, MAX_WAIT_THRESHOLDS))} (the weeks the model counts waits over)"])
    if kind == "list_at_most" and value < 0:
        raise ScenarioError([f"--target {text!r}: list_at_most must be 0 or more"])
    if kind == "within_18_weeks" and not 0 < value <= 1:
        raise ScenarioError([f"--target {text!r}: within_18_weeks is a share above 0 and at most 1 (0.92 or 92%)"])
    return Target(kind, value, by)


def target_week(scenario: Scenario, by: dt.date) -> int:
    """The model week whose end is the last on or before `by` (week w ends on start + 7(w + 1) - 1 days); a
    ScenarioError naming --by when no week ends by then."""
    week = ((by - scenario.start_date).days + 1) // 7 - 1
    if week < 0:
        raise ScenarioError([f"--by {by.isoformat()}: before the end of the scenario's first week "
                             f"({(scenario.start_date + dt.timedelta(days=6)).isoformat()}); give a later date"])
    return week


# ---------------------------------------------------------------------------------------------------------------
# Levers
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LeverSetting:
    """What a lever acts on: the scenario (with the user's --set), its mapping, and the optional --site and
    --specialty it is put at."""

    scenario: Scenario
    raw: dict
    site: str | None = None
    specialty: str | None = None


@dataclasses.dataclass(frozen=True)
class Lever:
    """A number in `unit` mapped to scenario overrides (`overrides`); `neutral` leaves the scenario as it is."""

    name: str
    unit: str
    step: float
    direction: int                    # +1: a larger value is more capacity or less demand
    description: str
    neutral: Callable[[LeverSetting], float]
    bounds: Callable[[LeverSetting], tuple[float, float]]    # the default [min, max] of the search
    limits: Callable[[LeverSetting], tuple[float, float]]    # what --min and --max may be
    overrides: Callable[[LeverSetting, float], list[str]]
    check: Callable[[LeverSetting], None]                    # the scenario and --site/--specialty fit the lever
    uses_site: bool = False
    uses_specialty: bool = False

    def grid_value(self, start: float, k: int) -> float:
        """The k-th value of the search grid from `start` in the lever's direction, rounded to its step."""
        digits = max(0, -math.floor(math.log10(self.step))) + 2 if self.step < 1 else 0
        return round(start + self.direction * k * self.step, digits)


def _set(key: str, value: Any) -> str:
    """A dotted override as `--set` takes it (JSON is YAML: numbers, lists, mappings)."""
    if isinstance(value, dt.date):
        return f"{key}={value.isoformat()}"
    return f"{key}={json.dumps(value)}"


def _at(raw: Any, dotted: str) -> Any:
    node = raw
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _plus(value: Any, delta: float) -> Any:
    """A raw value (a number, or a [low, high] range) with `delta` added to each end."""
    if isinstance(value, list):
        return [_plus(v, delta) for v in value]
    total = (value or 0) + delta
    return int(total) if float(total).is_integer() and isinstance(delta, int) else round(float(total), 3)


def _times(value: Any, factor: float, whole: bool = False) -> Any:
    """A raw value (a number, or a [low, high] range) multiplied by `factor`; `whole` rounds up."""
    if isinstance(value, list):
        return [_times(v, factor, whole) for v in value]
    product = (value if value is not None else 1.0) * factor
    return int(math.ceil(product - 1e-9)) if whole else round(float(product), 6)


def _sites_of(setting: LeverSetting, provider: str) -> list[str]:
    return [setting.site] if setting.site else [n for n, s in setting.scenario.sites.items() if s.provider == provider]


def _weekly_sessions(template: TheatreTemplate) -> int:
    return sum(template.sessions_by_weekday.values())


def _specialty_sessions(template: TheatreTemplate, specialties: list[str]) -> list[int]:
    """Sessions a week of each specialty, as the model's timetable apportions them (sim.model.theatres)."""
    return apportion(_weekly_sessions(template), [template.specialty_session_shares.get(s, 0.0) for s in specialties])


def _session_overrides(setting: LeverSetting, extra: float, provider: str) -> list[str]:
    """`extra` whole sessions a week across the provider's sites (or --site), each site getting a share by its
    current sessions (of --specialty, when given; by all its sessions if no site has any of that specialty), by
    Webster's divisor method, which never gives a site fewer when the total grows. At a site, over the weekdays
    it already runs sessions on, by their current number (Monday to Friday if none). With --specialty, the site's
    specialty_session_shares are set to its current sessions by specialty plus the extra ones, over the new
    total, so the specialty gets exactly the extra sessions and every other keeps its own; without it the shares
    stay and the model's apportionment (house-monotone) spreads the new total, so no specialty loses one.
    Staff: the site's theatre staff groups (those with per_theatre_session > 0) grow in proportion to its busiest
    weekday's sessions, rounded up, so the extra sessions come with their teams (finance charges them per planned
    session). Beds are not changed."""
    sc = setting.scenario
    n = int(round(extra))
    if n <= 0:
        return []
    sites = _sites_of(setting, provider)
    specialties = sc.specialty_names
    if setting.specialty:
        idx = specialties.index(setting.specialty)
        weights = [float(_specialty_sessions(sc.sites[s].theatres, specialties)[idx]) for s in sites]
        if sum(weights) == 0:
            weights = [float(_weekly_sessions(sc.sites[s].theatres)) for s in sites]
    else:
        weights = [float(_weekly_sessions(sc.sites[s].theatres)) for s in sites]
    if sum(weights) == 0:
        weights = [1.0] * len(sites)
    out: list[str] = []
    for site, site_extra in zip(sites, apportion(n, weights), strict=True):
        if site_extra == 0:
            continue
        template = sc.sites[site].theatres
        before = [template.sessions_by_weekday.get(d, 0) for d in WEEKDAYS]
        day_weights = [float(x) for x in before] if sum(before) else [1.0] * 5 + [0.0, 0.0]
        added = apportion(site_extra, day_weights)
        base = f"sites.{site}.theatres"
        for day, add in zip(WEEKDAYS, added, strict=True):
            if add:
                out.append(_set(f"{base}.sessions_by_weekday.{day}",
                                _plus(_at(setting.raw, f"{base}.sessions_by_weekday.{day}"), add)))
        if setting.specialty:
            counts = _specialty_sessions(template, specialties)
            counts[specialties.index(setting.specialty)] += site_extra
            total = sum(counts)
            out.append(_set(f"{base}.specialty_session_shares",
                            {s: c / total for s, c in zip(specialties, counts, strict=True) if c}))
        out += _staff_overrides(setting, site, max(before), max(b + a for b, a in zip(before, added, strict=True)))
    return out


def _staff_overrides(setting: LeverSetting, site: str, peak_before: int, peak_after: int) -> list[str]:
    """The site's theatre staff groups scaled by peak_after / peak_before (rounded up); from none, enough people
    for the peak day at the group's sessions per person, grossed up for sickness and the year's average leave."""
    staff = setting.scenario.staff
    if staff is None or site not in staff.establishment or peak_after <= peak_before:
        return []
    out = []
    for group, rules in staff.groups.items():
        if rules.per_theatre_session <= 0:
            continue
        key = f"staff.establishment.{site}.{group}"
        current = _at(setting.raw, key)
        if peak_before > 0 and current:
            new = _times(current, peak_after / peak_before, whole=True)
        else:
            absent = staff.baseline_sickness_rate + float(np.mean(list(staff.annual_leave_rate_by_month.values())))
            new = int(math.ceil(rules.per_theatre_session * peak_after / rules.theatre_sessions_per_day
                                / max(1e-9, 1 - absent)))
        out.append(_set(key, new))
    return out


def _slot_overrides(setting: LeverSetting, extra: float) -> list[str]:
    """`extra` first outpatient slots a week across the NHS sites (or --site) and specialties (or --specialty), in
    proportion to each (site, specialty)'s current slots (by the sites' total slots when none has that specialty;
    evenly when there are none at all)."""
    sc = setting.scenario
    if extra <= 0:
        return []
    sites = _sites_of(setting, "nhs")
    specialties = [setting.specialty] if setting.specialty else sc.specialty_names
    pairs = [(site, s) for site in sites for s in specialties]
    weights = [sc.sites[site].outpatient_first_slots_per_week.get(s, 0.0) for site, s in pairs]
    if sum(weights) == 0 and setting.specialty:
        weights = [sum(sc.sites[site].outpatient_first_slots_per_week.values()) for site, _ in pairs]
    if sum(weights) == 0:
        weights = [1.0] * len(pairs)
    total = sum(weights)
    out = []
    for (site, s), w in zip(pairs, weights, strict=True):
        if w > 0:
            key = f"sites.{site}.outpatient_first_slots_per_week.{s}"
            out.append(_set(key, _plus(_at(setting.raw, key), round(extra * w / total, 3))))
    return out


def _both_stages_overrides(setting: LeverSetting, percent: float) -> list[str]:
    """`percent` more of both stages at the NHS sites (or --site; --specialty): that percent of the current
    sessions a week as extra sessions (rounded to whole sessions, spread as `_session_overrides`) and of the
    current first slots a week as extra slots (spread as `_slot_overrides`). For when neither stage alone is
    enough: more theatres leave the long waiters at the clinics, more clinics fill the admitted list."""
    if percent <= 0:
        return []
    sc = setting.scenario
    specialties = sc.specialty_names
    sessions = 0.0
    slots = 0.0
    for site in _sites_of(setting, "nhs"):
        template = sc.sites[site].theatres
        if setting.specialty:
            sessions += _specialty_sessions(template, specialties)[specialties.index(setting.specialty)]
            slots += sc.sites[site].outpatient_first_slots_per_week.get(setting.specialty, 0.0)
        else:
            sessions += _weekly_sessions(template)
            slots += sum(sc.sites[site].outpatient_first_slots_per_week.values())
    return (_session_overrides(setting, round(sessions * percent / 100), "nhs")
            + _slot_overrides(setting, slots * percent / 100))


def _hubs(setting: LeverSetting) -> dict[str, Any]:
    hubs = setting.scenario.surgical_hubs
    return dict(hubs.hubs) if hubs else {}


def _hub_productivity_overrides(setting: LeverSetting, factor: float) -> list[str]:
    """Every hub's productivity_multiplier (cases a session relative to a main theatre) times `factor`."""
    if factor == 1.0:
        return []
    out = []
    for name in _hubs(setting):
        key = f"surgical_hubs.hubs.{name}.productivity_multiplier"
        out.append(_set(key, _times(_at(setting.raw, key), factor)))
    return out


def _hub_opening_overrides(setting: LeverSetting, weeks: float) -> list[str]:
    """Every hub that opens after the start opens `weeks` weeks earlier, but not before the start date."""
    start = setting.scenario.start_date
    out = []
    for name, hub in _hubs(setting).items():
        if hub.opens > start and weeks > 0:
            out.append(_set(f"surgical_hubs.hubs.{name}.opens",
                            max(start, hub.opens - dt.timedelta(weeks=int(round(weeks))))))
    return out


def _latest_opening_weeks(setting: LeverSetting) -> float:
    start = setting.scenario.start_date
    return float(max([math.ceil((h.opens - start).days / 7) for h in _hubs(setting).values()] + [0]))


def _check_sessions(provider: str, option_hint: str) -> Callable[[LeverSetting], None]:
    def check(setting: LeverSetting) -> None:
        sc = setting.scenario
        kind = "independent-sector" if provider == "independent_sector" else "NHS"
        if setting.site is not None and sc.sites[setting.site].provider != provider:
            raise ScenarioError([f"--site {setting.site}: not an {kind} site (provider: "
                                 f"{sc.sites[setting.site].provider}); {option_hint}"])
        if not _sites_of(setting, provider):
            raise ScenarioError([f"--lever {'independent_sector' if provider != 'nhs' else 'theatre'}_sessions_per_"
                                 f"week: the scenario has no {kind} site (provider: {provider}); {option_hint}"])
    return check


def _check_hubs(setting: LeverSetting) -> None:
    if not _hubs(setting):
        raise ScenarioError(["--lever: the scenario has no surgical hubs (surgical_hubs.hubs); add one or choose "
                             "another lever"])


def _no_check(setting: LeverSetting) -> None:
    return None


def _nhs_sessions_a_week(setting: LeverSetting, provider: str) -> float:
    return float(sum(_weekly_sessions(setting.scenario.sites[s].theatres) for s in _sites_of(setting, provider)))


def _session_limit(setting: LeverSetting, provider: str) -> float:
    return float(len(_sites_of(setting, provider)) * 7 * MAX_SESSIONS_PER_DAY)


def _slots_a_week(setting: LeverSetting) -> float:
    return float(sum(sum(setting.scenario.sites[s].outpatient_first_slots_per_week.values())
                     for s in _sites_of(setting, "nhs")))


LEVERS: dict[str, Lever] = {lever.name: lever for lever in (
    Lever("theatre_sessions_per_week", "extra theatre sessions a week", 1, +1,
          "extra planned theatre sessions a week at the NHS sites (or --site), spread by their current sessions and "
          "over the weekdays they run, for every specialty by its share (or all for --specialty), with their teams",
          neutral=lambda st: 0.0,
          bounds=lambda st: (0.0, max(50.0, _nhs_sessions_a_week(st, "nhs"))),
          limits=lambda st: (0.0, _session_limit(st, "nhs")),
          overrides=lambda st, v: _session_overrides(st, v, "nhs"),
          check=_check_sessions("nhs", "--site names an NHS site of the scenario"), uses_site=True,
          uses_specialty=True),
    Lever("outpatient_first_slots_per_week", "extra first outpatient slots a week", 10, +1,
          "extra first outpatient slots a week at the NHS sites (or --site), spread by their current slots over "
          "sites and specialties (or all to --specialty)",
          neutral=lambda st: 0.0,
          bounds=lambda st: (0.0, max(500.0, _slots_a_week(st))),
          limits=lambda st: (0.0, 1e7),
          overrides=_slot_overrides,
          check=_check_sessions("nhs", "--site names an NHS site of the scenario"), uses_site=True,
          uses_specialty=True),
    Lever("clinic_and_theatre_capacity_percent", "% more clinic slots and theatre sessions", 1, +1,
          "this percent more first outpatient slots and theatre sessions (with their teams) at the NHS sites (or "
          "--site), for every specialty (or --specialty), each spread as its own lever spreads it",
          neutral=lambda st: 0.0,
          bounds=lambda st: (0.0, 100.0),
          limits=lambda st: (0.0, 1000.0),
          overrides=_both_stages_overrides,
          check=_check_sessions("nhs", "--site names an NHS site of the scenario"), uses_site=True,
          uses_specialty=True),
    Lever("independent_sector_sessions_per_week", "extra independent-sector sessions a week", 1, +1,
          "extra theatre sessions a week at the independent-sector sites (or --site), spread as for NHS sessions",
          neutral=lambda st: 0.0,
          bounds=lambda st: (0.0, max(50.0, 4 * _nhs_sessions_a_week(st, "independent_sector"))),
          limits=lambda st: (0.0, _session_limit(st, "independent_sector")),
          overrides=lambda st, v: _session_overrides(st, v, "independent_sector"),
          check=_check_sessions("independent_sector", "add a site with provider: independent_sector (see "
                                "scenarios/extra_capacity.yaml)"), uses_site=True, uses_specialty=True),
    Lever("hub_productivity", "x each surgical hub's productivity", 0.01, +1,
          "every surgical hub's productivity multiplier (cases a session against a main theatre) times this",
          neutral=lambda st: 1.0,
          bounds=lambda st: (1.0, 2.0),
          limits=lambda st: (0.01, 10.0 / max([float(np.max(_times(_at(st.raw, f"surgical_hubs.hubs.{h}."
                                                                             "productivity_multiplier"), 1.0)))
                                                for h in _hubs(st)] + [1.0])),
          overrides=_hub_productivity_overrides, check=_check_hubs),
    Lever("hub_opening_weeks_earlier", "weeks earlier", 1, +1,
          "every surgical hub that opens after the start opens this many weeks earlier (not before the start)",
          neutral=lambda st: 0.0,
          bounds=lambda st: (0.0, _latest_opening_weeks(st)),
          limits=lambda st: (0.0, _latest_opening_weeks(st)),
          overrides=_hub_opening_overrides, check=_check_hubs),
    Lever("advice_and_guidance_share", "share of referral requests diverted by advice and guidance", 0.01, +1,
          "the share of GP referral requests advice and guidance diverts (demand reduction)",
          neutral=lambda st: st.scenario.referrals.advice_and_guidance_share,
          bounds=lambda st: (st.scenario.referrals.advice_and_guidance_share,
                             min(0.95, st.scenario.referrals.advice_and_guidance_share + 0.4)),
          limits=lambda st: (0.0, 1.0),
          overrides=lambda st, v: ([] if v == st.scenario.referrals.advice_and_guidance_share
                                   else [_set("referrals.advice_and_guidance_share", v)]),
          check=_no_check),
)}


# ---------------------------------------------------------------------------------------------------------------
# The problem: a scenario file, a lever, a target; building the scenario at a lever value
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SolveProblem:
    """Everything an evaluation needs. `overrides` are the user's --set; the evaluation runs the scenario to the
    target's week only (horizon_weeks overridden), with `replications` replications from `seed`."""

    path: Path
    overrides: list[str]
    lever: Lever
    target: Target
    confidence: float
    replications: int
    seed: int
    low: float                        # the search's [min, max]
    high: float
    site: str | None = None
    specialty: str | None = None
    fix_parameters: bool = False
    setting: LeverSetting = dataclasses.field(init=False)
    week: int = dataclasses.field(init=False)
    _built: dict[float, BuiltScenario] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        base = load_scenario(self.path, self.overrides)
        self.setting = LeverSetting(base.scenario, base.raw, self.site, self.specialty)
        self.week = target_week(base.scenario, self.target.by)

    @property
    def scenario(self) -> Scenario:
        return self.setting.scenario

    @property
    def neutral(self) -> float:
        return self.lever.neutral(self.setting)

    def lever_overrides(self, value: float) -> list[str]:
        return self.lever.overrides(self.setting, value)

    def built(self, value: float, whole_horizon: bool = False) -> BuiltScenario:
        """The scenario with the lever at `value`: to the target's week (for evaluations), or as the file says
        (`whole_horizon`, the solved scenario written out)."""
        if whole_horizon:
            return load_scenario(self.path, self.overrides + self.lever_overrides(value))
        if value not in self._built:
            sets = self.overrides + self.lever_overrides(value) + [
                f"horizon_weeks={self.week + 1}", f"run.replications={self.replications}", f"run.seed={self.seed}"]
            self._built[value] = load_scenario(self.path, sets)
        return self._built[value]

    def scenario_at(self, value: float) -> Scenario:
        sc = self.built(value).scenario
        return without_parameter_uncertainty(sc) if self.fix_parameters else sc

    @property
    def grid_steps(self) -> int:
        """Steps of the lever's step from the start of the search to its end."""
        return int(math.floor((self.high - self.low) / self.lever.step + 1e-9))

    def grid(self, k: int) -> float:
        start = self.low if self.lever.direction > 0 else self.high
        return self.lever.grid_value(start, k)


# ---------------------------------------------------------------------------------------------------------------
# Evaluations and the search
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Evaluation:
    """One lever value, run: whether each replication met the target and the week from which it held."""

    order: int
    value: float
    met: list[bool]                   # by replication
    kpi_weeks: list[float]            # weeks from the start until the target held to the date; NaN if not at it
    seconds: float
    start_date: dt.date
    weekly: pd.DataFrame = dataclasses.field(repr=False)

    @property
    def share(self) -> float:
        return float(np.mean(self.met)) if self.met else float("nan")

    @property
    def replications(self) -> int:
        return len(self.met)

    @property
    def median_kpi_weeks(self) -> float:
        """Median over replications, a replication whose target did not hold at the date counting as later than
        any (so the median is NaN when half or more did not meet it)."""
        v = np.sort(np.where(np.isnan(self.kpi_weeks), np.inf, self.kpi_weeks))
        if not len(v):
            return float("nan")
        mid = (len(v) - 1) / 2
        lo, hi = v[int(math.floor(mid))], v[int(math.ceil(mid))]
        m = (lo + hi) / 2
        return float(m) if np.isfinite(m) else float("nan")

    @property
    def median_kpi_date(self) -> dt.date | None:
        """The end of the week (a Sunday) from which the target held to the date, in the median replication; the
        start date when it held from the start; None when the median replication did not meet it."""
        w = self.median_kpi_weeks
        if np.isnan(w):
            return None
        weeks = int(math.ceil(w)) - 1
        return self.start_date if weeks < 0 else self.start_date + dt.timedelta(days=7 * weeks + 6)


def kpi_weeks(holds: np.ndarray, week: int) -> float:
    """Weeks from the start until the target held and kept holding to the target's week, counted as clearance
    is (sim.experiment.clearance: holding from the end of week w is w + 1 weeks; 0 if it held at every week's
    end); NaN when it does not hold at the week."""
    h = np.asarray(holds[: week + 1], dtype=bool)
    if not h[week]:
        return float("nan")
    failing = np.flatnonzero(~h)
    return float(failing[-1] + 2) if len(failing) else 0.0


def evaluate(problem: SolveProblem, value: float, executor: ReplicationExecutor | None = None,
             on_done: Callable[[ReplicationResult, int], None] | None = None, order: int = 0) -> Evaluation:
    """Run the scenario with the lever at `value`: replications 0..N-1 from the problem's seed (the same at every
    value: common random numbers)."""
    t0 = time.perf_counter()
    scenario = problem.scenario_at(value)
    result = run_replications(scenario, replications=problem.replications, seed=problem.seed, executor=executor,
                              on_done=on_done)
    met, kpis = [], []
    for _, g in result.weekly.groupby("replication", sort=True):
        holds = problem.target.holds(g.sort_values("week"))
        met.append(bool(holds[problem.week]))
        kpis.append(kpi_weeks(holds, problem.week))
    return Evaluation(order, value, met, kpis, time.perf_counter() - t0, scenario.start_date, result.weekly)


@dataclasses.dataclass
class SolveResult:
    problem: SolveProblem
    evaluations: list[Evaluation]
    answer: float | None              # the smallest value (in the lever's direction) meeting the confidence
    fluid_value: float | None         # where the search started (None: the fluid model cannot place it)
    drops: list[tuple[float, float, float, float]]    # (value, share, larger value, its lower share)

    @property
    def reachable(self) -> bool:
        return self.answer is not None

    @property
    def monotone(self) -> bool:
        return not self.drops

    @property
    def best(self) -> Evaluation:
        return max(self.evaluations, key=lambda e: (e.share, -e.order))

    def evaluation_at(self, value: float) -> Evaluation | None:
        return next((e for e in self.evaluations if e.value == value), None)

    @property
    def starting(self) -> Evaluation:
        """The scenario as given (the lever at its neutral value): always evaluated first."""
        return self.evaluations[0]

    def table(self) -> pd.DataFrame:
        """solve.csv: every evaluation in the order it was run."""
        rows = []
        for e in self.evaluations:
            date = e.median_kpi_date
            rows.append({"evaluation": e.order, "lever": self.problem.lever.name, "value": e.value,
                         "share_meeting_target": round(e.share, 6),
                         "replications_meeting_target": int(sum(e.met)), "replications": e.replications,
                         "meets_confidence": e.share >= self.problem.confidence,
                         "median_kpi_weeks": e.median_kpi_weeks,
                         "median_kpi_date": date.isoformat() if date else "",
                         "answer": self.answer is not None and e.value == self.answer,
                         "seconds": round(e.seconds, 2)})
        return pd.DataFrame(rows)


def monotone_drops(evaluations: list[Evaluation], direction: int) -> list[tuple[float, float, float, float]]:
    """Pairs where more of the lever gave a lower share. With common random numbers every replication sees the
    same patients, so any drop is the lever's doing (through the model), not sampling noise."""
    ordered = sorted(evaluations, key=lambda e: direction * e.value)
    drops = []
    best_so_far: Evaluation | None = None
    for e in ordered:
        if best_so_far is not None and e.share < best_so_far.share:
            drops.append((best_so_far.value, best_so_far.share, e.value, e.share))
        if best_so_far is None or e.share > best_so_far.share:
            best_so_far = e
    return drops


def solve(problem: SolveProblem, executor: ReplicationExecutor | None = None,
          on_done_for: Callable[[str], Callable[[ReplicationResult, int], None] | None] | None = None
          ) -> SolveResult:
    """The smallest lever value (in its direction) at which at least `confidence` of the replications meet the
    target, to the lever's step. Evaluated in this order: the starting scenario (the lever at its neutral value:
    the finance reference), the start of the search range, the fluid estimate, then doubling from it until the
    target is met (the bracket) and bisection on the grid of steps inside it. `on_done_for(label)` gives a
    progress callback for each evaluation."""
    by_value: dict[float, Evaluation] = {}

    def run_value(value: float) -> Evaluation:
        if value not in by_value:
            label = f"[{len(by_value) + 1}] {problem.lever.name}={value:g}"
            by_value[value] = evaluate(problem, value, executor, on_done_for(label) if on_done_for else None,
                                       order=len(by_value) + 1)
        return by_value[value]

    def meets(k: int) -> bool:
        return run_value(problem.grid(k)).share >= problem.confidence - 1e-12

    steps = problem.grid_steps
    fluid = fluid_estimate(problem)
    run_value(problem.neutral)
    answer_k: int | None = 0
    if not meets(0):
        lo, hi = 0, None
        guess = steps if fluid is None else max(1, _grid_index(problem, fluid))
        while True:
            if meets(guess):
                hi = guess
                break
            if guess >= steps:
                break
            lo, guess = guess, min(steps, 2 * guess)
        if hi is not None:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if meets(mid):
                    hi = mid
                else:
                    lo = mid
        answer_k = hi
    done = sorted(by_value.values(), key=lambda e: e.order)
    return SolveResult(problem, done, None if answer_k is None else problem.grid(answer_k), fluid,
                       monotone_drops(done, problem.lever.direction))


def _grid_index(problem: SolveProblem, value: float) -> int:
    """The first grid step at or beyond `value` in the lever's direction, within the search's range."""
    start = problem.low if problem.lever.direction > 0 else problem.high
    k = math.ceil(problem.lever.direction * (value - start) / problem.lever.step - 1e-9)
    return max(0, min(problem.grid_steps, k))


# ---------------------------------------------------------------------------------------------------------------
# The fluid model: the search's starting point and the steady state
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SpecialtyFlows:
    """Pathways a week for one specialty, averaged over the weeks considered (module docstring)."""

    arrivals: float
    removals: float
    admitted_share: float
    clinic_capacity: float            # attended first appointments a week
    theatre_capacity: float           # operations a week

    @property
    def need(self) -> float:
        return self.arrivals - self.removals

    def growth(self, backlog_outpatient: float = 0.0, backlog_admitted: float = 0.0) -> float:
        """Pathways a week that stay on the list beyond what the capacity takes off (0 when it keeps up); a
        backlog (pathways a week that must go as well) is added to what each stage must do."""
        clinic_work = max(0.0, self.need) + backlog_outpatient
        seen = min(clinic_work, self.clinic_capacity)
        theatre_work = self.admitted_share * seen + backlog_admitted
        return max(0.0, clinic_work - self.clinic_capacity) + max(0.0, theatre_work - self.theatre_capacity)


def _start_list_by_specialty(sc: Scenario) -> dict[str, float]:
    shares = sc.start_list.specialty_shares
    if isinstance(shares, dict):
        return {s: float(shares.get(s, 0.0)) for s in sc.specialty_names}
    return {s: spec.referral_share for s, spec in sc.specialties.items()}


def _removal_rate(sc: Scenario, weeks_waited: float) -> float:
    rate = 0.0
    for band in sc.removals.weekly_rate_by_weeks_waited:
        if weeks_waited >= band.from_weeks:
            rate = band.weekly_rate
    return rate * sc.removals.rate_multiplier


def fluid_flows(sc: Scenario, weeks: int, steady: bool = False) -> dict[str, SpecialtyFlows]:
    """Each specialty's flows averaged over the first `weeks` weeks (module docstring), or after every hub has
    opened and at the delivery scale alone (`steady`)."""
    days = max(1, 7 * weeks)
    ref = sc.referrals
    if steady:
        demand_factor = 1.0
    else:
        start = sc.start_date
        months = multipliers_by_day(start, days, ref.monthly_multipliers)
        factors = []
        for d in range(days):
            doy = (start + dt.timedelta(days=d)).timetuple().tm_yday
            season = 1 + ref.seasonality_amplitude * math.cos(2 * math.pi * (doy - ref.seasonality_peak_day_of_year)
                                                               / 365.25)
            factors.append(season * (1 + ref.demand_growth_per_year) ** (d / 365.25) * months[d])
        demand_factor = float(np.mean(factors))
    clock_starts = ref.referrals_per_week * (1 - ref.advice_and_guidance_share) * demand_factor
    bands = sc.start_list.bands or []
    start_shares = _start_list_by_specialty(sc)
    removals_total = sum(b.count * _removal_rate(sc, (b.from_weeks + b.to_weeks) / 2) for b in bands)
    if sc.delivery is None:
        clinic_share = theatre_share = 1.0
    elif steady:
        clinic_share, theatre_share = sc.delivery.clinic_slots_scale, sc.delivery.theatre_productivity_scale
    else:
        clinic_share = float(np.mean(delivered_share_by_day(sc, "clinics")[:days]))
        theatre_share = float(np.mean(delivered_share_by_day(sc, "theatres")[:days]))
    per_slot = slots_per_attendance(sc)
    rules = sc.theatre_rules
    suites: list[tuple[TheatreTemplate, float, float]] = [(site.theatres, 1.0, 1.0) for site in sc.sites.values()]
    for hub in _scenario_hubs(sc):
        open_days = days - min(days, max(0, (hub.opens - sc.start_date).days))
        suites.append((hub.theatres, hub.productivity_multiplier, 1.0 if steady else open_days / days))
    flows = {}
    for i, (name, spec) in enumerate(sc.specialties.items()):
        theatre = 0.0
        for template, productivity, open_share in suites:
            sessions = _specialty_sessions(template, sc.specialty_names)[i]
            if not sessions or not open_share:
                continue
            booked = booked_cases_per_session(
                round(1 - spec.day_case_share, 12),
                (spec.theatre_minutes_day_case.mean, spec.theatre_minutes_day_case.cv),
                (spec.theatre_minutes_inpatient.mean, spec.theatre_minutes_inpatient.cv),
                template.session_minutes * template.utilisation_cap, template.turnaround_minutes,
                productivity * theatre_share)
            theatre += (sessions * booked * (1 - rules.on_the_day_cancellation_rate)
                        * (1 - rules.session_cancellation_rate) * open_share)
        slots = sum(site.outpatient_first_slots_per_week.get(name, 0.0) for site in sc.sites.values())
        flows[name] = SpecialtyFlows(arrivals=clock_starts * spec.referral_share,
                                     removals=removals_total * start_shares[name],
                                     admitted_share=spec.admitted_share,
                                     clinic_capacity=slots * clinic_share / per_slot, theatre_capacity=theatre)
    return flows


def _scenario_hubs(sc: Scenario) -> list[Any]:
    return list(sc.surgical_hubs.hubs.values()) if sc.surgical_hubs else []


def backlog_by_specialty(problem: SolveProblem) -> dict[str, tuple[float, float]]:
    """The pathways (at the outpatient stage, with a decision to admit) that must leave the list by the target's
    date for it to be met, by specialty, from the start list (bands spread evenly over their weeks) and, when the
    date is further off than the threshold, the clock starts of the first weeks.
    - max_wait_weeks N: those whose wait at the date would be over N weeks;
    - within_18_weeks p: those over 18 weeks at the date beyond the (1 - p) share of the start list allowed;
    - list_at_most X: the start list above X, split by specialty like the list."""
    sc, target = problem.scenario, problem.target
    weeks = (problem.week + 1)
    threshold = {"max_wait_weeks": target.value, "within_18_weeks": 18.0}.get(target.kind, 0.0)
    bands = sc.start_list.bands or []
    shares = _start_list_by_specialty(sc)
    total_list = sum(b.count for b in bands)
    outpatient = admitted = 0.0
    cut = threshold - weeks                    # waits at the start above this are over the threshold at the date
    for b in bands:
        if target.kind == "list_at_most":
            part = 1.0
        else:
            part = min(1.0, max(0.0, (b.to_weeks - max(cut, b.from_weeks)) / (b.to_weeks - b.from_weeks)))
        outpatient += b.count * part * (1 - b.admitted_share)
        admitted += b.count * part * b.admitted_share
    flows = fluid_flows(sc, weeks)
    if target.kind != "list_at_most" and cut < 0:
        outpatient += sum(f.arrivals for f in flows.values()) * min(-cut, weeks)
    if target.kind == "list_at_most":
        excess = max(0.0, total_list - target.value)
        scale = excess / total_list if total_list else 0.0
    elif target.kind == "within_18_weeks":
        over = outpatient + admitted
        allowed = (1 - target.value) * total_list
        scale = max(0.0, over - allowed) / over if over else 0.0
    else:
        scale = 1.0
    return {s: (outpatient * scale * shares[s], admitted * scale * shares[s]) for s in sc.specialty_names}


def _fluid_search(problem: SolveProblem, shortfall: Callable[[Scenario], float]) -> float | None:
    """The first grid value (in the lever's direction) whose scenario has no shortfall, by bisection on the grid
    (the fluid shortfall falls as the lever rises); None when even the end of the range falls short."""
    cache: dict[int, float] = {}

    def short(k: int) -> float:
        if k not in cache:
            cache[k] = shortfall(problem.built(problem.grid(k)).scenario)
        return cache[k]

    steps = problem.grid_steps
    if short(steps) > 1e-9:
        return None
    lo, hi = 0, steps
    if short(0) <= 1e-9:
        return problem.grid(0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if short(mid) <= 1e-9:
            hi = mid
        else:
            lo = mid
    return problem.grid(hi)


def fluid_estimate(problem: SolveProblem) -> float | None:
    """The lever value at which, in the fluid model, capacity over the weeks to the date covers the backlog that
    must go by then (spread evenly over those weeks) plus the demand booked ahead of it (all of it: the estimate
    of a list booked by priority, where new urgent referrals go first): "backlog over the threshold / weeks to
    the date + demand - capacity", per specialty in each stage's units. For list_at_most the specialties are
    pooled (a list may fall more in one and less in another). None when it falls short even at the search's end."""
    weeks = problem.week + 1
    backlog = backlog_by_specialty(problem)
    chosen = problem.specialty

    def shortfall(sc: Scenario) -> float:
        flows = fluid_flows(sc, weeks)
        if problem.target.kind == "list_at_most":
            total_backlog = sum(o + a for o, a in backlog.values())
            exits = sum((1 - f.admitted_share) * f.clinic_capacity + f.theatre_capacity for f in flows.values())
            return max(0.0, total_backlog / weeks + sum(f.need for f in flows.values()) - exits)
        total = 0.0
        for s, f in flows.items():
            outpatient, admitted = backlog[s]
            if (chosen and s != chosen) or outpatient + admitted <= 0:
                continue
            total += f.growth(outpatient / weeks, (admitted + f.admitted_share * outpatient) / weeks)
        return total

    return _fluid_search(problem, shortfall)


@dataclasses.dataclass(frozen=True)
class SteadyState:
    value: float | None               # None: not reached within [min, max]
    growth_at_start: float            # pathways a week the list grows by at the starting scenario (fluid)
    growth_at_max: float


def steady_state(problem: SolveProblem) -> SteadyState:
    """The lever value at which the list stops growing in the fluid model at steady state (every hub open,
    delivery at its scale, demand at its start-of-run level without seasonality; removals at the start list's
    size and age): every specialty's (with --specialty, that specialty's) clinics see its net demand and its
    theatres treat the admitted share of those seen. No simulation."""
    if problem.lever.name == "hub_opening_weeks_earlier":
        raise ScenarioError(["--steady-state: hub_opening_weeks_earlier does not change steady-state capacity "
                             "(every hub is open by then); choose another lever"])
    chosen = problem.specialty

    def growth(sc: Scenario) -> float:
        flows = fluid_flows(sc, problem.week + 1, steady=True)
        return sum(f.growth() for s, f in flows.items() if not chosen or s == chosen)

    value = _fluid_search(problem, growth)
    return SteadyState(value, growth(problem.built(problem.neutral).scenario),
                       growth(problem.built(problem.grid(problem.grid_steps)).scenario))
