"""Calendar at the model's edges: model time is in days from the start date (a Monday).

Weeks start on Monday; elective referrals and sessions stop on bank holidays. Bank holidays for
England are generated from the statutory rules (with Monday substitution) plus the one-off holidays
announced for 2022 and 2023 (source: GOV.UK "UK bank holidays", England and Wales), so horizons
beyond any fixed list still get them.
"""
from __future__ import annotations

import datetime as dt

# One-off changes (GOV.UK): 2022 spring holiday moved to 2 June plus the Platinum Jubilee on 3 June,
# the State Funeral on 19 September 2022, the Coronation on 8 May 2023.
_EXTRA_HOLIDAYS = {dt.date(2022, 6, 2), dt.date(2022, 6, 3), dt.date(2022, 9, 19), dt.date(2023, 5, 8)}
_MOVED_SPRING = {2022: dt.date(2022, 5, 30)}  # the usual last-Monday-of-May holiday not taken that year
_MOVED_EARLY_MAY = {2020: (dt.date(2020, 5, 4), dt.date(2020, 5, 8))}


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _first_monday(year: int, month: int) -> dt.date:
    d = dt.date(year, month, 1)
    return d + dt.timedelta(days=(7 - d.weekday()) % 7)


def _last_monday(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - dt.timedelta(days=1)
    return d - dt.timedelta(days=d.weekday())


def england_bank_holidays(year: int) -> set[dt.date]:
    """Bank holidays in England and Wales for one year."""
    days: set[dt.date] = set()
    new_year = dt.date(year, 1, 1)
    while new_year.weekday() >= 5:
        new_year += dt.timedelta(days=1)
    days.add(new_year)
    easter = easter_sunday(year)
    days.add(easter - dt.timedelta(days=2))
    days.add(easter + dt.timedelta(days=1))
    early_may = _first_monday(year, 5)
    if year in _MOVED_EARLY_MAY:
        early_may = _MOVED_EARLY_MAY[year][1]
    days.add(early_may)
    spring = _last_monday(year, 5)
    if _MOVED_SPRING.get(year) != spring:
        days.add(spring)
    days.add(_last_monday(year, 8))
    # Christmas and Boxing Day with substitute weekdays.
    christmas, boxing = dt.date(year, 12, 25), dt.date(year, 12, 26)
    if christmas.weekday() == 5:      # Saturday: Mon 27 and Tue 28
        days |= {dt.date(year, 12, 27), dt.date(year, 12, 28)}
    elif christmas.weekday() == 6:    # Sunday: Mon 26 (Boxing) and Tue 27
        days |= {boxing, dt.date(year, 12, 27)}
    elif christmas.weekday() == 4:    # Friday: Boxing Day Saturday -> Monday 28
        days |= {christmas, dt.date(year, 12, 28)}
    else:
        days |= {christmas, boxing}
    days |= {d for d in _EXTRA_HOLIDAYS if d.year == year}
    return days


def bank_holiday_days(start: dt.date, n_days: int, extra: tuple[dt.date, ...] = (),
                      statutory: bool = True) -> set[int]:
    """Model days (0 = start date) that are bank holidays within [start, start + n_days)."""
    end = start + dt.timedelta(days=n_days)
    holidays: set[dt.date] = set(extra)
    if statutory:
        for year in range(start.year, end.year + 1):
            holidays |= england_bank_holidays(year)
    return {(d - start).days for d in holidays if start <= d < end}


def nhs_financial_year(d: dt.date) -> str:
    """NHS financial year label, April to March, e.g. 2021-06-07 -> '2021/22'."""
    first = d.year if d.month >= 4 else d.year - 1
    return f"{first}/{(first + 1) % 100:02d}"


def month_key(d: dt.date) -> str:
    """The calendar month of a date as `YYYY-MM`, the form scenario files name months in."""
    return f"{d.year:04d}-{d.month:02d}"


def multipliers_by_day(start: dt.date, n_days: int, by_month: dict[str, float]) -> list[float]:
    """The multiplier in force on each model day: `by_month[YYYY-MM]` for the day's calendar month, else 1.0."""
    if not by_month:
        return [1.0] * n_days
    return [by_month.get(month_key(start + dt.timedelta(days=day)), 1.0) for day in range(n_days)]
