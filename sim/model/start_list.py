"""The waiting list on the start date, by weeks waited, specialty, priority, site and stage.

Two forms (exactly one per scenario, see `sim.scenario.schema.StartList`):
- `bands`: hand-written counts per weeks-waited band, with specialty, site and stage drawn from shares.
- `rtt_csv`: an NHS England RTT Full CSV (`sim.scenario.rtt_extract`). The incomplete pathways (`Part_2`) become the list with
  their exact counts per provider x treatment function x whole week waited; providers map to sites and treatment
  functions to specialties (unmapped ones to `other_specialty`, reported in the notes). `Part_2A` (decision to
  admit) go on the admitted list, the rest await a first outpatient appointment. Pathways with an unknown clock
  start are left out (their count is reported in the notes). Priorities, which RTT data lacks, come from
  `priority_mix`. `Part_3` (clock starts) can calibrate referrals_per_week, and `Part_1A`/`Part_1B` (completed
  pathways) the provider sites' theatre sessions and clinic slots (`apply_rtt_calibration`, sim.scenario.calibration).
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario.schema import PRIORITIES, Scenario
from sim.model.patients import WAITING_ADMITTED, WAITING_OUTPATIENT
from sim.model.referrals import PathwayParameters, _categorical, _cumulative, draw_pathways
from sim.core.rng import Streams


def start_list_history_days(scenario: Scenario) -> int:
    """How far back the oldest starting clock can be, in days."""
    rtt = scenario.start_list.rtt
    if rtt is not None:
        return 7 * rtt.n_weeks + 8
    bands = scenario.start_list.bands or []
    return int(7 * max((b.to_weeks for b in bands), default=0)) + 8


def draw_start_list(scenario: Scenario, streams: Streams, params: PathwayParameters) -> tuple[dict, np.ndarray]:
    """Attributes of every pathway on the list at day 0, and each one's status (stage).

    Counts per weeks-waited band are exact; within a band the days waited are uniform. Specialty,
    site and priority follow the shares stated in the scenario; by default (`referral_shares`) patients
    awaiting outpatients split like referrals and those on the admitted list like referrals that need an
    operation (referral share x admitted share).
    """
    sl = scenario.start_list
    if sl.rtt is not None:
        return _draw_rtt_start_list(scenario, streams, params, sl.rtt)
    rng = streams["start_list"]
    specs = scenario.specialty_names
    n_total = sum(b.count for b in sl.bands or [])
    if n_total == 0:
        return {}, np.zeros(0, dtype=np.uint8)

    waited_days = np.concatenate([rng.integers(int(7 * b.from_weeks) + 1, int(7 * b.to_weeks) + 1, b.count)
                                  for b in sl.bands])
    admitted_share = np.concatenate([np.full(b.count, b.admitted_share) for b in sl.bands])

    on_admitted_list = rng.random(n_total) < admitted_share
    u_specialty = rng.random(n_total)
    if sl.specialty_shares == "referral_shares":
        # Awaiting outpatients: like referrals. On the admitted list: like referrals that need an operation.
        referral = np.array([scenario.specialties[s].referral_share for s in specs])
        surgical = referral * params.admitted_share
        cum_outpatient = _cumulative(referral)
        cum_admitted = _cumulative(surgical / surgical.sum()) if surgical.sum() > 0 else cum_outpatient
        rows = np.where(on_admitted_list[:, None], cum_admitted[None, :], cum_outpatient[None, :])
    else:
        given = np.array([sl.specialty_shares.get(s, 0.0) for s in specs])
        rows = np.broadcast_to(_cumulative(given), (n_total, len(specs)))
    specialty = _categorical(u_specialty, rows)

    pops = np.array([b.population for b in scenario.boroughs.values()], dtype=float)
    borough = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(pops / pops.sum()), (n_total, len(pops))))
    if sl.site_shares == "referral_shares":
        site = _categorical(rng.random(n_total), params.site_cum_by_borough[borough])
    else:
        shares = np.array([sl.site_shares.get(s, 0.0) for s in scenario.site_names])
        site = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(shares), (n_total, len(shares))))

    return _finish_start_list(streams, params, rng, sl.priority_mix, specialty, borough, site, waited_days,
                              on_admitted_list)


def _finish_start_list(streams: Streams, params: PathwayParameters, rng: np.random.Generator, priority_mix: Any,
                       specialty: np.ndarray, borough: np.ndarray, site: np.ndarray, waited_days: np.ndarray,
                       on_admitted_list: np.ndarray) -> tuple[dict, np.ndarray]:
    """Shared by both kinds of start list: priorities (a stated mix, or each specialty's), the stage, and
    every other attribute drawn as for a new referral (removal time conditional on the weeks waited)."""
    n_total = len(specialty)
    if priority_mix == "specialty":
        priority = _categorical(rng.random(n_total), params.priority_cum[specialty])
    else:
        mix = np.array([priority_mix.get(p, 0.0) for p in PRIORITIES])
        priority = _categorical(rng.random(n_total), np.broadcast_to(_cumulative(mix), (n_total, 4)))
    # Those still awaiting outpatients get the usual chance of needing an operation.
    needs_operation = on_admitted_list | (rng.random(n_total) < params.admitted_share[specialty])
    attrs = draw_pathways(streams, params, specialty, borough, -waited_days.astype(np.int64),
                          waited_weeks=waited_days / 7.0, site=site, priority=priority,
                          needs_operation=needs_operation)
    status = np.where(on_admitted_list, WAITING_ADMITTED, WAITING_OUTPATIENT).astype(np.uint8)
    return attrs, status


# --------------------------------------------------------------------------------------------------
# Start list from an RTT Full CSV
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RttStartList:
    """The start list read from an RTT file: exact counts by site x specialty x stage x whole week waited.

    `cells` holds (site, specialty, outpatient_by_week, admitted_by_week); week k means "Gt k To k+1 Weeks",
    i.e. 7k+1 .. 7k+7 days waited at the census date. Equality is by `key` (file identity and options), so two
    loads of one scenario compare equal.
    """

    source: Path
    period_label: str
    census_date: dt.date
    n_weeks: int
    cells: tuple[tuple[str, str, np.ndarray, np.ndarray], ...]
    unknown_clock_start: int          # Part_2 pathways with an unknown clock start: left out of the list
    unmapped: tuple[tuple[str, str, int], ...]   # (code, name, Part_2 count) sent to the other specialty
    other_specialty: str
    clock_starts_in_month: int        # Part_3 for the selected providers, all treatment functions
    notes: tuple[str, ...]
    key: tuple
    # Completed pathways in the month by (site, specialty, admitted Part_1A, non-admitted Part_1B), mapped like
    # the list; patients with an unknown clock start are counted (they were treated all the same).
    completions: tuple[tuple[str, str, int, int], ...] = ()
    calibrated_sites: tuple[str, ...] = ()   # every site an RTT provider of the selection is put at

    def completions_at(self, site: str) -> tuple[dict[str, int], dict[str, int]]:
        """(Part_1A by specialty, Part_1B by specialty) for one site; specialties without completions absent."""
        admitted = {spec: a for s, spec, a, _ in self.completions if s == site and a}
        non_admitted = {spec: b for s, spec, _, b in self.completions if s == site and b}
        return admitted, non_admitted

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RttStartList) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def total(self) -> int:
        return int(sum(int(op.sum()) + int(adm.sum()) for _, _, op, adm in self.cells))

    @property
    def admitted_total(self) -> int:
        return int(sum(int(adm.sum()) for _, _, _, adm in self.cells))

    def count_from_week(self, week: int) -> int:
        """Pathways in bands "Gt k To k+1 Weeks" with k >= week (both stages)."""
        return int(sum(int(op[week:].sum()) + int(adm[week:].sum()) for _, _, op, adm in self.cells))


def rtt_referrals_per_week(rtt: RttStartList, advice_and_guidance_share: float) -> float:
    """Referral requests a week implied by the month's clock starts: Part_3 x 12 / 52, grossed up for the share
    of requests that advice and guidance diverts (the model's clock starts are requests x (1 - share))."""
    if advice_and_guidance_share >= 1:
        raise ValueError("referrals.advice_and_guidance_share is 1: no referral rate reproduces the clock starts")
    return round(rtt.clock_starts_in_month * 12 / 52 / (1 - advice_and_guidance_share), 1)


def apply_rtt_calibration(scenario: Scenario, raw: dict | None = None, source: Any = None
                          ) -> tuple[Scenario, dict | None]:
    """The scenario (and its plain mapping, if given, so the resolved scenario saved with a run carries the values)
    with what the RTT file calibrates: referrals.referrals_per_week from the clock starts if
    start_list.calibrate_referrals_from_rtt, and the provider sites' theatre sessions and first outpatient slots
    from the completed pathways if start_list.calibrate_treatment_from_rtt (sim.scenario.calibration). Unchanged
    otherwise."""
    sl = scenario.start_list
    if sl.rtt is None:
        return scenario, raw
    _refuse_ranges_on_calibrated_keys(scenario, source)
    if sl.calibrate_referrals_from_rtt:
        value = rtt_referrals_per_week(sl.rtt, scenario.referrals.advice_and_guidance_share)
        referrals = scenario.referrals.model_copy(update={"referrals_per_week": value})
        scenario = scenario.model_copy(update={"referrals": referrals})
        if raw is not None:
            import copy
            raw = copy.deepcopy(raw)
            raw.setdefault("referrals", {})["referrals_per_week"] = value
    if sl.calibrate_treatment_from_rtt:
        from sim.scenario.calibration import apply_treatment_calibration
        scenario, raw = apply_treatment_calibration(scenario, raw)
    return scenario, raw


def _refuse_ranges_on_calibrated_keys(scenario: Scenario, source: Any) -> None:
    """A [low, high] range is the scenario setting a value, and a calibration sets it from the file: both at
    once would leave the saved scenario and the notes saying one thing and the run doing another."""
    sl = scenario.start_list
    calibrated: list[tuple[str, str]] = []
    if sl.calibrate_referrals_from_rtt:
        calibrated.append(("referrals.referrals_per_week", "calibrate_referrals_from_rtt"))
    if sl.calibrate_treatment_from_rtt:
        calibrated.append(("specialties.", "calibrate_treatment_from_rtt"))
        for site in sl.rtt.calibrated_sites:
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
        from sim.scenario.schema import ScenarioError
        raise ScenarioError(problems)


def start_list_notes(scenario: Scenario) -> list[str]:
    """What the RTT start list did (file, totals, unmapped treatment functions, unknown clock starts, the
    referral and treatment calibrations): one line each, for the command line and the manifest. Empty for a
    `bands` list."""
    sl = scenario.start_list
    rtt = sl.rtt
    if rtt is None:
        return []
    notes = list(rtt.notes)
    gap = (scenario.start_date - rtt.census_date).days
    if abs(gap) > 7:
        notes.append(f"start_list: the run starts {scenario.start_date} but the file's census is {rtt.census_date} "
                     f"({gap:+d} days): waits are counted as at the start date, so they are {abs(gap) // 7} weeks "
                     f"{'shorter' if gap > 0 else 'longer'} than they would be")
    if sl.calibrate_referrals_from_rtt:
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
    if sl.calibrate_treatment_from_rtt:
        from sim.scenario.calibration import treatment_calibration_notes
        notes.extend(treatment_calibration_notes(scenario))
    return notes


@functools.lru_cache(maxsize=16)
def _load_extract_cached(path: str, mtime_ns: int, size: int, providers: tuple[str, ...] | None,
                         commissioners: tuple[str, ...] | None, spread: int):
    from sim.scenario.rtt_extract import load_rtt
    return load_rtt(path, providers=providers, commissioners=commissioners, open_band_spread_weeks=spread)


def load_rtt_cached(path: Path, providers=None, commissioners=None, spread: int = 52):
    """`sim.scenario.rtt_extract.load_rtt`, cached on the file's identity (a scenario is loaded more than once per command)."""
    stat = path.stat()
    def codes(arg):
        return None if arg is None else tuple(str(c).strip().upper() for c in ([arg] if isinstance(arg, str) else arg))
    return _load_extract_cached(str(path), stat.st_mtime_ns, stat.st_size, codes(providers), codes(commissioners),
                                int(spread))


def resolve_rtt_csv(rtt_csv: str, source: Any) -> Path:
    """rtt_csv as an absolute path: relative paths are read from the scenario file's folder."""
    path = Path(rtt_csv).expanduser()
    if not path.is_absolute():
        base = Path(str(source)).parent if source is not None else Path(".")
        path = base / path
    return path.resolve()


def _problems(lines: list[str], source: Any) -> ValueError:
    """One ValueError for several problems. Pydantic prefixes the first line with the scenario file and
    `start_list`; the others get the same prefix here, so every printed line stands on its own."""
    prefix = f"{source}: start_list: " if source is not None else "start_list: "
    return ValueError("\n".join([lines[0]] + [prefix + line for line in lines[1:]]))


def build_rtt_start_list(sl: Any, context: dict | None = None) -> RttStartList:
    """Read `sl.rtt_csv` (a StartList) into an RttStartList, or raise ValueError with one line per problem.

    Called by StartList's validator with pydantic's validation context: `source` (the scenario file, for
    relative paths) and `raw` (the whole scenario mapping, to check sites and specialties), passed by
    `sim.scenario.validate.validate`.
    """
    from sim.scenario.rtt_extract import RttDataError, map_specialties, spread_open_band

    context = context or {}
    source, raw = context.get("source"), context.get("raw")
    raw = raw if isinstance(raw, dict) else {}
    specialties = raw.get("specialties") if isinstance(raw.get("specialties"), dict) else {}
    sites = raw.get("sites") if isinstance(raw.get("sites"), dict) else {}
    problems: list[str] = []

    path = resolve_rtt_csv(sl.rtt_csv, source)
    if not path.is_file():
        raise ValueError(f"rtt_csv: file {path} not found (a relative path is read from the scenario file's "
                         "folder)")
    provider_sites_given = sl.provider_sites
    if provider_sites_given is None and sites:  # default: each site's trust_code is its RTT provider code
        codes = [str(site.get("trust_code", "")).strip().upper() for site in sites.values() if isinstance(site, dict)]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"provider_sites: required here: sites share trust_code {', '.join(dupes)}")
        provider_sites_given = {str(site.get("trust_code")): name for name, site in sites.items()
                                if isinstance(site, dict) and site.get("trust_code")}
    if not provider_sites_given:
        raise ValueError("provider_sites: required with rtt_csv (which model site each RTT provider code is)")
    provider_sites = {str(k).strip().upper(): v for k, v in provider_sites_given.items()}
    providers = [str(p).strip().upper() for p in (sl.providers or list(provider_sites))]
    if not providers:
        raise ValueError("providers: give at least one provider code")
    if sites:
        for code, site in provider_sites.items():
            if site not in sites:
                problems.append(f"provider_sites.{code}: unknown site {site!r} (known: {', '.join(sites)})")
    mapping = sl.specialty_for_treatment_function
    mapping_note = ""
    if mapping is None:
        if not specialties:
            raise ValueError("specialty_for_treatment_function: required with rtt_csv (treatment function code -> "
                             "specialty)")
        mapping = {str(s.get("treatment_function_code")): name for name, s in specialties.items()
                   if isinstance(s, dict) and s.get("treatment_function_code") is not None}
        mapping_note = " (by each specialty's treatment_function_code)"
    if specialties:
        for code, spec in mapping.items():
            if spec not in specialties:
                problems.append(f"specialty_for_treatment_function.{code}: unknown specialty {spec!r} "
                                f"(known: {', '.join(specialties)})")
    if problems:
        raise _problems(problems, source)

    try:
        extract = load_rtt_cached(path, providers, sl.commissioners, sl.open_band_spread_weeks)
    except RttDataError as exc:
        raise _problems([f"rtt_csv: {p}" for p in exc.problems], source) from None
    missing_sites = [p for p in extract.providers if p not in provider_sites]
    if missing_sites:
        raise ValueError(f"provider_sites: no site for provider(s) {', '.join(missing_sites)} found in {path} "
                         "(map every provider code the file gives for the selection)")

    weeks = list(extract.week_columns)
    n_weeks = len(weeks)
    lower = extract.open_band_lower_weeks if extract.open_band_lower_weeks is not None else n_weeks
    part2, part2a = extract.part("Part_2"), extract.part("Part_2A")
    p2a_on_p2 = part2a.reindex(part2.index, fill_value=0)
    extra_rows = part2a.index.difference(part2.index)
    for prov, tfc in extra_rows:
        problems.append(f"{path}: provider {prov} treatment function {tfc}: Part_2A (decision to admit) rows "
                        "but no Part_2 row")
    closed2, closed2a = part2[weeks[:lower]].to_numpy(), p2a_on_p2[weeks[:lower]].to_numpy()
    bad = np.argwhere(closed2a > closed2)
    for i, k in bad[:20]:
        prov, tfc = part2.index[i]
        problems.append(f"{path}: provider {prov} treatment function {tfc}, week band {k}-{k + 1}: Part_2A "
                        f"({closed2a[i, k]}) exceeds Part_2 ({closed2[i, k]})")
    open2 = part2[weeks[lower:]].to_numpy().sum(axis=1)
    open2a = p2a_on_p2[weeks[lower:]].to_numpy().sum(axis=1)
    for i in np.flatnonzero(open2a > open2)[:20]:
        prov, tfc = part2.index[i]
        problems.append(f"{path}: provider {prov} treatment function {tfc}, open band: Part_2A ({open2a[i]}) "
                        f"exceeds Part_2 ({open2[i]})")
    if problems:
        raise _problems([f"rtt_csv: {p}" for p in problems], source)

    other = sl.other_specialty or "other"
    mapped2, report = map_specialties(part2, mapping, other=other)
    mapped2a, _ = map_specialties(part2a, mapping, other=other)
    mapped2a = mapped2a.reindex(mapped2.index, fill_value=0)
    if len(report) and specialties and other not in specialties:
        codes = ", ".join(report["code"])
        raise ValueError(f"other_specialty: {other!r} is not a specialty of the scenario, but treatment functions "
                         f"{codes} are not in specialty_for_treatment_function (known: {', '.join(specialties)})")

    # Site x specialty: admitted = Part_2A; outpatient = Part_2 - Part_2A. In the open top band the two stages
    # are each spread again from their band totals, so each stage's count there is exact.
    cells: dict[tuple[str, str], list[np.ndarray]] = {}
    spread = sl.open_band_spread_weeks
    for (prov, spec), row in mapped2.iterrows():
        w2 = row[weeks].to_numpy(dtype=np.int64)
        w2a = mapped2a.loc[(prov, spec), weeks].to_numpy(dtype=np.int64)
        adm = w2a.copy()
        op = w2 - w2a
        if lower < n_weeks:
            op[lower:] = spread_open_band(np.array([w2[lower:].sum() - w2a[lower:].sum()]), n_weeks - lower)[0]
            adm[lower:] = spread_open_band(np.array([w2a[lower:].sum()]), n_weeks - lower)[0]
        key = (provider_sites[prov], spec)
        if key in cells:
            cells[key][0] = cells[key][0] + op
            cells[key][1] = cells[key][1] + adm
        else:
            cells[key] = [op, adm]

    completions = _completions_by_site(extract, provider_sites, mapping, other)
    calibrated_sites = tuple(sorted({provider_sites[p] for p in extract.providers}))
    if sl.calibrate_treatment_from_rtt:
        _check_completions(path, extract, provider_sites, mapping, other, specialties, source)

    unknown = int(part2["unknown_clock_start"].sum())
    unknown_adm = int(part2a["unknown_clock_start"].sum())
    clock_starts = int(extract.part("Part_3")["total_all"].sum())
    unmapped = tuple((str(c), str(n), int(k)) for c, n, k in zip(report["code"], report["name"],
                                                                  report["count"]))
    result_cells = tuple((site, spec, op, adm) for (site, spec), (op, adm) in sorted(cells.items()))
    total = sum(int(op.sum() + adm.sum()) for _, _, op, adm in result_cells)
    admitted = sum(int(adm.sum()) for _, _, _, adm in result_cells)
    notes = [f"start_list.rtt_csv: {path} ({extract.period_label}, census {extract.census_date.isoformat()}): "
             f"{total:,} pathways waiting ({admitted:,} with a decision to admit) for "
             + ", ".join(f"{p} -> {provider_sites[p]}" for p in extract.providers)
             + (" (sites by trust_code)" if sl.provider_sites is None else "")
             + f"; treatment functions mapped to specialties{mapping_note}"]
    if unmapped:
        notes.append(f"start_list.other_specialty: {len(unmapped)} treatment function(s) not in the mapping went "
                     f"to {other!r}: " + "; ".join(f"{c} {n} ({k:,})" for c, n, k in unmapped))
    if unknown:
        notes.append(f"start_list: {unknown:,} pathways with an unknown clock start ({unknown_adm:,} admitted) "
                     "left out of the start list")
    if extract.open_band_lower_weeks is not None:
        notes.append(f"start_list: the open band 'Gt {extract.open_band_lower_weeks} Weeks' is spread over "
                     f"{spread} weeks (sim.scenario.rtt_extract.spread_open_band)")
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, tuple(providers), tuple(sl.commissioners or ()),
           tuple(sorted(provider_sites.items())), tuple(sorted(mapping.items())), other, spread)
    return RttStartList(source=path, period_label=extract.period_label, census_date=extract.census_date,
                        n_weeks=n_weeks, cells=result_cells, unknown_clock_start=unknown,
                        unmapped=unmapped, other_specialty=other,
                        clock_starts_in_month=clock_starts, notes=tuple(notes), key=key,
                        completions=completions, calibrated_sites=calibrated_sites)


