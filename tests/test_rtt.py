"""Tests for sim/scenario/rtt_extract.py: the RTT Full CSV reader, checked against a real extract and synthetic files.

Expected values are computed independently from the CSV with the csv module (no sim code), and cross-checked
against figures read off the file by hand (RBD, November 2024: Part_2 total 21,702; over 18 weeks 9,163).
"""
from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from sim.scenario.rtt_extract import RttDataError, load_rtt, map_specialties, spread_open_band

pytestmark = pytest.mark.unit

REAL = Path(__file__).resolve().parent / "data" / "rtt" / "20241130-RTT-November-2024-RBD.csv"
BAND_LOWER = re.compile(r"^Gt (\d+) (?:To \d+ )?Weeks SUM 1$")
DESCRIPTIVE = ["Period", "Provider Parent Org Code", "Provider Parent Name", "Provider Org Code", "Provider Org Name",
               "Commissioner Parent Org Code", "Commissioner Parent Name", "Commissioner Org Code",
               "Commissioner Org Name", "RTT Part Type", "RTT Part Description", "Treatment Function Code",
               "Treatment Function Name"]


def _rows(path: Path = REAL) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _n(cell: str) -> int:
    return int(cell) if cell.strip() else 0


@pytest.fixture(scope="module")
def extract():
    return load_rtt(REAL)


# --- real extract -----------------------------------------------------------------------------------------


def test_period_parsed(extract):
    assert extract.period_label == "RTT-November-2024", \
        f"expected label 'RTT-November-2024', saw {extract.period_label!r}"
    assert extract.period == date(2024, 11, 1), f"expected period 2024-11-01, saw {extract.period}"
    assert extract.census_date == date(2024, 11, 30), f"expected census 2024-11-30, saw {extract.census_date}"
    assert extract.providers == ("RBD",), f"expected providers ('RBD',), saw {extract.providers}"
    assert extract.open_band_lower_weeks == 104, f"expected open band at 104 weeks, saw {extract.open_band_lower_weeks}"


@pytest.mark.parametrize("part", ["Part_1A", "Part_1B", "Part_2", "Part_2A", "Part_3"])
def test_totals_reproduce_file_total_all(extract, part):
    by_tfc: dict[str, int] = defaultdict(int)
    c999 = 0
    for r in _rows():
        if r["RTT Part Type"] != part:
            continue
        if r["Treatment Function Code"] == "C_999":
            c999 += _n(r["Total All"])
        else:
            by_tfc[r["Treatment Function Code"].removeprefix("C_")] += _n(r["Total All"])
    table = extract.totals(part)
    seen = {code: int(v) for code, v in table["RBD"].items() if code != "Total"}
    assert seen == dict(by_tfc), f"{part}: expected Total All by treatment function {dict(by_tfc)}, saw {seen}"
    assert int(table.loc["Total", "RBD"]) == c999, \
        f"{part}: expected provider total {c999} (sum of C_999 rows), saw {int(table.loc['Total', 'RBD'])}"
    frame = extract.parts[part]
    assert "999" not in frame.index.get_level_values(1), f"{part}: the C_999 total row should be dropped"


def test_part2_provider_total_known_value(extract):
    seen = int(extract.totals("Part_2").loc["Total", "RBD"])
    assert seen == 21702, f"expected RBD Part_2 waiting list 21702 (read off the file), saw {seen}"


@pytest.mark.parametrize("part", ["Part_1A", "Part_1B", "Part_2", "Part_2A"])
def test_week_columns_add_up_to_total_all(extract, part):
    frame = extract.parts[part]
    weeks = frame[list(extract.week_columns)].sum(axis=1) + frame["unknown_clock_start"]
    bad = frame.index[weeks != frame["total_all"]].tolist()
    assert not bad, f"{part}: expected weeks + unknown = total_all on every row, differs for {bad}"
    assert len(extract.week_columns) == 104 + 52, \
        f"expected 104 one-week bands + 52 spread weeks = 156 columns, saw {len(extract.week_columns)}"


@pytest.mark.parametrize("weeks", [18, 52, 78, 104])
def test_part2_counts_over_weeks_match_file(extract, weeks):
    expected = 0
    expected_c999 = 0
    for r in _rows():
        if r["RTT Part Type"] != "Part_2":
            continue
        n = sum(_n(v) for k, v in r.items() if (m := BAND_LOWER.match(k)) and int(m.group(1)) >= weeks)
        if r["Treatment Function Code"] == "C_999":
            expected_c999 += n
        else:
            expected += n
    assert expected == expected_c999, f"file check: specialties {expected} vs C_999 {expected_c999} over {weeks} weeks"
    seen = extract.counts_over("Part_2", weeks)
    assert int(seen["RBD"]) == expected, f"over {weeks} weeks: expected {expected} for RBD, saw {int(seen['RBD'])}"
    assert int(seen["Total"]) == expected, f"over {weeks} weeks: expected total {expected}, saw {int(seen['Total'])}"


