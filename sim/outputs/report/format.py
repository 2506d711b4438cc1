"""Numbers, dates and money as a board paper writes them: 17 Oct 2022, 1,234, 12.5%, £3.4m.

One formatter per kind, used by every output (report.md, report.html, report.docx, results.xlsx's Summary sheet),
so the same number reads the same in each: a date is `fmt_date`, an amount in millions `fmt_millions`."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt_date(d: dt.date | None) -> str:
    """1 Aug 2022: day, short month, year, the British order. Short months keep the summary table's dates on one
    line in a Word page; written out here rather than with strftime's %b, which follows the machine's locale."""
    return "" if d is None else f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def fmt_date_range(low: dt.date | None, high: dt.date | None) -> str:
    """4 Jul to 1 Aug 2022; 6 Dec 2021 to 3 Jan 2022 (the year once when both ends share it)."""
    if low is None or high is None:
        return fmt_date(low) or fmt_date(high)
    if low.year == high.year:
        return f"{low.day} {MONTHS[low.month - 1]} to {fmt_date(high)}"
    return f"{fmt_date(low)} to {fmt_date(high)}"


def fmt_int(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:,.0f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    """Thousands separators; up to `digits` decimals, trailing zeros dropped."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    text = f"{x:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return fmt_num(100 * x, digits) + "%"


def fmt_millions(x: float | None) -> str:
    """Money in £ million to one decimal, a minus sign (−) before the £: £303.3m, −£1.2m, £0.0m; "–" when missing
    or not finite."""
    if x is None or not np.isfinite(x):
        return "–"
    text = f"£{abs(x) / 1e6:,.1f}m"
    return text if x >= 0 or text == "£0.0m" else "−" + text


def fmt_pounds(x: float | None) -> str:
    """An amount of money: £1m or more in £ million to one decimal (fmt_millions), less in pounds (£2,200;
    £12.50)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if abs(x) >= 1e6:
        return fmt_millions(x)
    sign, amount = ("−" if x < 0 else ""), abs(x)
    return f"{sign}£{amount:,.0f}" if float(amount).is_integer() else f"{sign}£{amount:,.2f}"


def fmt_weeks(x: float) -> str:
    v = fmt_num(abs(x), 1)
    return f"{v} week" + ("" if v == "1" else "s")


def fmt_difference(x: float) -> str:
    """A paired difference in weeks: negative is sooner."""
    if round(x, 1) == 0:
        return "in the same week"
    return f"{fmt_weeks(x)} {'sooner' if x < 0 else 'later'}"


def plural_noun(word: str, n: int) -> str:
    if n == 1:
        return word
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        return word[:-1] + "ies"
    return word + "s"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def humanise(key: str) -> str:
    return str(key).replace("_", " ").strip().capitalize()


def money(value: float, kind: str) -> str:
    """A finance table cell: "money" in £ million to one decimal, "pounds" to the nearest £10, "change" a growth
    signed to one decimal (+2.4, −0.5), else a number."""
    if value is None or not np.isfinite(value):
        return "–"
    if kind == "money":
        return fmt_millions(value)
    if kind == "change":
        text = f"{abs(value):,.1f}"
        return text if text == "0.0" else ("−" if value < 0 else "+") + text
    sign = "−" if value < 0 and kind != "number" else ""
    if kind == "pounds":
        return f"{sign}£{round(abs(value), -1):,.0f}"
    return f"{value:,.1f}"