COMPLETED_PARTS: dict[str, str] = {"Part_1A": "completed admitted pathways",
                                   "Part_1B": "completed non-admitted pathways"}


def _completions_by_site(extract: Any, provider_sites: dict[str, str], mapping: dict[str, str],
                         other: str) -> tuple[tuple[str, str, int, int], ...]:
    """Part_1A and Part_1B `total_all` summed to (site, specialty) with the start list's mapping."""
    from sim.scenario.rtt_extract import map_specialties

    counts: dict[tuple[str, str], list[int]] = {}
    for j, part in enumerate(COMPLETED_PARTS):
        mapped, _ = map_specialties(extract, mapping, other=other, part=part)
        for (prov, spec), n in mapped["total_all"].items():
            counts.setdefault((provider_sites[prov], spec), [0, 0])[j] += int(n)
    return tuple((site, spec, a, b) for (site, spec), (a, b) in sorted(counts.items()))


def _check_completions(path: Path, extract: Any, provider_sites: dict[str, str], mapping: dict[str, str],
                       other: str, specialties: dict, source: Any) -> None:
    """calibrate_treatment_from_rtt needs Part_1A and Part_1B rows at every calibrated site, and a specialty
    for every treatment function they hold; otherwise one line per problem naming the file."""
    from sim.scenario.rtt_extract import map_specialties

    problems = []
    for part, what in COMPLETED_PARTS.items():
        have = set(extract.part(part).index.get_level_values(0))
        for site in sorted(set(provider_sites[p] for p in extract.providers)):
            providers = [p for p in extract.providers if provider_sites[p] == site]
            if not have & set(providers):
                problems.append(f"calibrate_treatment_from_rtt: {path} has no {part} ({what}) rows for provider(s) "
                                f"{', '.join(providers)} (site {site}), so the site's "
                                f"{'theatre sessions' if part == 'Part_1A' else 'outpatient slots'} cannot be "
                                "calibrated; use a file with completed pathways or set "
                                "calibrate_treatment_from_rtt: false")
        _, report = map_specialties(extract, mapping, other=other, part=part)
        if len(report) and specialties and other not in specialties:
            problems.append(f"other_specialty: {other!r} is not a specialty of the scenario, but {part} treatment "
                            f"functions {', '.join(report['code'])} are not in specialty_for_treatment_function "
                            f"(known: {', '.join(specialties)})")
    if problems:
        raise _problems(problems, source)