def test_part2_over_18_known_value(extract):
    seen = extract.counts_over("Part_2", 18).to_dict()
    assert seen == {"RBD": 9163, "Total": 9163}, f"expected 9163 over 18 weeks (read off the file), saw {seen}"
    seen52 = int(extract.counts_over("Part_2", 52)["Total"])
    assert seen52 == 647, f"expected 647 over 52 weeks, saw {seen52}"


def test_part3_clock_starts(extract):
    frame = extract.parts["Part_3"]
    assert list(frame.columns) == ["unknown_clock_start", "total_all"], \
        f"expected Part_3 columns [unknown_clock_start, total_all], saw {list(frame.columns)}"
    expected = sum(_n(r["Total All"]) for r in _rows()
                   if r["RTT Part Type"] == "Part_3" and r["Treatment Function Code"] != "C_999")
    assert int(frame["total_all"].sum()) == expected == 5003, \
        f"expected 5003 clock starts (sum of Total All), saw {int(frame['total_all'].sum())} (file: {expected})"
    assert int(frame.loc[("RBD", "110"), "total_all"]) == 409, \
        f"expected 409 T&O clock starts, saw {int(frame.loc[('RBD', '110'), 'total_all'])}"
    with pytest.raises(ValueError):
        extract.counts_over("Part_3", 18)


# --- filtering and specialty mapping --------------------------------------------------------------------------


def test_filter_by_provider_and_commissioner(extract):
    same = load_rtt(REAL, providers=["RBD"])
    assert same.parts["Part_2"].equals(extract.parts["Part_2"]), "expected providers=['RBD'] to equal no filter"

    for code, column in (("W2U3Z", "Commissioner Org Code"), ("QRV", "Commissioner Parent Org Code")):
        expected = sum(_n(r["Total All"]) for r in _rows() if r["RTT Part Type"] == "Part_2"
                       and r[column] == code and r["Treatment Function Code"] != "C_999")
        seen = int(load_rtt(REAL, commissioners=[code]).totals("Part_2").loc["Total", "RBD"])
        assert seen == expected, f"commissioners=[{code!r}]: expected Part_2 total {expected}, saw {seen}"
        assert 0 < seen < 21702, f"commissioners=[{code!r}]: expected a proper subset of 21702, saw {seen}"


def test_filter_keeps_only_requested_providers(tmp_path):
    path = _write_synthetic(tmp_path, [
        _banded("RAA", "07W", "Part_2", "C_110", {0: 5, 60: 2}, open_count=3),
        _banded("RAA", "07W", "Part_2", "C_999", {0: 5, 60: 2}, open_count=3),
        _banded("RBB", "07W", "Part_2", "C_110", {1: 4}),
    ], bands_to=104)
    ext = load_rtt(path, providers=["RBB"])
    assert ext.providers == ("RBB",), f"expected only RBB, saw {ext.providers}"
    idx = ext.parts["Part_2"].index.tolist()
    assert idx == [("RBB", "110")], f"expected index [('RBB', '110')], saw {idx}"
    both = load_rtt(path)
    over = both.counts_over("Part_2", 1).to_dict()
    assert over == {"RAA": 5, "RBB": 4, "Total": 9}, f"expected over-1-week counts RAA 5, RBB 4, total 9, saw {over}"


