"""The scenario schema: frozen pydantic models of every section, with the rules each field must meet.

A Scenario is what a planner wrote (after `extends:` and `--set`) plus what the build derives from it; it never
changes once made, so the model cannot alter its inputs. Loading files is sim.scenario.yaml_files, checks across
sections and error lines are sim.scenario.validate, the whole pipeline is sim.scenario.build.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from sim.scenario.intervals import UncertainParameter
from sim.scenario.rtt_start_list import RttStartList

Priority = Literal["P1", "P2", "P3", "P4"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Month = Literal["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
MONTHS: tuple[Month, ...] = get_args(Month)
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


def value_labels(**labels: str) -> JsonDict:
    """json_schema_extra naming what each value of a choice means, for people."""
    return {"value_labels": dict(labels)}


# Upper bounds on the numbers that make a run large, slow or impossible. Each is the real scale (North West London
# in the seeds, or all of England where one area's figure could legitimately be much larger) times a generous
# factor, so any real ICS and any sensitivity test fits, while a slip of the keyboard (10^9 for 10^3) is refused
# with its key and the limit instead of a run that fills the memory, hangs or overflows. North West London for
# scale: 2.2 million people, ~190,000 waiting in June 2021, ~15,600 referral requests a week, four trusts with
# 37-72 theatre sessions a weekday each and 71-136 elective beds each. Bounds are stated in the types (Field
# le/lt), so a [low, high] range is checked and drawn within them too (sim.scenario.intervals).
#
# Whether one replication of a scenario within these bounds fits in this machine's memory is a separate check
# (sim.scenario.resources), made before anything runs.
MAX_WAITING_LIST = 10_000_000        # pathways on a start list: England's whole RTT list peaked at 7.8 million
                                     # (2023), NWL's was ~190,000
MAX_REFERRALS_PER_WEEK = 1_000_000   # England's clock starts are ~1.7 million a month (~400,000 a week): 2.5x
                                     # England, 64x NWL's 15,600
MAX_SESSIONS_PER_DAY = 1_000         # theatre sessions at one site on one weekday: the largest trusts have 60-80
                                     # theatres at 2-3 sessions a day (~240); NWL's largest plans 72. Each session is
                                     # walked every day, so 10^9 would hang the run
MAX_SLOTS_PER_WEEK = 10_000_000      # first outpatient slots a week, or activity a week, for one site and
                                     # specialty: England gives ~500,000 first attendances a week (~26 million a
                                     # year); 20x that also serves as "unlimited" in tests
MAX_CASES_PER_WEEK = 100_000         # cases one site may book a week under a cap: England does ~150,000 elective
                                     # admissions a week in all
MAX_MINUTES_PER_DAY = 1_440          # a session, a case, a turnaround, a centre's opening, a dose: none lasts more
                                     # than a day (sessions are 240 minutes, cases 18-110)
MAX_STAY_DAYS = 365                  # a mean elective length of stay is 1-5 days; a year is 70x the longest
MAX_BEDS = 100_000                   # elective beds at one site or hub: England has ~100,000 general and acute beds
                                     # in all; NWL's sites have 71-136 elective beds
MAX_STAFF = 100_000                  # people of one staff group at one site: the largest NHS trust employs ~20,000
                                     # people in all; NWL's sites plan 24-139 of a group
MAX_PEOPLE = 100_000_000             # people in a borough or a vaccination cohort: the UK has 67 million, NWL 2.2
MAX_COVID_INPATIENTS = 100_000       # England's Covid inpatients peaked at ~39,000 (January 2021); London's at 7,917
MAX_DOSES_PER_WEEK = 10_000_000      # vaccine doses a week: England's peak was ~3.5 million (2021); NWL's surge
                                     # target was 200,000
MAX_STATIONS = 10_000                # vaccination stations (or observation chairs) at one centre: Twickenham's
                                     # mass event ran 119; the Erlang C wait loops over them
MAX_WEEKS = 1_040                    # 20 years: the longest horizon, wait, band, delay or window in weeks (RTT
                                     # waits are reported to 104+ weeks; the model's day keys span +/- 89 years)
MAX_POUNDS = 1e12                    # £1 trillion: ~6x the NHS in England's whole annual budget (~£160bn); one
                                     # trust's elective income is ~£300m a year
MAX_FACTOR = 100.0                   # a multiplier or a count per person/inpatient that has no natural ceiling:
                                     # the shipped scenarios use 0.5-3.5
MAX_NAMED = 250                      # specialties, sites and boroughs: each is one byte of a pathway in the model's
                                     # patient table (sim.model.patients); NWL has 9, 4 and 8

# Value types: bounds stated in the type (not only in a validator) so that a [low, high] range on one entry is
# drawn within them (sim.scenario.intervals reads ge/le from the type). Every number must be finite (the models'
# allow_inf_nan=False): a key that means "no limit" says so with None, never with .inf.
Share = Annotated[float, Field(ge=0, le=1, json_schema_extra=unit("share"))]
Rate = Annotated[float, Field(json_schema_extra=unit("share"))]       # a fraction whose field states its bounds
Pounds = Annotated[float, Field(le=MAX_POUNDS, json_schema_extra=unit("pounds"))]   # a field states its minimum
Multiplier = Annotated[float, Field(json_schema_extra=unit("multiplier"))]
NonNegativeFloat = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
SessionsPerDay = Annotated[int, Field(ge=0, le=MAX_SESSIONS_PER_DAY)]
SlotsPerWeek = Annotated[float, Field(ge=0, le=MAX_SLOTS_PER_WEEK)]
StaffCount = Annotated[int, Field(ge=0, le=MAX_STAFF)]
Weeks = Annotated[float, Field(ge=0, le=MAX_WEEKS)]
Minutes = Annotated[float, Field(ge=0, le=MAX_MINUTES_PER_DAY)]
Inpatients = Annotated[float, Field(ge=0, le=MAX_COVID_INPATIENTS)]
People = Annotated[int, Field(ge=0, le=MAX_PEOPLE)]
# Calendar months named as in the published series, and a multiplier for each month named (other months: 1).
MonthKey = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
MonthlyMultipliers = dict[MonthKey, Annotated[float, Field(gt=0, le=10, allow_inf_nan=False,
                                                             json_schema_extra=unit("multiplier"))]]


def _sums_to_one(shares: Any) -> Any:
    """Shares of a whole must add up to 1; a keyword standing in for the shares (`referral_shares`) passes."""
    if isinstance(shares, dict):
        total = sum(shares.values())
        if not math.isclose(total, 1.0, abs_tol=SHARE_TOLERANCE):
            raise ValueError(f"shares must sum to 1 (they sum to {total:.6g})")
    return shares


T = TypeVar("T")
Key = TypeVar("Key")
Keyword = TypeVar("Keyword")
# Shares of a whole by key (specialty, site, priority): each 0..1, together 1.
Shares = Annotated[dict[Key, Share], AfterValidator(_sums_to_one)]
# The same, or a keyword meaning "shares taken from elsewhere". The check wraps the union, so a bad sum is one
# error rather than one per member of the union.
SharesOr = Annotated[dict[Key, Share] | Keyword, AfterValidator(_sums_to_one)]


class _Model(BaseModel):
    # allow_inf_nan=False: every float of every section, in its lists and mappings too, must be finite (`.inf`,
    # `.nan` and a [low, high] range with either are refused with the key: sim.scenario.validate).
    # defer_build: the validators are built when a scenario is first validated, not when this module is imported
    # (a tenth of a second): `report` imports the schema for its fields' titles and units, and validates the
    # saved scenarios in the process that reads the folder (sim.outputs.forking).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True)


def _not_written_in_a_file(value: Any) -> Any:
    raise ValueError("not a scenario key: filled in when the scenario is built (sim.scenario.build)")


# A field the build derives from what the file says (the list read from rtt_csv, the [low, high] ranges found).
# Declared so that it is typed and copied with model_copy(update=...) like any field; refused as input, and left
# out of model_dump (exclude=True on the Field) and of the JSON schema, so a scenario file can neither set it nor
# see it.
Derived = Annotated[T, BeforeValidator(_not_written_in_a_file), SkipJsonSchema()]


class LogNormalMinutes(_Model):
    """Case duration in minutes: lognormal with this mean and coefficient of variation."""

    mean: float = Field(gt=0, le=MAX_MINUTES_PER_DAY)
    cv: float = Field(ge=0, le=3)


class Specialty(_Model):
    """One specialty (NHS treatment function): its share of referrals and its pathway."""

    treatment_function_code: str
    referral_share: Share
    admitted_share: Share = Field(description="share of referrals that end in a decision to treat")
    day_case_share: Share = Field(description="share of admitted cases done as day cases")
    priority_mix: Shares[Priority]
    theatre_minutes_day_case: LogNormalMinutes
    theatre_minutes_inpatient: LogNormalMinutes
    los_days_mean: float = Field(ge=0, le=MAX_STAY_DAYS,
                                 description="mean length of stay of an inpatient case (exponential)")


class TheatreTemplate(_Model):
    """A site's weekly theatre timetable."""

    sessions_by_weekday: dict[Weekday, SessionsPerDay]
    session_minutes: float = Field(gt=0, le=MAX_MINUTES_PER_DAY)
    turnaround_minutes: Minutes
    utilisation_cap: Rate = Field(gt=0, le=1, description="share of session minutes that may be booked")
    specialty_session_shares: Shares[str]


