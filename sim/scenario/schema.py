"""Scenario files: load YAML safely, resolve `extends:`, apply `--set` overrides, validate into a frozen Scenario.

Every problem is reported as one line naming the file and the dotted key path, so a planner can fix a
scenario without reading a traceback. Validation is strict: unknown keys (with a did-you-mean), wrong
types, negative capacities, shares that do not sum to 1 and impossible dates are all errors.
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

PRIORITIES = ("P1", "P2", "P3", "P4")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHARE_TOLERANCE = 1e-6


class ScenarioError(Exception):
    """A scenario that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# How a number reads, for people (the report's assumptions table, sim.outputs.report.assumptions, and the JSON
# schema): "share" is a fraction (0.25 is a quarter, shown as 25%), "pounds" an amount of money, "multiplier" a
# factor on something else (shown as ×1.2). A field's label is its `title` (else its key, humanised); the labels
# of a choice's values are its `value_labels`.
Unit = Literal["share", "pounds", "multiplier"]


def unit(name: Unit) -> dict[str, str]:
    """json_schema_extra naming a field's unit."""
    return {"unit": name}


def value_labels(**labels: str) -> dict[str, dict[str, str]]:
    """json_schema_extra naming what each value of a choice means, for people."""
    return {"value_labels": labels}


# Value types: bounds stated in the type (not only in a validator) so that a [low, high] range on one entry is
# drawn within them (sim.scenario.intervals reads ge/le from the type).
Share = Annotated[float, Field(ge=0, le=1, json_schema_extra=unit("share"))]
Rate = Annotated[float, Field(json_schema_extra=unit("share"))]       # a fraction whose field states its bounds
Pounds = Annotated[float, Field(json_schema_extra=unit("pounds"))]
Multiplier = Annotated[float, Field(json_schema_extra=unit("multiplier"))]
NonNegativeFloat = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_shares(values: dict[str, float] | list[float], what: str) -> None:
    total = sum(values.values()) if isinstance(values, dict) else sum(values)
    if not math.isclose(total, 1.0, abs_tol=SHARE_TOLERANCE):
        raise ValueError(f"{what} must sum to 1 (they sum to {total:.6g})")


class LogNormalMinutes(_Model):
    """Case duration in minutes: lognormal with this mean and coefficient of variation."""

    mean: float = Field(gt=0)
    cv: float = Field(ge=0, le=3)


class Specialty(_Model):
    """One specialty (NHS treatment function): its share of referrals and its pathway."""

    treatment_function_code: str
    referral_share: Share
    admitted_share: Share = Field(description="share of referrals that end in a decision to treat")
    day_case_share: Share = Field(description="share of admitted cases done as day cases")
    priority_mix: dict[Literal["P1", "P2", "P3", "P4"], Share]
    theatre_minutes_day_case: LogNormalMinutes
    theatre_minutes_inpatient: LogNormalMinutes
    los_days_mean: float = Field(ge=0, description="mean length of stay of an inpatient case (exponential)")

    @field_validator("priority_mix")
    @classmethod
    def _mix_sums_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()):
            raise ValueError("priority shares must not be negative")
        _check_shares(v, "priority shares")
        return v


