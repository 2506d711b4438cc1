"""The waiting list on the start date read from an RTT Full CSV: exact counts by site x specialty x stage x week.

Rules (sim.scenario.rtt_extract reads the file):
- The incomplete pathways (`Part_2`) of the selected providers become the list, with their exact counts per
  provider x treatment function x whole week waited. `Part_2A` (decision to admit) go on the admitted list, the
  rest await a first outpatient appointment; in the open top band each stage is spread again from its own band
  total, so each stage's count there is exact.
- Providers map to sites (by default each site's trust_code is its provider code) and treatment functions to
  specialties (by default each specialty's treatment_function_code); unmapped treatment functions go to
  `other_specialty`, and the notes name them.
- Pathways with an unknown clock start are left out (their count is in the notes).
- The completed pathways (`Part_1A`, `Part_1B`) and clock starts (`Part_3`) are kept, mapped the same way, for the
  calibrations (sim.scenario.calibration).

Nothing here knows the scenario schema: sim.scenario.build passes the start list's settings and the scenario's
sites and specialties in, after the scenario has validated. The model draws the list's patients
(sim.model.start_list).
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.scenario.input_files import MAX_RTT_CSV_BYTES, InputFileError, check_regular_file, resolve_path
from sim.scenario.rtt_extract import RttDataError, RttExtract, load_rtt, map_specialties, spread_open_band

COMPLETED_PARTS: dict[str, str] = {"Part_1A": "completed admitted pathways",
                                   "Part_1B": "completed non-admitted pathways"}
DEFAULT_OTHER_SPECIALTY = "other"


class RttStartListError(Exception):
    """An RTT file that does not fit the start list's settings; `problems` holds one line per problem, each
    starting with the start_list key it concerns (`rtt_csv: ...`, `other_specialty: ...`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


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


def resolve_rtt_csv(rtt_csv: str, source: Path | str | None) -> Path:
    """rtt_csv as an absolute path: relative paths are read from the scenario file's folder."""
    path = Path(rtt_csv).expanduser()
    if not path.is_absolute():
        base = Path(str(source)).parent if source is not None else Path(".")
        path = base / path
    return resolve_path(path)


@functools.lru_cache(maxsize=16)
def _load_extract_cached(path: str, mtime_ns: int, size: int, providers: tuple[str, ...] | None,
                         commissioners: tuple[str, ...] | None, spread: int) -> RttExtract:
    return load_rtt(path, providers=providers, commissioners=commissioners, open_band_spread_weeks=spread)


def load_rtt_cached(path: Path, providers: Sequence[str] | str | None = None,
                    commissioners: Sequence[str] | str | None = None, spread: int = 52) -> RttExtract:
    """`sim.scenario.rtt_extract.load_rtt`, cached on the file's identity (a command may build one scenario
    more than once, and backtest reads its start month again)."""
    stat = path.stat()

    def codes(arg: Sequence[str] | str | None) -> tuple[str, ...] | None:
        return None if arg is None else tuple(str(c).strip().upper() for c in ([arg] if isinstance(arg, str) else arg))
    return _load_extract_cached(str(path), stat.st_mtime_ns, stat.st_size, codes(providers), codes(commissioners),
                                int(spread))


def read_rtt_start_list(path: Path, *, site_trust_codes: Mapping[str, str], specialty_codes: Mapping[str, str],
                        provider_sites: Mapping[str, str] | None = None, providers: Sequence[str] | None = None,
                        commissioners: Sequence[str] | None = None,
                        specialty_for_treatment_function: Mapping[str, str] | None = None,
                        other_specialty: str | None = None, open_band_spread_weeks: int = 52,
                        with_completions: bool = False) -> RttStartList:
    """Read the RTT file at `path` into the start list's counts (module rules), or raise RttStartListError.

    `site_trust_codes` and `specialty_codes` are the scenario's sites and specialties with their codes: the
    defaults of `provider_sites` and `specialty_for_treatment_function`. The other arguments are the start list's
    settings of the same name. `with_completions` (calibrate_treatment_from_rtt) also requires completed
    pathways for every site the selection is put at.
    """
    try:
        check_regular_file(path, MAX_RTT_CSV_BYTES, "an RTT Full CSV file")
    except InputFileError as exc:
        if exc.reason.startswith("no such file"):
            raise RttStartListError([f"rtt_csv: file {path} not found (a relative path is read from the scenario "
                                     "file's folder)"]) from None
        raise RttStartListError([f"rtt_csv: {path}: {exc.reason}"]) from None
    sites_by_trust_code = provider_sites is None
    if provider_sites is None:
        provider_sites = {code: site for site, code in site_trust_codes.items() if code}
    if not provider_sites:
        raise RttStartListError(["provider_sites: required with rtt_csv (which model site each RTT provider code "
                                 "is)"])
    sites_of = {str(code).strip().upper(): site for code, site in provider_sites.items()}
    selected = [str(p).strip().upper() for p in (providers or list(sites_of))]
    mapping_note = ""
    if specialty_for_treatment_function is None:
        specialty_for_treatment_function = {code: spec for spec, code in specialty_codes.items()}
        mapping_note = " (by each specialty's treatment_function_code)"
    mapping = dict(specialty_for_treatment_function)
    specialties = list(specialty_codes)
    other = other_specialty or DEFAULT_OTHER_SPECIALTY
    spread = open_band_spread_weeks

    try:
        extract = load_rtt_cached(path, selected, commissioners, spread)
    except RttDataError as exc:
        raise RttStartListError([f"rtt_csv: {p}" for p in exc.problems]) from None
    missing_sites = [p for p in extract.providers if p not in sites_of]
    if missing_sites:
        raise RttStartListError([f"provider_sites: no site for provider(s) {', '.join(missing_sites)} found in "
                                 f"{path} (map every provider code the file gives for the selection)"])

    weeks = list(extract.week_columns)
    n_weeks = len(weeks)
    lower = extract.open_band_lower_weeks if extract.open_band_lower_weeks is not None else n_weeks
    part2, part2a = extract.part("Part_2"), extract.part("Part_2A")
    _check_admitted_within_waiting(path, part2, part2a, weeks, lower)

    mapped2, report = map_specialties(part2, mapping, other=other)
    mapped2a, _ = map_specialties(part2a, mapping, other=other)
    mapped2a = mapped2a.reindex(mapped2.index, fill_value=0)
    if len(report) and specialties and other not in specialties:
        codes = ", ".join(report["code"])
        raise RttStartListError([f"other_specialty: {other!r} is not a specialty of the scenario, but treatment "
                                 f"functions {codes} are not in specialty_for_treatment_function (known: "
                                 f"{', '.join(specialties)})"])

    # Site x specialty: admitted = Part_2A; outpatient = Part_2 - Part_2A. In the open top band the two stages
    # are each spread again from their band totals, so each stage's count there is exact.
    cells: dict[tuple[str, str], list[np.ndarray]] = {}
    for (prov, spec), row in mapped2.iterrows():
        w2 = row[weeks].to_numpy(dtype=np.int64)
        w2a = mapped2a.loc[(prov, spec), weeks].to_numpy(dtype=np.int64)
        adm = w2a.copy()
        op = w2 - w2a
        if lower < n_weeks:
            op[lower:] = spread_open_band(np.array([w2[lower:].sum() - w2a[lower:].sum()]), n_weeks - lower)[0]
            adm[lower:] = spread_open_band(np.array([w2a[lower:].sum()]), n_weeks - lower)[0]
        cell = (sites_of[prov], spec)
        if cell in cells:
            cells[cell][0] = cells[cell][0] + op
            cells[cell][1] = cells[cell][1] + adm
        else:
            cells[cell] = [op, adm]

    completions = _completions_by_site(extract, sites_of, mapping, other)
    calibrated_sites = tuple(sorted({sites_of[p] for p in extract.providers}))
    if with_completions:
        _check_completions(path, extract, sites_of, mapping, other, specialties)

    unknown = int(part2["unknown_clock_start"].sum())
    unknown_adm = int(part2a["unknown_clock_start"].sum())
    clock_starts = int(extract.part("Part_3")["total_all"].sum())
    unmapped = tuple((str(c), str(n), int(k)) for c, n, k in zip(report["code"], report["name"],
                                                                  report["count"], strict=True))
    result_cells = tuple((site, spec, op, adm) for (site, spec), (op, adm) in sorted(cells.items()))
    total = sum(int(op.sum() + adm.sum()) for _, _, op, adm in result_cells)
    admitted = sum(int(adm.sum()) for _, _, _, adm in result_cells)
    notes = [f"start_list.rtt_csv: {path} ({extract.period_label}, census {extract.census_date.isoformat()}): "
             f"{total:,} pathways waiting ({admitted:,} with a decision to admit) for "
             + ", ".join(f"{p} -> {sites_of[p]}" for p in extract.providers)
             + (" (sites by trust_code)" if sites_by_trust_code else "")
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
    key = (str(path), stat.st_mtime_ns, stat.st_size, tuple(selected), tuple(commissioners or ()),
           tuple(sorted(sites_of.items())), tuple(sorted(mapping.items())), other, spread)
    return RttStartList(source=path, period_label=extract.period_label, census_date=extract.census_date,
                        n_weeks=n_weeks, cells=result_cells, unknown_clock_start=unknown,
                        unmapped=unmapped, other_specialty=other,
                        clock_starts_in_month=clock_starts, notes=tuple(notes), key=key,
                        completions=completions, calibrated_sites=calibrated_sites)


def _check_admitted_within_waiting(path: Path, part2: pd.DataFrame, part2a: pd.DataFrame, weeks: list,
                                   lower: int) -> None:
    """Part_2A (decision to admit) is a subset of Part_2: every row and week band must say so."""
    problems: list[str] = []
    p2a_on_p2 = part2a.reindex(part2.index, fill_value=0)
    for prov, tfc in part2a.index.difference(part2.index):
        problems.append(f"{path}: provider {prov} treatment function {tfc}: Part_2A (decision to admit) rows "
                        "but no Part_2 row")
    closed2, closed2a = part2[weeks[:lower]].to_numpy(), p2a_on_p2[weeks[:lower]].to_numpy()
    for i, k in np.argwhere(closed2a > closed2)[:20]:
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
        raise RttStartListError([f"rtt_csv: {p}" for p in problems])


def _completions_by_site(extract: RttExtract, sites_of: Mapping[str, str], mapping: Mapping[str, str],
                         other: str) -> tuple[tuple[str, str, int, int], ...]:
    """Part_1A and Part_1B `total_all` summed to (site, specialty) with the start list's mapping."""
    counts: dict[tuple[str, str], list[int]] = {}
    for j, part in enumerate(COMPLETED_PARTS):
        mapped, _ = map_specialties(extract, mapping, other=other, part=part)
        for (prov, spec), n in mapped["total_all"].items():
            counts.setdefault((sites_of[prov], spec), [0, 0])[j] += int(n)
    return tuple((site, spec, a, b) for (site, spec), (a, b) in sorted(counts.items()))


def _check_completions(path: Path, extract: RttExtract, sites_of: Mapping[str, str], mapping: Mapping[str, str],
                       other: str, specialties: Sequence[str]) -> None:
    """calibrate_treatment_from_rtt needs Part_1A and Part_1B rows at every calibrated site, and a specialty
    for every treatment function they hold; otherwise one line per problem naming the file."""
    problems = []
    for part, what in COMPLETED_PARTS.items():
        have = set(extract.part(part).index.get_level_values(0))
        for site in sorted(set(sites_of[p] for p in extract.providers)):
            providers = [p for p in extract.providers if sites_of[p] == site]
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
        raise RttStartListError(problems)