def test_map_specialties_with_unmapped_report(extract):
    mapping = {"110": "trauma_orthopaedics", "C_130": "ophthalmology", "X02": "medical_other"}
    frame, report = map_specialties(extract, mapping)
    totals = frame["total_all"].to_dict()
    assert totals[("RBD", "trauma_orthopaedics")] == 3439, f"expected T&O 3439, saw {totals}"
    assert totals[("RBD", "ophthalmology")] == 2633, f"expected ophthalmology 2633, saw {totals}"
    assert totals[("RBD", "medical_other")] == 1313, f"expected X02 1313, saw {totals}"
    assert int(frame["total_all"].sum()) == 21702, \
        f"expected mapping to keep 21702, saw {int(frame['total_all'].sum())}"

    expected_codes = {"100", "101", "120", "140", "300", "301", "320", "330", "340", "410", "430", "502",
                      "X04", "X05", "X06"}
    assert set(report["code"]) == expected_codes, \
        f"expected unmapped {sorted(expected_codes)}, saw {list(report['code'])}"
    assert int(report["count"].sum()) == totals[("RBD", "other")] == 21702 - 3439 - 2633 - 1313, \
        f"expected unmapped counts to add to 'other' ({totals[('RBD', 'other')]}), saw {int(report['count'].sum())}"
    ent = report.set_index("code").loc["120"]
    assert (ent["name"], int(ent["count"])) == ("Ear Nose and Throat Service", 3298), \
        f"expected ('Ear Nose and Throat Service', 3298) for 120, saw {(ent['name'], int(ent['count']))}"
    assert report["count"].is_monotonic_decreasing, f"expected report largest first, saw {list(report['count'])}"

    weeks = frame[list(extract.week_columns)].sum(axis=1) + frame["unknown_clock_start"]
    assert (weeks == frame["total_all"]).all(), "expected mapped week columns to still add up to total_all"

    frame2, _ = map_specialties(extract.parts["Part_2"], mapping, other="rest")
    assert int(frame2.loc[("RBD", "rest"), "total_all"]) == totals[("RBD", "other")], \
        "expected a plain frame to map the same as the extract"


# --- synthetic files ------------------------------------------------------------------------------------------


def _banded(provider, commissioner, part, tfc, weeks: dict[int, int], open_count=0, unknown=0) -> dict:
    return {"provider": provider, "commissioner": commissioner, "part": part, "tfc": tfc, "weeks": weeks,
            "open": open_count, "unknown": unknown}


def _write_synthetic(tmp_path: Path, rows: list[dict], bands_to: int = 52, period: str = "RTT-MARCH-2021",
                     name: str = "synthetic.csv", open_band: bool = True, overrides: dict | None = None) -> Path:
    """An RTT Full CSV with one-week bands up to `bands_to` and an open band `Gt {bands_to} Weeks SUM 1`."""
    bands = [f"Gt {k:02d} To {k + 1:02d} Weeks SUM 1" for k in range(bands_to)]
    if open_band:
        bands.append(f"Gt {bands_to} Weeks SUM 1")
    header = DESCRIPTIVE + bands + ["Total", "Patients with unknown clock start date", "Total All"]
    lines = [header]
    for r in rows:
        desc = [period, "QXX", "PARENT", r["provider"], f"{r['provider']} TRUST", "QYY", "ICB", r["commissioner"],
                "COMMISSIONER", r["part"], "desc", r["tfc"], f"Function {r['tfc']}"]
        if r["part"] == "Part_3":
            lines.append(desc + [""] * len(bands) + ["", "", str(r["open"])])
            continue
        cells = ["" if not r["weeks"].get(k) else str(r["weeks"][k]) for k in range(bands_to)]
        if open_band:
            cells.append(str(r["open"]))
        total = sum(r["weeks"].values()) + r["open"]
        lines.append(desc + cells + [str(total), str(r["unknown"]), str(total + r["unknown"])])
    for (row, col), value in (overrides or {}).items():
        lines[row][header.index(col)] = value
    path = tmp_path / name
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(lines)
    return path


