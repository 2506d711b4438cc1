"""The NHS calendar on its own: England's bank holidays, model-day offsets of holidays, NHS financial years.

Expected dates are GOV.UK's published bank holidays for England and Wales, written out by hand here.
"""
from __future__ import annotations

import datetime as dt

import pytest

from sim.core.nhs_calendar import bank_holiday_days, easter_sunday, england_bank_holidays, nhs_financial_year

pytestmark = pytest.mark.unit

D = dt.date


@pytest.mark.parametrize("year, expected", [
    (2019, D(2019, 4, 21)), (2020, D(2020, 4, 12)), (2021, D(2021, 4, 4)), (2022, D(2022, 4, 17)),
    (2023, D(2023, 4, 9)), (2024, D(2024, 3, 31)), (2025, D(2025, 4, 20)), (2026, D(2026, 4, 5)),
    (2027, D(2027, 3, 28)),
    (2038, D(2038, 4, 25)),    # the latest date Easter can fall on
    (2285, D(2285, 3, 22)),    # the earliest
])
def test_easter_sunday(year, expected):
    seen = easter_sunday(year)
    assert seen == expected, f"Easter Sunday {year}: expected {expected}, saw {seen}"


GOV_UK = {
    2019: [D(2019, 1, 1), D(2019, 4, 19), D(2019, 4, 22), D(2019, 5, 6), D(2019, 5, 27), D(2019, 8, 26),
           D(2019, 12, 25), D(2019, 12, 26)],
    # early May holiday moved to Friday 8 May (VE Day); Boxing Day on a Saturday -> Monday 28th
    2020: [D(2020, 1, 1), D(2020, 4, 10), D(2020, 4, 13), D(2020, 5, 8), D(2020, 5, 25), D(2020, 8, 31),
           D(2020, 12, 25), D(2020, 12, 28)],
    # Christmas on a Saturday, Boxing Day on a Sunday -> Monday 27th and Tuesday 28th
    2021: [D(2021, 1, 1), D(2021, 4, 2), D(2021, 4, 5), D(2021, 5, 3), D(2021, 5, 31), D(2021, 8, 30),
           D(2021, 12, 27), D(2021, 12, 28)],
    # New Year's Day on a Saturday -> Monday 3rd; spring holiday moved to Thursday 2 June plus the Platinum
    # Jubilee on Friday 3 June; the Queen's State Funeral on 19 September; Christmas on a Sunday -> Tuesday 27th
    2022: [D(2022, 1, 3), D(2022, 4, 15), D(2022, 4, 18), D(2022, 5, 2), D(2022, 6, 2), D(2022, 6, 3),
           D(2022, 8, 29), D(2022, 9, 19), D(2022, 12, 26), D(2022, 12, 27)],
    # New Year's Day on a Sunday -> Monday 2nd; the Coronation on Monday 8 May
    2023: [D(2023, 1, 2), D(2023, 4, 7), D(2023, 4, 10), D(2023, 5, 1), D(2023, 5, 8), D(2023, 5, 29),
           D(2023, 8, 28), D(2023, 12, 25), D(2023, 12, 26)],
    2024: [D(2024, 1, 1), D(2024, 3, 29), D(2024, 4, 1), D(2024, 5, 6), D(2024, 5, 27), D(2024, 8, 26),
           D(2024, 12, 25), D(2024, 12, 26)],
    2025: [D(2025, 1, 1), D(2025, 4, 18), D(2025, 4, 21), D(2025, 5, 5), D(2025, 5, 26), D(2025, 8, 25),
           D(2025, 12, 25), D(2025, 12, 26)],
    # Christmas on a Friday, Boxing Day on a Saturday -> Monday 28th
    2026: [D(2026, 1, 1), D(2026, 4, 3), D(2026, 4, 6), D(2026, 5, 4), D(2026, 5, 25), D(2026, 8, 31),
           D(2026, 12, 25), D(2026, 12, 28)],
    2027: [D(2027, 1, 1), D(2027, 3, 26), D(2027, 3, 29), D(2027, 5, 3), D(2027, 5, 31), D(2027, 8, 30),
           D(2027, 12, 27), D(2027, 12, 28)],
}


