"""Numbers, dates and money as a board paper writes them: 17 October 2022, 1,234, 12.5%, £3.4m."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np


def fmt_date(d: dt.date | None) -> str:
    """17 October 2022."""
    return "" if d is None else f"{d.day} {d:%B %Y}"


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


def fmt_pounds(x: float | None) -> str:
    """An amount of money: £1m or more in £ million to one decimal (£303.3m), less in pounds (£2,200; £12.50)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    sign, amount = ("−" if x < 0 else ""), abs(x)
    if amount >= 1e6:
        return f"{sign}£{amount / 1e6:,.1f}m"
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
    """A finance table cell: "money" in £ million to one decimal, "pounds" to the nearest £10, else a number."""
    if value is None or not np.isfinite(value):
        return "–"
    sign = "−" if value < 0 and kind != "number" else ""
    if kind == "money":
        return f"{sign}£{abs(value) / 1e6:,.1f}m"
    if kind == "pounds":
        return f"{sign}£{round(abs(value), -1):,.0f}"
    return f"{value:,.1f}"