def test_pre_april_2021_file_spreads_open_band_and_keeps_totals(tmp_path):
    rows = [
        _banded("RAA", "07W", "Part_2", "C_110", {0: 10, 17: 3, 18: 4, 51: 2}, open_count=1000, unknown=5),
        _banded("RAA", "08C", "Part_2", "C_110", {3: 1}, open_count=7),
        _banded("RAA", "07W", "Part_2", "X02", {51: 1}, open_count=1),
        _banded("RAA", "07W", "Part_2", "C_999", {0: 10, 17: 3, 18: 4, 51: 3}, open_count=1001, unknown=5),
        _banded("RAA", "08C", "Part_2", "C_999", {3: 1}, open_count=7),
        _banded("RAA", "07W", "Part_1A", "C_110", {2: 6}, open_count=2),
        _banded("RAA", "07W", "Part_3", "C_110", {}, open_count=44),
    ]
    path = _write_synthetic(tmp_path, rows)
    ext = load_rtt(path)
    assert ext.period == date(2021, 3, 1), f"expected RTT-MARCH-2021 -> 2021-03-01, saw {ext.period}"
    assert ext.open_band_lower_weeks == 52, f"expected open band at 52 weeks, saw {ext.open_band_lower_weeks}"
    assert ext.week_columns == tuple(range(104)), \
        f"expected weeks 0..103, saw {ext.week_columns[0]}..{ext.week_columns[-1]}"

    p2 = ext.parts["Part_2"]
    to = p2.loc[("RAA", "110")]
    assert int(to["total_all"]) == 1019 + 5 + 8, f"expected T&O total_all 1032, saw {int(to['total_all'])}"
    spread = int(to[list(range(52, 104))].sum())
    assert spread == 1007, f"expected the open bands (1000 + 7) spread exactly over weeks 52..103, saw {spread}"
    assert int(to[17]) == 3 and int(to[18]) == 4 and int(to[51]) == 2, "expected one-week bands copied unchanged"
    spread = to[list(range(52, 104))].to_numpy()
    assert (np.diff(spread) <= 0).all(), f"expected a non-increasing (geometric) spread, saw {spread.tolist()}"
    assert spread[0] > spread[-1] > 0, f"expected first spread week > last > 0, saw {spread[0]}, {spread[-1]}"

    assert int(ext.totals("Part_2").loc["Total", "RAA"]) == 1032 + 2, "expected Part_2 total 1034 (= C_999 rows)"
    over = ext.counts_over("Part_2", 18).to_dict()
    assert over == {"RAA": 4 + 2 + 1007 + 1 + 1, "Total": 1015}, f"expected 1015 over 18 weeks, saw {over}"
    assert int(ext.counts_over("Part_2", 52)["Total"]) == 1008, "expected over 52 weeks = the whole open band (1008)"
    assert int(ext.parts["Part_3"].loc[("RAA", "110"), "total_all"]) == 44, "expected 44 Part_3 clock starts"
    assert int(ext.parts["Part_1A"].loc[("RAA", "110"), "total_all"]) == 8, "expected Part_1A total 8"

    again = load_rtt(path)
    assert again.parts["Part_2"].equals(p2), "expected the spread to be deterministic (same file, same result)"
    short = load_rtt(path, open_band_spread_weeks=10)
    assert short.week_columns == tuple(range(62)), \
        f"expected weeks 0..61 with a 10-week spread, saw {len(short.week_columns)}"
    s = short.parts["Part_2"]
    sums = (s[list(short.week_columns)].sum(axis=1) + s["unknown_clock_start"]).tolist()
    assert sums == s["total_all"].tolist(), \
        f"expected totals kept with a 10-week spread, saw {sums} vs {s['total_all'].tolist()}"


def test_spread_open_band_keeps_counts():
    counts = np.array([0, 1, 7, 51, 52, 1000, 123457])
    out = spread_open_band(counts, 52)
    assert out.dtype == np.int64 and out.shape == (7, 52), f"expected int64 (7, 52), saw {out.dtype} {out.shape}"
    assert out.sum(axis=1).tolist() == counts.tolist(), \
        f"expected row sums {counts.tolist()}, saw {out.sum(axis=1).tolist()}"
    assert (out >= 0).all(), "expected no negative weeks"
    assert out[1].tolist() == [1] + [0] * 51, f"expected a single patient in the first week, saw {out[1].tolist()}"
    with pytest.raises(ValueError):
        load_rtt(REAL, open_band_spread_weeks=0)


def test_spread_rule_is_geometric_halving_every_quarter_of_the_spread():
    out = spread_open_band(np.array([1000]), 52)[0]
    w = 2.0 ** (-4 * np.arange(52) / 52)
    exact = 1000 * w / w.sum()
    assert (np.abs(out - exact) < 1).all(), \
        f"expected each week within 1 of its share {exact.round(2).tolist()}, saw {out.tolist()}"
    assert (out[0], out[13], out[-1]) == (55, 28, 4), \
        (f"expected weeks 0, 13, 51 = 55, 28, 4 (shares 55.38, 27.69, 3.65: halving every 13 weeks), "
         f"saw {(out[0], out[13], out[-1])}")


# --- bad data -------------------------------------------------------------------------------------------------


def _problems(path, **kwargs) -> list[str]:
    with pytest.raises(RttDataError) as info:
        load_rtt(path, **kwargs)
    problems = info.value.problems
    assert problems, "expected at least one problem in RttDataError.problems"
    for p in problems:
        assert p.startswith(str(path)), f"expected every problem to name the file {path}, saw {p!r}"
    return problems