def _draw_rtt_start_list(scenario: Scenario, streams: Streams, params: PathwayParameters,
                         rtt: RttStartList) -> tuple[dict, np.ndarray]:
    """Exact counts per site x specialty x stage x week; days waited uniform inside each week band
    (band k: 7k+1 .. 7k+7 days); borough by population x the borough's share of referrals to that site."""
    sl = scenario.start_list
    rng = streams["start_list"]
    spec_index = {s: i for i, s in enumerate(scenario.specialty_names)}
    site_index = {s: i for i, s in enumerate(scenario.site_names)}
    unknown = sorted({site for site, _, _, _ in rtt.cells if site not in site_index}
                     | {spec for _, spec, _, _ in rtt.cells if spec not in spec_index})
    if unknown:
        raise ValueError(f"start list from {rtt.source}: sites/specialties {', '.join(unknown)} are not in the "
                         "scenario")
    week_idx = np.arange(rtt.n_weeks)
    weeks, site, spec, admitted = [], [], [], []
    for site_name, spec_name, op, adm in rtt.cells:
        for stage, counts in ((False, op), (True, adm)):
            w = np.repeat(week_idx, counts)
            weeks.append(w)
            site.append(np.full(len(w), site_index[site_name], dtype=np.int64))
            spec.append(np.full(len(w), spec_index[spec_name], dtype=np.int64))
            admitted.append(np.full(len(w), stage, dtype=bool))
    weeks_arr = np.concatenate(weeks) if weeks else np.zeros(0, dtype=np.int64)
    n_total = len(weeks_arr)
    if n_total == 0:
        return {}, np.zeros(0, dtype=np.uint8)
    site_arr, specialty, on_admitted_list = np.concatenate(site), np.concatenate(spec), np.concatenate(admitted)
    waited_days = 7 * weeks_arr + rng.integers(1, 8, n_total)

    pops = np.array([b.population for b in scenario.boroughs.values()], dtype=float)
    share = np.array([[b.referred_site_shares.get(s, 0.0) for s in scenario.site_names]
                      for b in scenario.boroughs.values()])
    weight = pops[:, None] * share                       # borough x site
    col = weight.sum(axis=0)
    weight = np.where(col[None, :] > 0, weight / np.where(col > 0, col, 1)[None, :], (pops / pops.sum())[:, None])
    cum_by_site = _cumulative(weight.T)                  # site x borough
    borough = _categorical(rng.random(n_total), cum_by_site[site_arr])

    return _finish_start_list(streams, params, rng, sl.priority_mix, specialty, borough, site_arr, waited_days,
                              on_admitted_list)


def embed_rtt_csv_path(raw: dict, path: Path) -> dict:
    """A copy of the plain scenario mapping with start_list.rtt_csv made absolute (read from the scenario file's
    folder), so the resolved scenario saved with a run still finds the file. For `sim.scenario.build.load_scenario`,
    beside `embed_covid_series`: `raw = embed_rtt_csv_path(raw, path)`."""
    sl = raw.get("start_list")
    if not isinstance(sl, dict) or not isinstance(sl.get("rtt_csv"), str):
        return raw
    import copy
    out = copy.deepcopy(raw)
    out["start_list"]["rtt_csv"] = str(resolve_rtt_csv(sl["rtt_csv"], path))
    return out