class Site(_Model):
    """An acute hospital site: beds, theatres and outpatient clinics."""

    trust_code: str
    name: str
    provider: Literal["nhs", "independent_sector"] = "nhs"
    elective_beds: int = Field(ge=0, le=MAX_BEDS)
    theatres: TheatreTemplate
    outpatient_first_slots_per_week: dict[str, SlotsPerWeek]


class Borough(_Model):
    population: People
    referred_site_shares: Shares[str]


class Referrals(_Model):
    """Referral demand before advice and guidance, and its calendar shape."""

    referrals_per_week: float = Field(ge=0, le=MAX_REFERRALS_PER_WEEK,
                                      title="Referrals a week (before advice and guidance)",
                                      description="GP referral requests a week across the ICS, before A&G")
    advice_and_guidance_share: Share = Field(title="Advice and guidance share (diverted)")
    weekday_weights: dict[Weekday, NonNegativeFloat]
    seasonality_amplitude: Rate = Field(ge=0, lt=1, description="relative amplitude of the annual cosine")
    seasonality_peak_day_of_year: int = Field(ge=1, le=366)
    demand_growth_per_year: Rate = Field(gt=-1, le=1, title="Demand growth a year")   # at most doubling a year
    monthly_multipliers: MonthlyMultipliers = Field(
        default={}, title="Demand multiplier by month",
        description="multiplies the referrals of each month named (YYYY-MM) on top of seasonality and growth; "
                    "other months 1 (written by `calibrate` from published clock starts)")
    admitted_share_multiplier: Multiplier = Field(
        default=1.0, gt=0, le=MAX_FACTOR, allow_inf_nan=False, title="Decisions to treat (multiplier)",
        description="scales every specialty's admitted_share, the share of pathways ending in a decision to treat "
                    "(capped at 1; written by `calibrate` from the published admitted list)")

    @field_validator("weekday_weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(WEEKDAYS):
            raise ValueError(f"give a weight for each of {', '.join(WEEKDAYS)}")
        if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return v


class Outpatients(_Model):
    clinic_weekdays: list[Weekday]
    virtual_share: Share = Field(title="Virtual outpatient share")
    dna_rate_face_to_face: Rate = Field(ge=0, lt=1, title="Did-not-attend rate, face to face")
    dna_rate_virtual: Rate = Field(ge=0, lt=1, title="Did-not-attend rate, virtual")


class TheatreRules(_Model):
    on_the_day_cancellation_rate: Rate = Field(ge=0, lt=1, title="Cases cancelled on the day",
                                               description="booked case cancelled on the day")
    session_cancellation_rate: Share = Field(title="Whole theatre sessions cancelled",
                                             description="whole session lost (unplanned)")


class RemovalBand(_Model):
    from_weeks: Weeks
    weekly_rate: Share


class ValidationRound(_Model):
    date: dt.date
    min_weeks_waited: Weeks
    share_removed: Share


class Removals(_Model):
    """Removals from the list other than treatment."""

    weekly_rate_by_weeks_waited: list[RemovalBand]
    validation_rounds: list[ValidationRound] = []
    rate_multiplier: Multiplier = Field(
        default=1.0, ge=0, le=50, allow_inf_nan=False, title="Removal rate multiplier",
        description="scales every band's weekly rate, as a hazard (written by `calibrate` from published removals)")

    @field_validator("weekly_rate_by_weeks_waited")
    @classmethod
    def _bands(cls, v: list[RemovalBand]) -> list[RemovalBand]:
        if v:
            starts = [b.from_weeks for b in v]
            if starts[0] != 0:
                raise ValueError("the first band must start at from_weeks 0")
            if any(b <= a for a, b in itertools.pairwise(starts)):
                raise ValueError("bands must be in increasing order of from_weeks")
        return v


class StartBand(_Model):
    from_weeks: Weeks
    to_weeks: float = Field(gt=0, le=MAX_WEEKS)
    count: int = Field(ge=0, le=MAX_WAITING_LIST)
    admitted_share: Share = Field(description="share with a decision to admit (Part_2A)")

    @model_validator(mode="after")
    def _ordered(self) -> StartBand:
        if self.to_weeks <= self.from_weeks:
            raise ValueError("to_weeks must be greater than from_weeks")
        return self


class StartList(_Model):
    """The waiting list on the start date: exactly one of hand-written `bands` or an RTT Full CSV (`rtt_csv`).

    With `rtt_csv` (relative to the scenario file) the list is the file's incomplete pathways (Part_2, Part_2A on
    the admitted list) for `providers` (default: the keys of `provider_sites`), each provider put at a site and
    each treatment function at a specialty (default: the specialties' treatment_function_code; others go to
    `other_specialty`); see sim.scenario.rtt_start_list. `specialty_shares` and `site_shares` apply to `bands` only.
    `calibrate_referrals_from_rtt` takes referrals_per_week from the file's clock starts (Part_3);
    `calibrate_treatment_from_rtt` takes each provider site's theatre sessions and first outpatient slots from its
    completed pathways (Part_1A, Part_1B; see sim.scenario.calibration). The file is read, and the calibrations
    applied, when the scenario is built (sim.scenario.build), not here: validation only checks the settings.
    """

    bands: list[StartBand] | None = None
    specialty_shares: SharesOr[str, Literal["referral_shares"]] = "referral_shares"
    site_shares: SharesOr[str, Literal["referral_shares"]] = "referral_shares"
    priority_mix: SharesOr[Priority, Literal["specialty"]] = "specialty"
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

    rtt: Derived[InstanceOf[RttStartList] | None] = Field(
        default=None, exclude=True, description="the list read from rtt_csv (sim.scenario.build.build_start_list)")

    @field_validator("specialty_for_treatment_function", "provider_sites", mode="before")
    @classmethod
    def _codes_as_text(cls, v: Any) -> Any:
        return {str(k): x for k, x in v.items()} if isinstance(v, dict) else v  # YAML reads 110: as a number

    @model_validator(mode="after")
    def _not_larger_than_england(self) -> StartList:
        total = sum(band.count for band in self.bands or [])
        if total > MAX_WAITING_LIST:
            raise ValueError(f"bands hold {total:,} pathways in all, above the limit of {MAX_WAITING_LIST:,} "
                             "(England's whole waiting list peaked at 7.8 million)")
        return self

    @model_validator(mode="after")
    def _one_source(self) -> StartList:
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
        return self


ModelT = TypeVar("ModelT", bound=BaseModel)


def _number(value: float) -> str:
    """A number as a planner writes it: whole numbers with thousands separators (1,000,000 not 1e+06)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6g}"


def _low_before_high(model: ModelT, low: str, high: str) -> ModelT:
    """A range given as two fields: the high end may not be below the low end."""
    if getattr(model, high) < getattr(model, low):
        raise ValueError(f"{high} ({_number(getattr(model, high))}) must be at least {low} "
                         f"({_number(getattr(model, low))})")
    return model


class PatientChoice(_Model):
    """Patients who, offered a date, choose to wait (patient choice) or are not ready (clinically or socially): the
    first time they reach the head of a list at a stage they decline, leave the list without using a slot for a
    drawn number of weeks, and then come back keeping their clock start and their place by the booking rule. The
    RTT clock keeps running (England's rules do not pause it for a patient's choice), so deferrers are long waiters.
    Who defers and for how long is drawn when the pathway is created (stream `patient_deferral`)."""

    outpatient_deferral_share: Share = Field(
        default=0.0, title="Share deferring their first outpatient appointment",
        description="share of pathways who decline the first outpatient date offered")
    operation_deferral_share: Share = Field(
        default=0.0, title="Share deferring their operation",
        description="share of pathways needing an operation who decline the first operation date offered")
    deferral_weeks_min: float = Field(default=12.0, ge=0, le=520, title="Shortest deferral (weeks)",
                                      description="deferral length is uniform between the shortest and longest")
    deferral_weeks_max: float = Field(default=26.0, ge=0, le=520, title="Longest deferral (weeks)")

    @model_validator(mode="after")
    def _ordered(self) -> PatientChoice:
        return _low_before_high(self, "deferral_weeks_min", "deferral_weeks_max")


class FurtherOutpatientVisits(_Model):
    """Pathways whose first outpatient attendance does not decide them: they go for a diagnostic test (or wait for
    a result or a planned follow-up) and then need a further outpatient slot at the same site and specialty before
    the clock stops (non-admitted) or a decision to treat is made (admitted). While away they stay on the list
    (clock running); they come back to the outpatient list with their clock start, so they keep their place by the
    booking rule. Who needs it and the wait in between are drawn when the pathway is created (stream
    `further_visits`)."""

    non_admitted_share: Share = Field(
        default=0.0, title="Non-admitted pathways needing a further visit",
        description="share of pathways that end without an operation whose first attendance does not stop the clock")
    admitted_share: Share = Field(
        default=0.0, title="Admitted pathways needing a further visit before the decision to treat",
        description="share of pathways needing an operation whose first attendance does not decide to treat")
    wait_weeks_min: float = Field(default=4.0, ge=0, le=520, title="Shortest wait before the further visit (weeks)",
                                  description="diagnostic wait; uniform between the shortest and longest")
    wait_weeks_max: float = Field(default=10.0, ge=0, le=520, title="Longest wait before the further visit (weeks)")

    @model_validator(mode="after")
    def _ordered(self) -> FurtherOutpatientVisits:
        return _low_before_high(self, "wait_weeks_min", "wait_weeks_max")


class OutpatientFollowUps(_Model):
    """Follow-up outpatient attendances: after a first attendance that discharges the patient from the RTT pathway
    (non-admitted clock stop) and after an operation. They are not RTT pathways (the clock has stopped), but they use
    the same clinics, so they compete with first appointments for slots by `slot_rule`:
    - `ring_fenced`: each site and specialty has its own follow-up slots (`slots_per_first_slot` times its first
      slots); follow-ups never take first slots. Slots freed by patient-initiated follow-up (PIFU) are re-templated
      as first slots at `pifu_freed_slots_to_firsts` (a planning decision, so it is an input).
    - `common_pool`: first and follow-up slots are one pool; follow-ups due are booked first (they were booked
      weeks ahead) and first appointments take what is left, so fewer follow-ups means more first slots.
    A patient's k-th follow-up is due k x `weeks_between` after the event; how many each has is Poisson with the
    specialty's mean (stream `follow_ups`). A PIFU follow-up happens only if the patient asks for it
    (`pifu_request_rate`). A follow-up that is not attended keeps its place and is booked again."""

    after_non_admitted_stop: float = Field(
        ge=0, le=MAX_FACTOR, title="Follow-ups after an outpatient clock stop",
        description="mean follow-up attendances after a first attendance that stops the clock without treatment")
    after_treatment: float = Field(ge=0, le=MAX_FACTOR, title="Follow-ups after an operation",
                                   description="mean follow-up attendances after an operation")
    specialty_multipliers: dict[str, Annotated[float, Field(ge=0, le=MAX_FACTOR)]] = Field(
        default={}, title="Follow-ups by specialty (multiplier)",
        description="scales both means for a specialty (others: 1)")
    weeks_between: Weeks = Field(default=12.0, gt=0, title="Weeks between follow-ups")
    slot_rule: Literal["ring_fenced", "common_pool"] = Field(
        default="ring_fenced", title="How follow-ups share clinic slots",
        json_schema_extra=value_labels(ring_fenced="Own follow-up slots (ring-fenced)",
                                       common_pool="One pool, follow-ups booked first"))
    slots_per_first_slot: float = Field(ge=0, le=MAX_FACTOR, title="Follow-up slots per first slot",
                                        description="follow-up slots at each site and specialty, per first slot")
    virtual_share: Share = Field(default=0.0, title="Virtual follow-up share")
    dna_rate: Rate = Field(default=0.0, ge=0, lt=1, title="Follow-up did-not-attend rate")
    pifu_share: Share = Field(default=0.0, title="Follow-ups moved to patient-initiated follow-up (PIFU)",
                              description="share of follow-ups that become patient-initiated")
    pifu_request_rate: Share = Field(default=1.0, title="PIFU follow-ups patients ask for",
                                     description="share of patient-initiated follow-ups that happen")
    pifu_freed_slots_to_firsts: Share = Field(
        default=0.0, title="Slots freed by PIFU given to first appointments",
        description="ring_fenced only: share of the follow-up slots PIFU frees that become first slots")
    overdue_at_start_weeks: Weeks = Field(
        default=0.0, title="Follow-ups overdue at the start (weeks of slots)",
        description="a follow-up backlog at the start, in weeks of each clinic's follow-up slots")

    @model_validator(mode="after")
    def _freed_slots_only_when_ring_fenced(self) -> OutpatientFollowUps:
        if self.slot_rule == "common_pool" and self.pifu_freed_slots_to_firsts:
            raise ValueError("pifu_freed_slots_to_firsts applies to slot_rule ring_fenced only (in a common pool "
                             "every slot PIFU frees is open to first appointments already); leave it out")
        return self


class ScarceResource(_Model):
    """Complex operations that need a scarce resource besides theatre time and a bed (a planned post-operative
    critical-care bed, a specialist team): each site can book at most `cases_per_week_per_site` of them a week.
    A complex case met at the head of a list once the week's cap of its treating site is used is parked until the
    next week (no slot used; clock running) and keeps its place by the booking rule. Which cases need the resource
    is drawn when the pathway is created (stream `scarce_resource`)."""

    admitted_share: Share = Field(default=0.0, title="Operations needing the scarce resource",
                                  description="share of pathways needing an operation that need the resource")
    cases_per_week_per_site: int = Field(default=0, ge=0, le=MAX_CASES_PER_WEEK,
                                         title="Complex cases a site can book a week",
                                         description="weekly cap per site (main theatres and its hubs together)")


class LongWaitStep(_Model):
    """From `from_date`, routine patients waiting more than `weeks_waited` weeks are booked ahead of the others."""

    from_date: dt.date = Field(title="From", description="the lists are re-ranked on this date, before its sessions, "
                                                         "and every Monday after (a date before the start: from the "
                                                         "start)")
    weeks_waited: int = Field(ge=1, le=MAX_WEEKS, title="Booked ahead after (weeks waited)",
                              description="routine patients (P3, P4) who have waited more than this")


class LongWaitBooking(_Model):
    """Long waiters booked in turn (valid with `booking_policy: priority_then_longest_wait` only): from each step's
    date, routine patients (P3 and P4) on the admitted list who have waited more than the step's weeks are booked
    ahead of the other routine patients, longest wait first among themselves, still after every P1 and P2 patient.
    The trusts' answer to national long-wait targets (no waits over 104 weeks by July 2022, and so on). The list is
    re-ranked once a week, on Mondays before the sessions, and at each step's date (sim.model.long_waits). Steps
    must come in date order and may only tighten (weeks_waited no more than the step before): a patient once booked
    ahead stays ahead. The first-appointment lists are not affected."""

    steps: list[LongWaitStep] = Field(min_length=1, title="Steps")

    @field_validator("steps")
    @classmethod
    def _in_order_and_tightening(cls, v: list[LongWaitStep]) -> list[LongWaitStep]:
        for i, (before, step) in enumerate(itertools.pairwise(v), start=1):
            if step.from_date <= before.from_date:
                raise ValueError(f"steps must be in date order, each date once (step {i}, {step.from_date}, is not "
                                 f"after step {i - 1}, {before.from_date})")
            if step.weeks_waited > before.weeks_waited:
                raise ValueError(f"steps may only tighten: step {i}'s weeks_waited ({step.weeks_waited}) is more "
                                 f"than step {i - 1}'s ({before.weeks_waited}); a patient once booked ahead stays "
                                 "ahead")
        return v


class CovidWave(_Model):
    """One wave of Covid inpatients (ICS-wide): rises from start to peak, falls to the end date."""

    name: str = ""
    start: dt.date
    peak: dt.date
    end: dt.date
    peak_inpatients: Inpatients
    shape: Literal["cosine", "triangular"] = "cosine"

    @model_validator(mode="after")
    def _ordered(self) -> CovidWave:
        if not self.start <= self.peak <= self.end:
            raise ValueError(f"dates must satisfy start <= peak <= end (got {self.start}, {self.peak}, {self.end})")
        return self


class CovidSeriesPoint(_Model):
    date: dt.date
    inpatients: Inpatients


class CriticalCare(_Model):
    """Above a critical-care threshold a site's theatres and their staff are redeployed."""

    share_of_covid_inpatients: Share
    closure_threshold_patients_per_site: Inpatients
    share_of_sessions_closed: Share


class InfectionControl(_Model):
    """Fewer cases per session while Covid inpatients (ICS-wide) are at or above a threshold."""

    threshold_inpatients: Inpatients
    productivity_factor: Multiplier = Field(gt=0, le=1)


class ReferralSuppression(_Model):
    """Referrals fall during a wave; a share of those not made return later as deferred demand."""

    share_suppressed_at_reference: Share
    reference_inpatients: float = Field(gt=0, le=MAX_COVID_INPATIENTS)
    share_returning: Share
    return_delay_weeks_min: Weeks
    return_delay_weeks_max: Weeks

    @model_validator(mode="after")
    def _ordered(self) -> ReferralSuppression:
        return _low_before_high(self, "return_delay_weeks_min", "return_delay_weeks_max")


class Covid(_Model):
    """Covid hospital pressure: waves (or a daily series) and their effects on elective care."""

    waves: list[CovidWave] = []
    inpatients_series: list[CovidSeriesPoint] = []
    inpatients_csv: str | None = None
    wave_peak_multiplier: Multiplier = Field(default=1.0, ge=0, le=MAX_FACTOR)
    site_shares: SharesOr[str, Literal["elective_beds"]] = Field(
        default="elective_beds", json_schema_extra=value_labels(elective_beds="in proportion to elective beds"))
    elective_beds_lost_per_covid_inpatient: float = Field(default=0.0, ge=0, le=MAX_FACTOR)
    critical_care: CriticalCare | None = None
    infection_control: InfectionControl | None = None
    referral_suppression: ReferralSuppression | None = None


class SurgicalHub(_Model):
    """A fast-track surgical hub: ring-fenced theatres and beds that Covid pressure does not take."""

    host_site: str
    opens: dt.date
    theatres: TheatreTemplate
    elective_beds: int = Field(ge=0, le=MAX_BEDS)
    productivity_multiplier: Multiplier = Field(default=1.0, gt=0, le=10,
                                                description="cases per session relative to a main theatre")
    staff_establishment: dict[str, StaffCount] | None = Field(
        default=None, description="ring-fenced hub teams by staff group; none = the hub draws on its host site's staff")


class SurgicalHubs(_Model):
    inpatient_max_los_days: float = Field(default=2.0, ge=0, le=MAX_STAY_DAYS,
                                          title="Longest inpatient stay at a hub (days)",
                                          description="inpatients up to this stay are low complexity")
    hubs: dict[str, SurgicalHub] = {}


class StaffGroup(_Model):
    per_theatre_session: float = Field(default=0.0, ge=0, le=MAX_FACTOR,
                                       description="people of this group a session needs")
    theatre_sessions_per_day: float = Field(default=2.0, gt=0, le=24,     # more than one an hour is no session
                                            description="sessions one person covers in a day")
    runs_clinics: bool = False
    vaccinates: bool = False


class Fatigue(_Model):
    """Sickness rises after sustained high theatre workload."""

    window_weeks: int = Field(ge=1, le=MAX_WEEKS)
    workload_threshold: Rate = Field(gt=0, le=1)
    extra_sickness_rate: Share


class Staff(_Model):
    groups: dict[str, StaffGroup]
    establishment: dict[str, dict[str, StaffCount]]
    baseline_sickness_rate: Share
    annual_leave_rate_by_month: dict[Month, Share]
    rostered_absence_rate: Rate = Field(ge=0, lt=1, description="absence clinic rotas already allow for")
    covid_isolation_rate_per_1000_inpatients: Rate = Field(
        default=0.0, ge=0, le=1, title="Extra absence per 1,000 COVID-19 inpatients")
    fatigue: Fatigue | None = None

    @field_validator("annual_leave_rate_by_month")
    @classmethod
    def _months(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != set(MONTHS):
            raise ValueError(f"give a rate for each month: {', '.join(MONTHS)}")
        return v


class VaccinationCentre(_Model):
    kind: Literal["mass_vaccination_site", "hospital_hub", "pcn_site", "pharmacy", "mass_event"] = Field(
        json_schema_extra=value_labels(mass_vaccination_site="mass vaccination site", hospital_hub="hospital hub",
                                       pcn_site="PCN site", pharmacy="pharmacy", mass_event="mass event"))
    borough: str | Literal["all"]
    staffed_from: str | Literal["own"] = "own"
    stations: int = Field(ge=0, le=MAX_STATIONS)
    surge_stations: int = Field(default=0, ge=0, le=MAX_STATIONS, description="extra stations opened during the surge")
    open_minutes_per_day: float = Field(gt=0, le=1440)
    open_weekdays: list[Weekday] = list(WEEKDAYS)
    event_dates: list[dt.date] = Field(default=[], max_length=1_000)   # each looked up every day of the run
    # at least 6 seconds a dose: the day's doses are stations x minutes open / minutes a dose, a whole number
    minutes_per_dose: float = Field(ge=0.1, le=MAX_MINUTES_PER_DAY)
    observation_minutes: float = Field(default=15.0, ge=0, le=MAX_MINUTES_PER_DAY)
    observation_bays: int | None = Field(default=None, ge=0, le=MAX_STATIONS,
                                         description="chairs for the post-dose wait; none = not binding")
    vaccinators_per_station: float = Field(default=1.0, ge=0, le=MAX_FACTOR)


class VaccinationCohort(_Model):
    borough: str
    age_band: str
    population: People
    eligible_from: dt.date
    uptake_first_dose: Share
    uptake_second_dose: Share
    first_doses_before_start: People = 0
    second_doses_before_start: People = 0

    @model_validator(mode="after")
    def _doses_within_population(self) -> VaccinationCohort:
        """A second dose follows a first: never more second doses (or uptake) than first, nor first than people."""
        if self.first_doses_before_start > self.population:
            raise ValueError(f"first_doses_before_start ({self.first_doses_before_start:,}) is more than the "
                             f"population ({self.population:,})")
        _low_before_high(self, "second_doses_before_start", "first_doses_before_start")
        return _low_before_high(self, "uptake_second_dose", "uptake_first_dose")


class VaccinationSurge(_Model):
    start: dt.date
    weeks: int = Field(ge=1, le=MAX_WEEKS)
    target_doses_per_week: float = Field(ge=0, le=MAX_DOSES_PER_WEEK)
    redeploy_from: list[str] = []
    max_share_redeployed: Share = 0.0
    booking_rate_per_day: Rate | None = Field(default=None, gt=0, le=1,
                                              description="booking rate while the surge campaign runs")


class Vaccination(_Model):
    centres: dict[str, VaccinationCentre]
    cohorts: list[VaccinationCohort]
    min_dose_interval_days: int = Field(ge=0, le=366)   # 8-12 weeks in 2021
    booking_rate_per_day: Rate = Field(gt=0, le=1, description="share of those willing and due who book each day")
    did_not_attend_rate: Rate = Field(ge=0, lt=1)
    report_queue_waits: bool = Field(default=False, description="Erlang C wait at each centre-day (M/M/c)")
    surge: VaccinationSurge | None = None


class Delivery(_Model):
    """How much of the planned capacity the trusts delivered: what `calibrate` fits to published completions.

    The sites' sessions and clinic slots are what a plan provides; in 2021/22 the trusts delivered less of it
    (staff absence, infection control, slower lists). `clinic_slots_scale` multiplies every first outpatient
    slot; `theatre_productivity_scale` multiplies the cases a theatre session gets through (case minutes are
    divided by it, as by a hub's productivity). The monthly multipliers act on top, for the months named.
    """

    clinic_slots_scale: Multiplier = Field(default=1.0, gt=0, le=10, allow_inf_nan=False,
                                           title="First outpatient slots delivered (share of planned)")
    theatre_productivity_scale: Multiplier = Field(default=1.0, gt=0, le=10, allow_inf_nan=False,
                                                   title="Theatre cases delivered per planned case")
    clinic_monthly_multipliers: MonthlyMultipliers = Field(default={}, title="Clinic delivery by month")
    theatre_monthly_multipliers: MonthlyMultipliers = Field(default={}, title="Theatre delivery by month")


class Targets(_Model):
    """Dates a board wants to know the chance of meeting (nobody waiting over N weeks by then)."""

    no_52w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 52 weeks by")
    no_78w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 78 weeks by")
    no_104w_waiters_by: dt.date | None = Field(default=None, title="Nobody waiting over 104 weeks by")


class FinanceCosts(_Model):
    """Costs in pounds (one price year). Theatre staff are paid for every planned session, run or lost."""

    outpatient_first_face_to_face: Pounds = Field(ge=0)
    outpatient_first_virtual: Pounds = Field(ge=0)
    outpatient_followup_face_to_face: Pounds = Field(ge=0, title="Outpatient follow-up, face to face")
    outpatient_followup_virtual: Pounds = Field(ge=0, title="Outpatient follow-up, virtual")
    day_case_non_theatre: Pounds = Field(ge=0, description="per day case, beyond the session costs")
    inpatient_non_theatre: Pounds = Field(ge=0, description="per elective inpatient, beyond session and bed-day costs")
    elective_bed_day: Pounds = Field(ge=0)
    theatre_session_fixed: Pounds = Field(ge=0, description="estate, equipment and consumables of a session run")
    theatre_session_staff: Pounds = Field(ge=0, description="the team for one planned session (paid if lost too)")
    premium_rate_weekend_sessions: Rate = Field(
        default=0.0, ge=0, le=10, title="Weekend session staff premium",
        description="extra share on Saturday/Sunday session staff cost (waiting-list initiatives)")
    independent_sector_per_case: Pounds = Field(ge=0)
    vaccination_per_dose: Pounds = Field(ge=0)
    vaccination_per_station_hour: Pounds = Field(ge=0)


class FinanceTariff(_Model):
    """Income in pounds per unit of activity."""

    outpatient_first: Pounds = Field(ge=0)
    outpatient_followup: Pounds = Field(ge=0, title="Outpatient follow-up")
    day_case: Pounds = Field(ge=0)
    elective_inpatient: Pounds = Field(ge=0)


# The lines of elective activity finance prices and funding rules count: first and follow-up outpatient attendances
# (face to face and virtual together), day cases and elective inpatients.
ActivityLine = Literal["outpatient_first", "outpatient_followup", "day_case", "elective_inpatient"]
ACTIVITY_LINES: tuple[ActivityLine, ...] = get_args(ActivityLine)


def _every_activity_line(values: dict[str, float]) -> dict[str, float]:
    missing = [line for line in ACTIVITY_LINES if line not in values]
    if missing:
        raise ValueError(f"give a value for each of {', '.join(ACTIVITY_LINES)} (missing: {', '.join(missing)})")
    return values


def _financial_year_key(value: str) -> str:
    """"2022/23": April 2022 to March 2023, the NHS financial year as sim.core.nhs_calendar names it."""
    if not re.fullmatch(r"\d{4}/\d{2}", value) or int(value[5:]) != (int(value[:4]) + 1) % 100:
        example = f"{value[:4]}/{(int(value[:4]) + 1) % 100:02d}" if value[:4].isdigit() else "2022/23"
        raise ValueError(f"not a financial year: expected YYYY/YY, the second year the one after the first "
                         f"(e.g. {example}), got {value!r}")
    return value


FinancialYear = Annotated[str, AfterValidator(_financial_year_key)]


class ErfThreshold(_Model):
    from_month: MonthKey = Field(description="first month (YYYY-MM) this threshold is in force")
    share_of_2019_20: Rate | None = Field(ge=0, le=2, description="none = no scheme from this month")


class FundingRule(_Model):
    """How one financial year's elective income is judged (sim.outputs.finance): value-weighted activity (the
    activity lines at tariff, each counted at its weight) against the threshold share of the same lines' 2019/20
    value. Either monthly thresholds, judged month by month (the 2021/22 scheme), or one threshold judged on the
    year's total. Value above the threshold is paid at `rate_above_threshold` of tariff; a shortfall below it is
    recovered at `rate_below_threshold` (a clawback), at most `max_clawback_share_of_allocation` of the
    allocation. The allocation is elective funding paid up front, as a share of the 2019/20 value, on top of the
    block."""

    monthly_thresholds: list[ErfThreshold] | None = Field(
        default=None, title="Monthly thresholds", description="thresholds by the month they start, judged month by "
                                                              "month")
    threshold_share_of_2019_20: Rate | None = Field(
        default=None, ge=0, le=2, title="Threshold, share of 2019/20",
        description="one threshold judged on the financial year's total")
    allocation_share_of_2019_20: Rate = Field(
        default=0.0, ge=0, le=2, title="Paid up front, share of 2019/20")
    rate_above_threshold: Rate = Field(ge=0, le=10, title="Paid above threshold, share of tariff")
    rate_below_threshold: Rate = Field(default=0.0, ge=0, le=10, title="Recovered below threshold, share of tariff")
    max_clawback_share_of_allocation: Share | None = Field(
        default=None, title="Most recovered, share of up-front", description="none = no limit")
    activity_weights: dict[ActivityLine, Share] = Field(
        title="Lines counted",
        description="share of each activity line the rule counts, in the activity and its 2019/20 baseline alike; "
                    "a line not named counts 0")

    @model_validator(mode="after")
    def _one_kind_of_threshold(self) -> FundingRule:
        if (self.monthly_thresholds is None) == (self.threshold_share_of_2019_20 is None):
            raise ValueError("give either monthly_thresholds (judged month by month) or threshold_share_of_2019_20 "
                             "(judged on the year), not both or neither")
        return self


class Finance(_Model):
    """Costs, income and the deficit: priced from the same simulated activity planners see."""

    costs: FinanceCosts
    tariff: FinanceTariff
    cost_weights: Annotated[dict[ActivityLine, Pounds], AfterValidator(_every_activity_line)] = Field(
        title="Cost weights",
        description="weights of cost-weighted activity, the productivity measure's output")
    activity_2019_20_per_week: Annotated[dict[ActivityLine, SlotsPerWeek], AfterValidator(_every_activity_line)] = (
        Field(title="2019/20 activity a week"))
    funding_rules: dict[FinancialYear, FundingRule] = Field(
        default={}, title="Funding rules by financial year",
        description="elective funding rule of each NHS financial year (YYYY/YY); a year not named has no scheme")
    block_income_per_year: Pounds = Field(ge=0, description="fixed elective income (2021/22 block arrangements)")
    block_income_followups_per_year: Pounds = Field(
        default=0.0, ge=0, title="Block income for follow-ups a year",
        description="fixed income for outpatient follow-ups, paid when the run models them (its weekly table has "
                    "follow-ups), as their costs are")
    underlying_deficit_per_year: Pounds = Field(
        default=0.0, ge=-MAX_POUNDS, description="recurrent deficit before these activities (positive = deficit)")
    recurrent_savings_per_year: Pounds = Field(default=0.0, ge=-MAX_POUNDS,
                                               description="productivity savings the scenario assumes")

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            retired = [k for k in ("erf_thresholds", "erf_rate_of_tariff") if k in data]
            if retired:
                raise ValueError(f"{' and '.join(retired)}: replaced by funding_rules (issue 17): the 2021/22 scheme "
                                 "is funding_rules.2021/22 with monthly_thresholds and rate_above_threshold")
        return data

    @model_validator(mode="after")
    def _thresholds_within_their_year(self) -> Finance:
        for year, rule in self.funding_rules.items():
            first, last = f"{year[:4]}-04", f"{int(year[:4]) + 1}-03"
            months = [t.from_month for t in rule.monthly_thresholds or []]
            for i, month in enumerate(months):
                if not first <= month <= last:
                    raise ValueError(f"funding_rules.{year}.monthly_thresholds.{i}.from_month: {month} is not in "
                                     f"financial year {year} ({first} to {last})")
            if months != sorted(set(months)):
                raise ValueError(f"funding_rules.{year}.monthly_thresholds: expected months in order, each once "
                                 f"(got {', '.join(months)})")
        return self


class RunSettings(_Model):
    """Seed and replications. `replications: auto` runs until the 95% confidence interval of the mean
    52-week clearance is within +/- `target_half_width_weeks` (at least `min_replications`, at most
    `max_replications`; while any replication has not cleared within the horizon it runs on to the cap)."""

    seed: int = Field(ge=0)
    replications: Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"]
    min_replications: int = Field(default=5, ge=2, le=10_000)
    max_replications: int = Field(default=50, ge=2, le=10_000)
    target_half_width_weeks: float = Field(default=2.0, gt=0, le=MAX_WEEKS)

    @model_validator(mode="after")
    def _ordered(self) -> RunSettings:
        return _low_before_high(self, "min_replications", "max_replications")


class Scenario(_Model):
    """A whole scenario, validated. Frozen: the model never changes its inputs."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    title: str
    description: str = ""
    start_date: dt.date
    horizon_weeks: int = Field(ge=1, le=MAX_WEEKS)
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
    specialties: dict[str, Specialty] = Field(max_length=MAX_NAMED)
    sites: dict[str, Site] = Field(max_length=MAX_NAMED)
    boroughs: dict[str, Borough] = Field(max_length=MAX_NAMED)
    referrals: Referrals
    outpatients: Outpatients
    theatre_rules: TheatreRules
    removals: Removals
    start_list: StartList
    targets: Targets | None = None
    delivery: Delivery | None = None
    finance: Finance | None = None
    covid: Covid | None = Field(default=None, title="COVID-19")
    surgical_hubs: SurgicalHubs | None = None
    staff: Staff | None = None
    vaccination: Vaccination | None = None
    patient_choice: PatientChoice | None = Field(default=None, title="Patients who defer")
    further_outpatient_visits: FurtherOutpatientVisits | None = Field(
        default=None, title="Pathways needing a further outpatient visit")
    scarce_resource: ScarceResource | None = Field(default=None, title="Complex cases needing a scarce resource")
    outpatient_follow_ups: OutpatientFollowUps | None = Field(default=None, title="Outpatient follow-ups and PIFU")
    long_wait_booking: LongWaitBooking | None = Field(
        default=None, title="Long waiters booked in turn",
        description="routine patients past a step's weeks booked ahead of other routine patients (with "
                    "priority_then_longest_wait only)")

    parameter_intervals: Derived[tuple[InstanceOf[UncertainParameter], ...]] = Field(
        default=(), exclude=True,
        description="keys given as 80% intervals [low, high], drawn per replication (sim.scenario.validate)")

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