def test_not_an_rtt_file(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("Period,Provider Org Code,a,b\nRTT-May-2024,RBD,1,2\n")
    problems = _problems(path)
    text = "\n".join(problems)
    assert "not an RTT Full CSV" in text and "'RTT Part Type'" in text and "'Treatment Function Code'" in text, \
        f"expected 'not an RTT Full CSV' naming missing columns, saw {problems}"
    assert "'Provider Org Code'" not in text, f"expected present columns not to be listed as missing, saw {problems}"


def test_unreadable_file(tmp_path):
    missing = tmp_path / "absent.csv"
    problems = _problems(missing)
    assert "cannot read" in problems[0], f"expected 'cannot read' for a missing file, saw {problems}"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "cannot read" in _problems(empty)[0], "expected 'cannot read' for an empty file"


def test_provider_or_commissioner_with_no_rows():
    problems = _problems(REAL, providers=["RYJ", "RBD", "RQM"])
    assert len(problems) == 1, f"expected one problem, saw {problems}"
    assert "'RYJ', 'RQM'" in problems[0] and "the file has providers 'RBD'" in problems[0], \
        f"expected the absent codes RYJ, RQM and the file's provider RBD named, saw {problems[0]!r}"
    problems = _problems(REAL, commissioners=["ZZZ99"])
    assert "'ZZZ99'" in problems[0] and "'00V'" in problems[0] and "(46 in all)" in problems[0], \
        f"expected the absent commissioner and the file's commissioners listed, saw {problems[0]!r}"


@pytest.mark.parametrize("value, words", [("-3", "negative count '-3'"), ("abc", "non-numeric count 'abc'"),
                                          ("2.5", "count not a whole number '2.5'")])
def test_bad_counts_name_column_and_line(tmp_path, value, words):
    rows = [_banded("RAA", "07W", "Part_2", "C_110", {0: 1}),
            _banded("RAA", "07W", "Part_2", "C_120", {5: 2})]
    path = _write_synthetic(tmp_path, rows, overrides={(2, "Gt 05 To 06 Weeks SUM 1"): value})
    problems = _problems(path)
    assert any("line 3" in p and "'Gt 05 To 06 Weeks SUM 1'" in p and words in p for p in problems), \
        f"expected a problem naming line 3, column 'Gt 05 To 06 Weeks SUM 1' and {words!r}, saw {problems}"


def test_missing_band_columns(tmp_path):
    path = tmp_path / "nobands.csv"
    header = DESCRIPTIVE + ["Total", "Patients with unknown clock start date", "Total All"]
    row = ["RTT-May-2024", "QXX", "P", "RAA", "T", "QYY", "I", "07W", "C", "Part_2", "d", "C_110", "F", "1", "", "1"]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, row])
    problems = _problems(path)
    assert any("no week-band columns" in p for p in problems), f"expected 'no week-band columns', saw {problems}"


def test_gap_in_bands_and_inconsistent_totals(tmp_path):
    rows = [_banded("RAA", "07W", "Part_2", "C_110", {0: 1})]
    path = _write_synthetic(tmp_path, rows, overrides={(1, "Total All"): "9"})
    problems = _problems(path)
    assert any("line 2" in p and "'Total All' is 9" in p for p in problems), \
        f"expected line 2 Total All 9 vs bands 1 reported, saw {problems}"

    gap = tmp_path / "gap.csv"
    text = _write_synthetic(tmp_path, rows, name="full.csv").read_text().replace("Gt 10 To 11 Weeks SUM 1,", "X,")
    gap.write_text(text)
    problems = _problems(gap)
    assert any("not contiguous" in p and "[10]" in p for p in problems), \
        f"expected missing week 10 reported, saw {problems}"

    wide = tmp_path / "wide.csv"
    wide.write_text(text.replace("X,", "Gt 10 To 12 Weeks SUM 1,").replace("Gt 11 To 12 Weeks SUM 1,", "Y,"))
    problems = _problems(wide)
    assert any("'Gt 10 To 12 Weeks SUM 1' spans 2 weeks" in p for p in problems), \
        f"expected a two-week band reported, saw {problems}"


def test_provider_total_row_and_duplicate_rows_are_checked(tmp_path):
    rows = [_banded("RAA", "07W", "Part_2", "C_110", {0: 1}),
            _banded("RAA", "07W", "Part_2", "C_999", {0: 2})]
    problems = _problems(_write_synthetic(tmp_path, rows))
    assert any("'RAA' Part_2" in p and "add up to 1" in p and "say 2" in p for p in problems), \
        f"expected specialties (1) vs C_999 (2) reported, saw {problems}"
    dup = [_banded("RAA", "07W", "Part_2", "C_110", {0: 1})] * 2
    problems = _problems(_write_synthetic(tmp_path, dup, name="dup.csv"))
    assert any("line 3" in p and "repeats an earlier row" in p for p in problems), \
        f"expected the repeated row on line 3 reported, saw {problems}"