@pytest.mark.parametrize("year", sorted(GOV_UK))
def test_bank_holidays_match_gov_uk(year):
    seen = england_bank_holidays(year)
    expected = set(GOV_UK[year])
    assert seen == expected, (f"{year}: expected {sorted(expected)}; missing {sorted(expected - seen)}, "
                              f"unexpected {sorted(seen - expected)}")


def test_every_bank_holiday_is_a_weekday_and_a_usual_year_has_eight():
    """Substitute days move every weekend holiday to a weekday; only the one-off years differ from eight.

    From 2013: the module knows the one-off changes of 2020, 2022 and 2023, not the earlier ones (2002, 2011, 2012),
    which lie before any scenario's start."""
    one_off = {2020: 8, 2022: 10, 2023: 9}     # 2020 moved a holiday rather than adding one
    for year in range(2013, 2101):
        days = england_bank_holidays(year)
        weekend = sorted(d for d in days if d.weekday() >= 5)
        assert not weekend, f"{year}: expected no bank holiday on a weekend, saw {weekend}"
        expected = one_off.get(year, 8)
        assert len(days) == expected, f"{year}: expected {expected} bank holidays, saw {len(days)}: {sorted(days)}"


def test_bank_holiday_days_are_offsets_from_the_start_within_a_half_open_window():
    start = D(2021, 12, 20)                     # a Monday
    seen = bank_holiday_days(start, 30)
    expected = {(d - start).days for d in (D(2021, 12, 27), D(2021, 12, 28), D(2022, 1, 3))}
    assert seen == expected == {7, 8, 14}, f"expected days 7, 8 and 14 (27, 28 Dec, 3 Jan), saw {sorted(seen)}"
    assert bank_holiday_days(start, 7) == set(), "the window's end day (27 Dec, day 7) is outside it"
    assert bank_holiday_days(start, 8) == {7}, "a window of 8 days ends on day 7 (27 Dec)"
    assert bank_holiday_days(D(2021, 12, 27), 1) == {0}, "a holiday on the start date is day 0"


def test_bank_holiday_days_over_the_default_first_year():
    start = D(2021, 6, 7)                       # the baseline scenario's start date
    holidays = [D(2021, 8, 30), D(2021, 12, 27), D(2021, 12, 28), D(2022, 1, 3), D(2022, 4, 15),
                D(2022, 4, 18), D(2022, 5, 2), D(2022, 6, 2), D(2022, 6, 3)]
    expected = {(d - start).days for d in holidays}
    seen = bank_holiday_days(start, 364)
    assert seen == expected, f"expected {sorted(expected)}, saw {sorted(seen)}"


def test_extra_closures_are_added_and_statutory_ones_can_be_left_out():
    start = D(2021, 6, 7)
    local = (D(2021, 6, 9), D(2023, 1, 1))      # the second is outside the window
    with_extra = bank_holiday_days(start, 100, extra=local)
    assert with_extra == {2, 84}, f"expected the local closure (day 2) and 30 Aug (day 84), saw {sorted(with_extra)}"
    only_extra = bank_holiday_days(start, 100, extra=local, statutory=False)
    assert only_extra == {2}, f"expected only the local closure (day 2) without statutory holidays, saw {only_extra}"


@pytest.mark.parametrize("date, expected", [
    (D(2022, 3, 31), "2021/22"),
    (D(2022, 4, 1), "2022/23"),
    (D(2021, 6, 7), "2021/22"),
    (D(2022, 1, 1), "2021/22"),
    (D(1999, 4, 1), "1999/00"),                # the two-digit end year wraps at the century
])
def test_nhs_financial_year_turns_on_1_april(date, expected):
    seen = nhs_financial_year(date)
    assert seen == expected, f"{date}: expected financial year {expected}, saw {seen}"
