"""Parameter uncertainty: a number in a scenario may be written as an 80% interval `[low, high]`.

Why: a planner rarely knows the on-the-day cancellation rate or a third wave's peak exactly. Run-to-run noise
(random arrivals, durations, cancellations) is one kind of uncertainty; not knowing the inputs is another, and
a board paper must say which its interval shows. Each interval is drawn once per replication, so replication r
runs a whole simulated future with one plausible set of inputs.

The rule, stated once: the value is drawn from a normal distribution whose 10th and 90th percentiles are `low`
and `high`, truncated to the key's allowed range (e.g. a share stays within 0..1; a count is rounded to a whole
number). Each key has a random stream of its own, keyed by (seed, replication, key), so replication r of every
scenario draws the same percentile for the same key: comparisons stay paired (common random numbers).

Truncation: when a range lies near a bound (a share of [0, 0.2]), cutting off the impossible tail moves every
percentile a little towards the middle of what is allowed, so `low` and `high` are the 10th and 90th
percentiles of the normal before truncation.

Where a scenario expects a list of numbers the list is read as that list, never as an interval; intervals are
recognised only where the schema expects a single number. Some sections refuse ranges (REFUSED, with why).
Every replication's draws are validated like a scenario file before anything runs
(sim.scenario.build.check_draws), so a draw can never break a rule that ties keys together.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from sim.core.rng import Streams

Z_90 = NormalDist().inv_cdf(0.9)          # 1.2816: the 80% interval is mean +/- 1.2816 sd
REFUSED = {
    "run": "the experiment's settings are not inputs",
    "horizon_weeks": "the run's length is not an input",
    "finance": ("finance prices the saved weekly results after the run, at single values; "
                "compare or sweep prices instead"),
    "start_list": "the start list is built once, when the scenario is loaded",
}


@dataclasses.dataclass(frozen=True)
class UncertainParameter:
    """One key given as an 80% interval, with the range the schema allows for it."""

    path: tuple[str | int, ...]
    low: float
    high: float
    integer: bool
    minimum: float = -math.inf        # allowed range (inclusive unless *_exclusive)
    maximum: float = math.inf
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False

    @property
    def key(self) -> str:
        return ".".join(str(p) for p in self.path)

    @property
    def midpoint(self) -> float:
        mid = (self.low + self.high) / 2
        return float(math.floor(mid + 0.5)) if self.integer else mid      # halves up, [2, 3] -> 3

    def value_at(self, percentile: float) -> float:
        """The value at this percentile (0..1) of the truncated normal described in the module docstring."""
        mid = (self.low + self.high) / 2
        sd = (self.high - self.low) / (2 * Z_90)
        if sd == 0:
            return self.midpoint
        unit = NormalDist()
        lo_p = unit.cdf((self.minimum - mid) / sd) if math.isfinite(self.minimum) else 0.0
        hi_p = unit.cdf((self.maximum - mid) / sd) if math.isfinite(self.maximum) else 1.0
        p = min(max(lo_p + percentile * (hi_p - lo_p), 1e-12), 1 - 1e-12)
        value = mid + sd * unit.inv_cdf(p)
        if self.integer:
            value = float(math.floor(value + 0.5))
        return min(max(value, self._smallest_allowed()), self._largest_allowed())

    def _smallest_allowed(self) -> float:
        """The minimum itself, or the next value above it when the bound is exclusive (gt)."""
        if not self.minimum_exclusive:
            return self.minimum
        return self.minimum + 1 if self.integer else math.nextafter(self.minimum, math.inf)

    def _largest_allowed(self) -> float:
        if not self.maximum_exclusive:
            return self.maximum
        return self.maximum - 1 if self.integer else math.nextafter(self.maximum, -math.inf)


class WithIntervals(Protocol):
    """What drawing needs of a scenario (sim.scenario.schema.Scenario, which imports this module): its ranges,
    and a copy with some fields replaced."""

    @property
    def parameter_intervals(self) -> Sequence[UncertainParameter]: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any: ...


ScenarioT = TypeVar("ScenarioT", bound=WithIntervals)


def find_intervals(model: type[BaseModel], raw: Any) -> tuple[Any, list[UncertainParameter], list[str]]:
    """Walk `raw` beside the schema; return (raw with every interval at its midpoint, the intervals, problems).

    Problems are one line each ("key: ..."), without the file name (the caller adds it)."""
    found: list[UncertainParameter] = []
    problems: list[str] = []
    resolved = _walk(model, raw, (), (), found, problems)
    return resolved, found, problems


def with_ends(raw: Any, intervals: Sequence[UncertainParameter], end: str) -> Any:
    """`raw` with every interval at its `low` or `high` end (to check both ends validate together)."""
    out = raw
    for p in intervals:
        value = p.low if end == "low" else p.high
        out = _replace(out, p.path, int(value) if p.integer else float(value))
    return out


def draw_values(intervals: Sequence[UncertainParameter], percentile_for: typing.Callable[[str], float]
                ) -> dict[str, float]:
    """One value per interval; `percentile_for(key)` gives the uniform draw in [0, 1) for that key."""
    return {p.key: p.value_at(percentile_for(p.key)) for p in intervals}


def apply_values(scenario: ScenarioT, intervals: Sequence[UncertainParameter], values: Mapping[str, float]
                 ) -> ScenarioT:
    """A copy of the validated scenario with each uncertain key set to its drawn value (copy-on-write along
    the key's path; sim.scenario.build.check_draws validates the result before a replication runs)."""
    out = scenario
    for p in intervals:
        value = values[p.key]
        out = _replace(out, p.path, int(value) if p.integer else float(value))
    return out


def scenario_for_replication(scenario: ScenarioT, seed: int, replication: int) -> tuple[ScenarioT, dict[str, float]]:
    """The scenario replication r runs (each [low, high] input drawn from its own stream) and the values drawn."""
    intervals = scenario.parameter_intervals
    if not intervals:
        return scenario, {}
    streams = Streams(seed, replication)
    values = draw_values(intervals, lambda key: float(streams.for_unit("parameter_uncertainty", key).random()))
    return apply_values(scenario, intervals, values), values


def without_parameter_uncertainty(scenario: ScenarioT) -> ScenarioT:
    """The scenario with every [low, high] input fixed at its midpoint (the value it was validated with)."""
    fixed: ScenarioT = scenario.model_copy(update={"parameter_intervals": ()})
    return fixed


def intervals_show(intervals: Sequence[UncertainParameter]) -> str:
    """The same in a few words, for the `intervals_show` column of summary tables."""
    keys = [p.key for p in intervals]
    return "run-to-run variation and " + ", ".join(keys) + " (80% ranges)" if keys else "run-to-run variation only"


def describe_uncertainty(intervals: Sequence[UncertainParameter]) -> str:
    """Which kind of uncertainty the intervals show, in a sentence for the headline and the report."""
    if not intervals:
        return ("Intervals show run-to-run variation only (random referrals, case lengths, cancellations, "
                "absences); every input is fixed at the value the scenario states.")
    shown = "; ".join(f"{p.key} {_fmt(p.low)} to {_fmt(p.high)}" for p in intervals[:6])
    more = f"; and {len(intervals) - 6} more" if len(intervals) > 6 else ""
    return (f"Intervals show run-to-run variation and uncertainty in {len(intervals)} input"
            f"{'s' if len(intervals) != 1 else ''} given as 80% ranges, each drawn once per replication "
            f"({shown}{more}).")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) >= 100 else f"{x:g}"