class TheatreTemplate(_Model):
    """A site's weekly theatre timetable."""

    sessions_by_weekday: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], NonNegativeInt]
    session_minutes: float = Field(gt=0)
    turnaround_minutes: float = Field(ge=0)
    utilisation_cap: Rate = Field(gt=0, le=1, description="share of session minutes that may be booked")
    specialty_session_shares: dict[str, Share]

    @field_validator("sessions_by_weekday")
    @classmethod
    def _non_negative_sessions(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [k for k, n in v.items() if n < 0]
        if bad:
            raise ValueError(f"sessions must not be negative (on {', '.join(bad)})")
        return v

    @field_validator("specialty_session_shares")
    @classmethod
    def _session_shares(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()):
            raise ValueError("session shares must not be negative")
        _check_shares(v, "specialty session shares")
        return v


class Site(_Model):
    """An acute hospital site: beds, theatres and outpatient clinics."""

    trust_code: str
    name: str
    provider: Literal["nhs", "independent_sector"] = "nhs"
    elective_beds: int = Field(ge=0)
    theatres: TheatreTemplate
    outpatient_first_slots_per_week: dict[str, NonNegativeFloat]

    @field_validator("outpatient_first_slots_per_week")
    @classmethod
    def _non_negative_slots(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, n in v.items() if n < 0]
        if bad:
            raise ValueError(f"clinic slots must not be negative (for {', '.join(bad)})")
        return v


class Borough(_Model):
    population: int = Field(ge=0)
    referred_site_shares: dict[str, Share]

    @field_validator("referred_site_shares")
    @classmethod
    def _site_shares(cls, v: dict[str, float]) -> dict[str, float]:
        if any(x < 0 for x in v.values()):
            raise ValueError("site shares must not be negative")
        _check_shares(v, "referred site shares")
        return v


class Referrals(_Model):
    """Referral demand before advice and guidance, and its calendar shape."""

    referrals_per_week: float = Field(ge=0, title="Referrals a week (before advice and guidance)",
                                      description="GP referral requests a week across the ICS, before A&G")
    advice_and_guidance_share: Share = Field(title="Advice and guidance share (diverted)")
    weekday_weights: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], NonNegativeFloat]
    seasonality_amplitude: Rate = Field(ge=0, lt=1, description="relative amplitude of the annual cosine")
    seasonality_peak_day_of_year: int = Field(ge=1, le=366)
    demand_growth_per_year: Rate = Field(gt=-1, title="Demand growth a year")

    @field_validator("weekday_weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(WEEKDAYS):
            raise ValueError(f"give a weight for each of {', '.join(WEEKDAYS)}")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return v


class Outpatients(_Model):
    clinic_weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    virtual_share: Share = Field(title="Virtual outpatient share")
    dna_rate_face_to_face: Rate = Field(ge=0, lt=1, title="Did-not-attend rate, face to face")
    dna_rate_virtual: Rate = Field(ge=0, lt=1, title="Did-not-attend rate, virtual")


class TheatreRules(_Model):
    on_the_day_cancellation_rate: Rate = Field(ge=0, lt=1, title="Cases cancelled on the day",
                                               description="booked case cancelled on the day")
    session_cancellation_rate: Share = Field(title="Whole theatre sessions cancelled",
                                             description="whole session lost (unplanned)")


class RemovalBand(_Model):
    from_weeks: float = Field(ge=0)
    weekly_rate: Share


class ValidationRound(_Model):
    date: dt.date
    min_weeks_waited: float = Field(ge=0)
    share_removed: Share


class Removals(_Model):
    """Removals from the list other than treatment."""

    weekly_rate_by_weeks_waited: list[RemovalBand]
    validation_rounds: list[ValidationRound] = []

    @field_validator("weekly_rate_by_weeks_waited")
    @classmethod
    def _bands(cls, v: list[RemovalBand]) -> list[RemovalBand]:
        if v:
            starts = [b.from_weeks for b in v]
            if starts[0] != 0:
                raise ValueError("the first band must start at from_weeks 0")
            if any(b <= a for a, b in zip(starts, starts[1:])):
                raise ValueError("bands must be in increasing order of from_weeks")
        return v


class StartBand(_Model):
    from_weeks: float = Field(ge=0)
    to_weeks: float = Field(gt=0)
    count: int = Field(ge=0)
    admitted_share: Share = Field(description="share with a decision to admit (Part_2A)")

    @model_validator(mode="after")
    def _ordered(self) -> "StartBand":
        if self.to_weeks <= self.from_weeks:
            raise ValueError("to_weeks must be greater than from_weeks")
        return self


class StartList(_Model):
    """The waiting list on the start date: exactly one of hand-written `bands` or an RTT Full CSV (`rtt_csv`).

    With `rtt_csv` (relative to the scenario file) the list is the file's incomplete pathways (Part_2, Part_2A on
    the admitted list) for `providers` (default: the keys of `provider_sites`), each provider put at a site and
    each treatment function at a specialty (default: the specialties' treatment_function_code; others go to
    `other_specialty`); see sim.model.start_list. `specialty_shares` and `site_shares` apply to `bands` only.
    `calibrate_referrals_from_rtt` takes referrals_per_week from the file's clock starts (Part_3);
    `calibrate_treatment_from_rtt` takes each provider site's theatre sessions and first outpatient slots from its
    completed pathways (Part_1A, Part_1B; see sim.scenario.calibration). Both are applied by
    sim.model.start_list.apply_rtt_calibration, which sim.scenario.schema.load_scenario calls.
    """

    bands: list[StartBand] | None = None
    specialty_shares: dict[str, float] | Literal["referral_shares"] = "referral_shares"
    site_shares: dict[str, float] | Literal["referral_shares"] = "referral_shares"
    priority_mix: dict[Literal["P1", "P2", "P3", "P4"], float] | Literal["specialty"] = "specialty"
    rtt_csv: str | None = None
    providers: list[str] | None = None
    commissioners: list[str] | None = None
    provider_sites: dict[str, str] | None = None
    specialty_for_treatment_function: dict[str, str] | None = None
    other_specialty: str | None = None
    open_band_spread_weeks: int = Field(default=52, ge=1, le=520)
    calibrate_referrals_from_rtt: bool = Field(default=False, title="Referrals a week taken from the RTT file")
    calibrate_treatment_from_rtt: bool = Field(
        default=False, title="Theatre sessions and first outpatient slots taken from the RTT file")

    _rtt: Any = None  # sim.model.start_list.RttStartList, built when validated (private: not part of the scenario)
    _treatment_calibration: Any = None  # sim.scenario.calibration records, set by apply_rtt_calibration (private)

    @field_validator("specialty_shares", "site_shares", "priority_mix")
    @classmethod
    def _shares(cls, v: Any) -> Any:
        if isinstance(v, dict):
            if any(x < 0 for x in v.values()):
                raise ValueError("shares must not be negative")
            _check_shares(v, "shares")
        return v

    @field_validator("specialty_for_treatment_function", "provider_sites", mode="before")
    @classmethod
    def _codes_as_text(cls, v: Any) -> Any:
        return {str(k): x for k, x in v.items()} if isinstance(v, dict) else v  # YAML reads 110: as a number

    @model_validator(mode="after")
    def _one_source(self, info: Any) -> "StartList":
        if (self.bands is None) == (self.rtt_csv is None):
            raise ValueError("give exactly one of bands or rtt_csv" + (
                " (both given: when extending a scenario that has bands, set bands: null)" if self.bands is not None
                else ""))
        rtt_keys = ["providers", "commissioners", "provider_sites", "specialty_for_treatment_function",
                    "other_specialty", "open_band_spread_weeks", "calibrate_referrals_from_rtt",
                    "calibrate_treatment_from_rtt"]
        if self.rtt_csv is None:
            used = [k for k in rtt_keys if k in self.model_fields_set]
            if used:
                raise ValueError(f"{', '.join(used)}: only used with rtt_csv")
            return self
        unused = [k for k in ("specialty_shares", "site_shares") if isinstance(getattr(self, k), dict)]
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used with rtt_csv (the file gives specialty and provider)")
        from sim.model.start_list import build_rtt_start_list  # lazy: a bands scenario never imports the RTT reader
        self._rtt = build_rtt_start_list(self, info.context)
        return self

    @property
    def rtt(self) -> Any:
        """The list read from rtt_csv (sim.model.start_list.RttStartList), or None for a `bands` list."""
        return self._rtt

    @property
    def treatment_calibration(self) -> Any:
        """What calibrate_treatment_from_rtt changed (sim.scenario.calibration.SiteCalibration per site, with the
        values before), once sim.model.start_list.apply_rtt_calibration has applied it; None before."""
        return self._treatment_calibration


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class CovidWave(_Model):
    """One wave of Covid inpatients (ICS-wide): rises from start to peak, falls to the end date."""

    name: str = ""
    start: dt.date
    peak: dt.date
    end: dt.date
    peak_inpatients: float = Field(ge=0)
    shape: Literal["cosine", "triangular"] = "cosine"

    @model_validator(mode="after")
    def _ordered(self) -> "CovidWave":
        if not self.start <= self.peak <= self.end:
            raise ValueError(f"dates must satisfy start <= peak <= end (got {self.start}, {self.peak}, {self.end})")
        return self


class CovidSeriesPoint(_Model):
    date: dt.date
    inpatients: float = Field(ge=0)


class CriticalCare(_Model):
    """Above a critical-care threshold a site's theatres and their staff are redeployed."""

    share_of_covid_inpatients: Share
    closure_threshold_patients_per_site: float = Field(ge=0)
    share_of_sessions_closed: Share


class InfectionControl(_Model):
    """Fewer cases per session while Covid inpatients (ICS-wide) are at or above a threshold."""

    threshold_inpatients: float = Field(ge=0)
    productivity_factor: Multiplier = Field(gt=0, le=1)


class ReferralSuppression(_Model):
    """Referrals fall during a wave; a share of those not made return later as deferred demand."""

    share_suppressed_at_reference: Share
    reference_inpatients: float = Field(gt=0)
    share_returning: Share
    return_delay_weeks_min: float = Field(ge=0)
    return_delay_weeks_max: float = Field(ge=0)


class Covid(_Model):
    """Covid hospital pressure: waves (or a daily series) and their effects on elective care."""

    waves: list[CovidWave] = []
    inpatients_series: list[CovidSeriesPoint] = []
    inpatients_csv: str | None = None
    wave_peak_multiplier: Multiplier = Field(default=1.0, ge=0)
    site_shares: dict[str, Share] | Literal["elective_beds"] = Field(
        default="elective_beds", json_schema_extra=value_labels(elective_beds="in proportion to elective beds"))
    elective_beds_lost_per_covid_inpatient: float = Field(default=0.0, ge=0)
    critical_care: CriticalCare | None = None
    infection_control: InfectionControl | None = None
    referral_suppression: ReferralSuppression | None = None

    @field_validator("site_shares")
    @classmethod
    def _shares(cls, v: Any) -> Any:
        if isinstance(v, dict):
            _check_shares(v, "Covid site shares")
        return v


class SurgicalHub(_Model):
    """A fast-track surgical hub: ring-fenced theatres and beds that Covid pressure does not take."""

    host_site: str
    opens: dt.date
    theatres: TheatreTemplate
    elective_beds: int = Field(ge=0)
    productivity_multiplier: Multiplier = Field(default=1.0, gt=0, description="cases per session relative to a main theatre")
    staff_establishment: dict[str, NonNegativeInt] | None = Field(
        default=None, description="ring-fenced hub teams by staff group; none = the hub draws on its host site's staff")


class SurgicalHubs(_Model):
    inpatient_max_los_days: float = Field(default=2.0, ge=0, title="Longest inpatient stay at a hub (days)",
                                          description="inpatients up to this stay are low complexity")
    hubs: dict[str, SurgicalHub] = {}


class StaffGroup(_Model):
    per_theatre_session: float = Field(default=0.0, ge=0, description="people of this group a session needs")
    theatre_sessions_per_day: float = Field(default=2.0, gt=0, description="sessions one person covers in a day")
    runs_clinics: bool = False
    vaccinates: bool = False


class Fatigue(_Model):
    """Sickness rises after sustained high theatre workload."""

    window_weeks: int = Field(ge=1)
    workload_threshold: Rate = Field(gt=0, le=1)
    extra_sickness_rate: Share


class Staff(_Model):
    groups: dict[str, StaffGroup]
    establishment: dict[str, dict[str, NonNegativeInt]]
    baseline_sickness_rate: Share
    annual_leave_rate_by_month: dict[Literal["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                             "nov", "dec"], Share]
    rostered_absence_rate: Rate = Field(ge=0, lt=1, description="absence clinic rotas already allow for")
    covid_isolation_rate_per_1000_inpatients: Rate = Field(
        default=0.0, ge=0, title="Extra absence per 1,000 COVID-19 inpatients")
    fatigue: Fatigue | None = None

    @field_validator("annual_leave_rate_by_month")
    @classmethod
    def _months(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(MONTHS):
            raise ValueError(f"give a rate for each month: {', '.join(MONTHS)}")
        if any(not 0 <= x <= 1 for x in v.values()):
            raise ValueError("rates must be between 0 and 1")
        return v

    @field_validator("establishment")
    @classmethod
    def _non_negative(cls, v: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        bad = [f"{s}.{g}" for s, groups in v.items() for g, n in groups.items() if n < 0]
        if bad:
            raise ValueError(f"establishment must not be negative ({', '.join(bad)})")
        return v


class VaccinationCentre(_Model):
    kind: Literal["mass_vaccination_site", "hospital_hub", "pcn_site", "pharmacy", "mass_event"] = Field(
        json_schema_extra=value_labels(mass_vaccination_site="mass vaccination site", hospital_hub="hospital hub",
                                       pcn_site="PCN site", pharmacy="pharmacy", mass_event="mass event"))
    borough: str | Literal["all"]
    staffed_from: str | Literal["own"] = "own"
    stations: int = Field(ge=0)
    surge_stations: int = Field(default=0, ge=0, description="extra stations opened during the surge")
    open_minutes_per_day: float = Field(gt=0, le=1440)
    open_weekdays: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    event_dates: list[dt.date] = []
    minutes_per_dose: float = Field(gt=0)
    observation_minutes: float = Field(default=15.0, ge=0)
    observation_bays: int | None = Field(default=None, ge=0, description="chairs for the post-dose wait; none = not binding")
    vaccinators_per_station: float = Field(default=1.0, ge=0)


class VaccinationCohort(_Model):
    borough: str
    age_band: str
    population: int = Field(ge=0)
    eligible_from: dt.date
    uptake_first_dose: Share
    uptake_second_dose: Share
    first_doses_before_start: int = Field(default=0, ge=0)
    second_doses_before_start: int = Field(default=0, ge=0)


class VaccinationSurge(_Model):
    start: dt.date
    weeks: int = Field(ge=1)
    target_doses_per_week: float = Field(ge=0)
    redeploy_from: list[str] = []
    max_share_redeployed: Share = 0.0
    booking_rate_per_day: Rate | None = Field(default=None, gt=0, le=1,
                                              description="booking rate while the surge campaign runs")


class Vaccination(_Model):
    centres: dict[str, VaccinationCentre]
    cohorts: list[VaccinationCohort]
    min_dose_interval_days: int = Field(ge=0)
    booking_rate_per_day: Rate = Field(gt=0, le=1, description="share of those willing and due who book each day")
    did_not_attend_rate: Rate = Field(ge=0, lt=1)
    report_queue_waits: bool = Field(default=False, description="Erlang C wait at each centre-day (M/M/c)")
    surge: VaccinationSurge | None = None


class Targets(_Model):
    """Dates a board wants to know the chance of meeting (nobody waiting over N weeks by then)."""

    no_52w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 52 weeks by")
    no_78w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 78 weeks by")
    no_104w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 104 weeks by")


class FinanceCosts(_Model):
    """Costs in pounds (one price year). Theatre staff are paid for every planned session, run or lost."""

    outpatient_first_face_to_face: Pounds = Field(ge=0)
    outpatient_first_virtual: Pounds = Field(ge=0)
    day_case_non_theatre: Pounds = Field(ge=0, description="per day case, beyond the session costs")
    inpatient_non_theatre: Pounds = Field(ge=0, description="per elective inpatient, beyond session and bed-day costs")
    elective_bed_day: Pounds = Field(ge=0)
    theatre_session_fixed: Pounds = Field(ge=0, description="estate, equipment and consumables of a session run")
    theatre_session_staff: Pounds = Field(ge=0, description="the team for one planned session (paid if lost too)")
    premium_rate_weekend_sessions: Rate = Field(default=0.0, ge=0, title="Weekend session staff premium",
                                                description="extra share on Saturday/Sunday session staff cost (waiting-list initiatives)")
    independent_sector_per_case: Pounds = Field(ge=0)
    vaccination_per_dose: Pounds = Field(ge=0)
    vaccination_per_station_hour: Pounds = Field(ge=0)


class FinanceTariff(_Model):
    """Income in pounds per unit of activity."""

    outpatient_first: Pounds = Field(ge=0)
    day_case: Pounds = Field(ge=0)
    elective_inpatient: Pounds = Field(ge=0)


class ErfThreshold(_Model):
    from_month: str = Field(pattern=r"^\d{4}-\d{2}$", description="first month (YYYY-MM) this threshold is in force")
    share_of_2019_20: Rate | None = Field(ge=0, le=2, description="none = no ERF scheme from this month")


class Finance(_Model):
    """Costs, income and the deficit: priced from the same simulated activity planners see."""

    costs: FinanceCosts
    tariff: FinanceTariff
    activity_2019_20_per_week: dict[Literal["outpatient_first", "day_case", "elective_inpatient"], float] = Field(
        title="2019/20 activity a week")
    erf_thresholds: list[ErfThreshold] = Field(default=[], title="ERF thresholds")
    erf_rate_of_tariff: Rate = Field(default=1.2, ge=0, title="ERF rate (share of tariff)")
    block_income_per_year: Pounds = Field(ge=0, description="fixed elective income (2021/22 block arrangements)")
    underlying_deficit_per_year: Pounds = Field(default=0.0, description="recurrent deficit before these activities (positive = deficit)")
    recurrent_savings_per_year: Pounds = Field(default=0.0, description="productivity savings the scenario assumes")


class RunSettings(_Model):
    """Seed and replications. `replications: auto` runs until the 95% confidence interval of the mean
    52-week clearance is within +/- `target_half_width_weeks` (at least `min_replications`, at most
    `max_replications`; while any replication has not cleared within the horizon it runs on to the cap)."""

    seed: int = Field(ge=0)
    replications: Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"]
    min_replications: int = Field(default=5, ge=2)
    max_replications: int = Field(default=50, ge=2, le=10_000)
    target_half_width_weeks: float = Field(default=2.0, gt=0)


class Scenario(_Model):
    """A whole scenario, validated. Frozen: the model never changes its inputs."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    title: str
    description: str = ""
    start_date: dt.date
    horizon_weeks: int = Field(ge=1, le=1040)
    booking_policy: Literal["fifo", "longest_wait_first", "priority_then_longest_wait"] = Field(
        json_schema_extra=value_labels(fifo="First in, first out (by decision-to-treat date)",
                                       longest_wait_first="Longest wait first (by clock start)",
                                       priority_then_longest_wait="Clinical priority (P1-P4), then longest wait"))
    pooling: Literal["ics", "site"] = Field(
        json_schema_extra=value_labels(ics="One ICS-wide list per specialty (any site may treat)",
                                       site="A separate list at each site"))
    run: RunSettings
    bank_holidays: Literal["england", "none"] = Field(default="england",
                                                      json_schema_extra=value_labels(england="England", none="None"))
    extra_bank_holidays: list[dt.date] = []
    specialties: dict[str, Specialty]
    sites: dict[str, Site]
    boroughs: dict[str, Borough]
    referrals: Referrals
    outpatients: Outpatients
    theatre_rules: TheatreRules
    removals: Removals
    start_list: StartList
    targets: Targets | None = None
    finance: Finance | None = None
    covid: Covid | None = Field(default=None, title="COVID-19")
    surgical_hubs: SurgicalHubs | None = None
    staff: Staff | None = None
    vaccination: Vaccination | None = None

    # keys given as 80% intervals [low, high] (sim.scenario.intervals); set by `validate`, drawn per replication
    _parameter_intervals: list = PrivateAttr(default_factory=list)

    @property
    def parameter_intervals(self) -> list:
        """The sim.scenario.intervals.UncertainParameter list: empty when every input is a single value."""
        return self._parameter_intervals

    @field_validator("start_date")
    @classmethod
    def _monday(cls, v: dt.date) -> dt.date:
        if v.weekday() != 0:
            raise ValueError(f"must be a Monday ({v.isoformat()} is a {v.strftime('%A')})")
        return v

    # Convenience views used by the model (derived, not stored).
    @property
    def specialty_names(self) -> list[str]:
        return list(self.specialties)

    @property
    def site_names(self) -> list[str]:
        return list(self.sites)

    @property
    def borough_names(self) -> list[str]:
        return list(self.boroughs)

    @property
    def horizon_days(self) -> int:
        return 7 * self.horizon_weeks


def _cross_reference_problems(raw: dict) -> list[str]:
    """Checks across sections (names that must exist elsewhere, dates inside the run), on the raw mapping.

    Run beside field validation so that every problem is reported in one pass; defensive about types
    because the raw mapping may itself be invalid (those errors are reported by field validation).
    """
    def mapping(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    problems: list[str] = []
    specs = set(mapping(raw.get("specialties")))
    sites = set(mapping(raw.get("sites")))
    if "specialties" in raw and not specs:
        problems.append("specialties: at least one specialty is needed")
    if "sites" in raw and not sites:
        problems.append("sites: at least one site is needed")
    shares = [mapping(v).get("referral_share") for v in mapping(raw.get("specialties")).values()]
    if shares and all(isinstance(x, (int, float)) for x in shares) and not math.isclose(sum(shares), 1.0, abs_tol=SHARE_TOLERANCE):
        problems.append(f"specialties.*.referral_share: referral shares must sum to 1 (they sum to {sum(shares):.6g})")

    def check(section: Any, path: str, known: set[str], kind: str) -> None:
        for key in mapping(section):
            if known and key not in known:
                problems.append(_unknown_ref(f"{path}.{key}", key, known, kind))

    for site_name, site in mapping(raw.get("sites")).items():
        site = mapping(site)
        check(mapping(site.get("theatres")).get("specialty_session_shares"),
              f"sites.{site_name}.theatres.specialty_session_shares", specs, "specialty")
        check(site.get("outpatient_first_slots_per_week"), f"sites.{site_name}.outpatient_first_slots_per_week",
              specs, "specialty")
    for name, borough in mapping(raw.get("boroughs")).items():
        check(mapping(borough).get("referred_site_shares"), f"boroughs.{name}.referred_site_shares", sites, "site")
    start_list = mapping(raw.get("start_list"))
    check(start_list.get("specialty_shares"), "start_list.specialty_shares", specs, "specialty")
    check(start_list.get("site_shares"), "start_list.site_shares", sites, "site")
    boroughs = mapping(raw.get("boroughs"))
    pops = [mapping(b).get("population") for b in boroughs.values()]
    if boroughs and all(isinstance(p, int) for p in pops) and sum(pops) <= 0:
        problems.append("boroughs: total population must be positive")
    covid = mapping(raw.get("covid"))
    check(covid.get("site_shares"), "covid.site_shares", sites, "site")
    for name, hub in mapping(mapping(raw.get("surgical_hubs")).get("hubs")).items():
        hub = mapping(hub)
        host = hub.get("host_site")
        if isinstance(host, str) and sites and host not in sites:
            problems.append(_unknown_ref(f"surgical_hubs.hubs.{name}.host_site", host, sites, "site"))
        check(mapping(hub.get("theatres")).get("specialty_session_shares"),
              f"surgical_hubs.hubs.{name}.theatres.specialty_session_shares", specs, "specialty")
    staff = mapping(raw.get("staff"))
    groups = set(mapping(staff.get("groups")))
    check(staff.get("establishment"), "staff.establishment", sites, "site")
    if staff and isinstance(staff.get("establishment"), dict):
        for site_name in sorted(sites - set(staff["establishment"])):
            problems.append(f"staff.establishment.{site_name}: missing: a site without staff runs no sessions "
                            f"or clinics (give its establishment, or zeros if that is meant)")
    for site_name, counts in mapping(staff.get("establishment")).items():
        check(counts, f"staff.establishment.{site_name}", groups, "staff group")
    vacc = mapping(raw.get("vaccination"))
    boroughs_known = set(mapping(raw.get("boroughs")))
    for name, centre in mapping(vacc.get("centres")).items():
        centre = mapping(centre)
        b, src = centre.get("borough"), centre.get("staffed_from", "own")
        if isinstance(b, str) and b != "all" and boroughs_known and b not in boroughs_known:
            problems.append(_unknown_ref(f"vaccination.centres.{name}.borough", b, boroughs_known | {"all"}, "borough"))
        if isinstance(src, str) and src != "own" and sites and src not in sites:
            problems.append(_unknown_ref(f"vaccination.centres.{name}.staffed_from", src, sites | {"own"}, "site"))
        if isinstance(src, str) and src != "own" and not staff:
            problems.append(f"vaccination.centres.{name}.staffed_from: a centre staffed from a site needs a staff section")
    cohorts = vacc.get("cohorts")
    for i, cohort in enumerate(cohorts if isinstance(cohorts, list) else []):
        b = mapping(cohort).get("borough")
        if isinstance(b, str) and boroughs_known and b not in boroughs_known:
            problems.append(_unknown_ref(f"vaccination.cohorts.{i}.borough", b, boroughs_known, "borough"))
    surge = mapping(vacc.get("surge"))
    for g in surge.get("redeploy_from", []) if isinstance(surge.get("redeploy_from"), list) else []:
        if g not in groups:
            problems.append(_unknown_ref("vaccination.surge.redeploy_from", str(g), groups, "staff group"))
    start = raw.get("start_date")
    if isinstance(start, dt.date):
        # A round after the horizon is simply not reached; one before the start cannot happen.
        rounds = mapping(raw.get("removals")).get("validation_rounds")
        for i, rnd in enumerate(rounds if isinstance(rounds, list) else []):
            d = mapping(rnd).get("date")
            if isinstance(d, dt.date) and d < start:
                problems.append(f"removals.validation_rounds.{i}.date: {d} is before the start date {start}")
    return problems


def _unknown_ref(path: str, key: str, known: set[str], kind: str) -> str:
    hint = difflib.get_close_matches(key, sorted(known), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(known))})"
    return f"{path}: unknown {kind} {key!r}{extra}"


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

class _SafeLoaderNoDup(yaml.SafeLoader):
    """SafeLoader (no object tags) that rejects duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"impossible date {node.value!r} ({exc})", node.start_mark) from None


_SafeLoaderNoDup.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_SafeLoaderNoDup.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read ({exc})"]) from None
    try:
        data = yaml.load(text, Loader=_SafeLoaderNoDup)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "malformed YAML"
        if "could not determine a constructor" in what:
            raise ScenarioError([f"{path}: line {mark.line + 1 if mark else '?'}: tag not allowed ({what.split('for the tag ')[-1]}); "
                                 "scenario files are plain data, loaded safely"]) from None
        if what.startswith(("impossible date", "duplicate key")):
            raise ScenarioError([f"{path}: {where}: {what}"]) from None
        raise ScenarioError([f"{path}: malformed YAML at {where}: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: malformed YAML: {exc}"]) from None
    if data is None:
        raise ScenarioError([f"{path}: the file is empty"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{path}: expected a mapping of keys at the top level, found {type(data).__name__}"])
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Merge override into a copy of base: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Read a scenario file and everything it `extends:`, merged into one plain mapping."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        raise ScenarioError([f"{path}: extends: circular inheritance ({' -> '.join(p.name for p in _chain)})"])
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError([f"{path}: extends: expected a file name (string), found {type(parent).__name__}"])
    parent_path = (path.parent / parent)
    if parent_path.suffix == "":
        parent_path = parent_path.with_suffix(".yaml")
    if not parent_path.exists():
        raise ScenarioError([f"{path}: extends: file {parent!r} not found beside the scenario"])
    base = load_raw(parent_path, _chain + (resolved,))
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`dotted.key=value` -> (path, value); the value is read as YAML (so 12, 0.5, true, [1,2] work)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text!r}: expected dotted.key=value"])
    key, raw_value = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError([f"--set {text!r}: empty key in {key!r}"])
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return path, value


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply dotted overrides. The path to the last key must exist (else an error with did-you-mean); the
    last key may be new (a default the file does not state), and validation then checks it."""
    out = copy.deepcopy(raw)
    problems: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for depth, part in enumerate(path[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict) or part not in node:
                known = list(node) if isinstance(node, dict) else []
                problems.append(_missing_key_message(source, path[: depth + 1], part, known))
                node = None
                break
            node = node[part]
        if node is None:
            continue
        last = path[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            # a key the file leaves at its default may be set too; validation rejects unknown keys
            node[last] = value
        else:
            known = list(node) if isinstance(node, dict) else []
            problems.append(_missing_key_message(source, path, last, known))
    if problems:
        raise ScenarioError(problems)
    return out


def _missing_key_message(source: str, path: list[str], part: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(part, [str(k) for k in known], n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{source} {'.'.join(path)}: no such key{extra}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the pydantic model found by walking loc (used for did-you-mean)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:
            args = getattr(current, "__args__", ())
            # dict[str, X] or list[X]: step into X.
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not inner:
                return []
            current = inner[-1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _format_validation_errors(path: Path, exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        # pydantic puts the tried union member into the location; drop those markers.
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("dict[", "constrained-"))))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            known = _fields_at(Scenario, loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"{path}: {dotted}: unknown key{extra}")
        elif kind == "missing":
            lines.append(f"{path}: {dotted}: required key is missing")
        elif kind == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{path}: {dotted}: {msg}")
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
            lines.append(f"{path}: {dotted}: {err['msg']} (got {shown})")
    # One line per problem, no repeats (union branches can report the same thing twice).
    return list(dict.fromkeys(lines))


def validate(raw: dict, source: Path | str) -> Scenario:
    """Turn a merged mapping into a Scenario or raise ScenarioError listing every problem.

    Numbers given as 80% intervals [low, high] (sim.scenario.intervals) are validated at their midpoint, and then
    with every interval at its low end and at its high end together, so a range that breaks a rule tying keys
    together (shares summing to one) is refused here; each replication's own draws are checked again before
    the run (sim.scenario.intervals.check_draws)."""
    from sim.scenario.intervals import find_intervals, with_ends
    mid_raw, intervals, interval_problems = find_intervals(Scenario, raw)
    problems = [f"{source}: {p}" for p in interval_problems + _cross_reference_problems(mid_raw)]
    scenario = None
    try:
        scenario = Scenario.model_validate(mid_raw, context={"source": str(source), "raw": mid_raw})
    except ValidationError as exc:
        problems = _format_validation_errors(Path(source), exc) + problems
    if scenario is not None and intervals and not problems:
        for end in ("low", "high"):
            end_raw = with_ends(mid_raw, intervals, end)
            prefix = f"{source}: with every [low, high] interval at its {end} end: "
            problems += [prefix + p for p in _cross_reference_problems(end_raw)]
            try:
                Scenario.model_validate(end_raw, context={"source": str(source), "raw": end_raw})
            except ValidationError as exc:
                problems += [line.replace(f"{source}: ", prefix, 1)
                             for line in _format_validation_errors(Path(source), exc)]
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    scenario._parameter_intervals = intervals
    return scenario


def load_scenario(path: Path | str, overrides: list[str] | None = None) -> tuple[Scenario, dict]:
    """Load, inherit, override and validate. Returns the Scenario and the resolved plain mapping."""
    path = Path(path)
    raw = load_raw(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    raw = _embed_covid_series(raw, path)
    from sim.model.start_list import apply_rtt_calibration, embed_rtt_csv_path
    raw = embed_rtt_csv_path(raw, path)
    scenario = validate(raw, path)
    return apply_rtt_calibration(scenario, raw, source=path)


def _embed_covid_series(raw: dict, path: Path) -> dict:
    """Read covid.inpatients_csv (columns date, inpatients; relative to the scenario file) into the scenario,
    so the resolved scenario saved with a run carries the series itself."""
    covid = raw.get("covid")
    if not isinstance(covid, dict) or not covid.get("inpatients_csv"):
        return raw
    csv_path = (path.parent / str(covid["inpatients_csv"])).resolve()
    where = f"{path}: covid.inpatients_csv"
    try:
        import pandas as pd
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