# --- walking the schema --------------------------------------------------------------------------------------

def _strip_optional(annotation: Any) -> Any:
    """X | None -> X; other unions are left as they are (they are never read as intervals)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _unwrap_annotated(annotation: Any, metadata: tuple) -> tuple[Any, tuple]:
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, metadata = args[0], metadata + tuple(args[1:])
    return annotation, metadata


def _bounds(metadata: tuple) -> dict[str, Any]:
    """Allowed range from pydantic/annotated_types constraints (ge/gt/le/lt), looking inside Field infos."""
    out: dict[str, Any] = {}
    items: list[Any] = []
    for m in metadata:
        items.append(m)
        items.extend(getattr(m, "metadata", []) or [])
    for m in items:
        for name, key, exclusive in (("ge", "minimum", False), ("gt", "minimum", True),
                                     ("le", "maximum", False), ("lt", "maximum", True)):
            value = getattr(m, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
                out[f"{key}_exclusive"] = exclusive
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _walk(annotation: Any, raw: Any, path: tuple, metadata: tuple, found: list[UncertainParameter],
          problems: list[str]) -> Any:
    annotation = _strip_optional(annotation)
    annotation, metadata = _unwrap_annotated(annotation, metadata)
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for key, value in raw.items():
            field = annotation.model_fields.get(str(key))
            if field is None:
                continue
            if not path and str(key) in REFUSED:
                inside: list[UncertainParameter] = []
                _walk(field.annotation, value, (key,), tuple(field.metadata), inside, [])
                problems += [f"{p.key}: a [low, high] range is not allowed here ({REFUSED[str(key)]})"
                             for p in inside]
                continue
            out[key] = _walk(field.annotation, value, path + (key,), tuple(field.metadata), found, problems)
        return out
    origin = typing.get_origin(annotation)
    if origin is dict and isinstance(raw, dict):
        value_type = typing.get_args(annotation)[1]
        return {k: _walk(value_type, v, path + (k,), (), found, problems) for k, v in raw.items()}
    if origin is list and isinstance(raw, list):
        item_type = typing.get_args(annotation)[0]
        return [_walk(item_type, v, path + (i,), (), found, problems) for i, v in enumerate(raw)]
    if annotation in (int, float) and isinstance(raw, list):
        key = ".".join(str(p) for p in path)
        if len(raw) != 2 or not all(_is_number(x) for x in raw):
            problems.append(f"{key}: expected a number or an 80% interval [low, high], got a list of "
                            f"{len(raw)} item(s)")
            return raw
        low, high = float(raw[0]), float(raw[1])
        if low > high:
            problems.append(f"{key}: interval [{raw[0]}, {raw[1]}]: expected [low, high] with low <= high")
            return raw
        integer = annotation is int
        if integer and not (low.is_integer() and high.is_integer()):
            problems.append(f"{key}: interval [{raw[0]}, {raw[1]}]: expected whole numbers")
            return raw
        param = UncertainParameter(path=path, low=low, high=high, integer=integer, **_bounds(metadata))
        for end in (low, high):
            if end < param.minimum or (param.minimum_exclusive and end == param.minimum):
                problems.append(f"{key}: interval [{raw[0]}, {raw[1]}]: {end:g} is below the allowed "
                                f"{'minimum (exclusive)' if param.minimum_exclusive else 'minimum'} {param.minimum:g}")
            if end > param.maximum or (param.maximum_exclusive and end == param.maximum):
                problems.append(f"{key}: interval [{raw[0]}, {raw[1]}]: {end:g} is above the allowed "
                                f"{'maximum (exclusive)' if param.maximum_exclusive else 'maximum'} {param.maximum:g}")
        found.append(param)
        return int(param.midpoint) if integer else param.midpoint
    return raw


def _replace(obj: Any, path: tuple, value: Any) -> Any:
    """Copy-on-write along `path` through frozen models, dicts and lists (scenarios and their raw mappings)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, BaseModel):
        return obj.model_copy(update={head: _replace(getattr(obj, head), rest, value)})
    if isinstance(obj, list):
        items = list(obj)
        items[head] = _replace(obj[head], rest, value)
        return items
    if isinstance(obj, dict):
        entries = dict(obj)
        entries[head] = _replace(obj[head], rest, value)
        return entries
    raise TypeError(f"cannot set {path!r} inside {type(obj).__name__}")
