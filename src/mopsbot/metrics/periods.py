"""Reporting periods: relative phrases ("last quarter", "QTD", "since March") and absolute ranges to dates.

A period is inclusive of both ends. Quarters and years follow the fiscal calendar (the catalog's
fiscal_year_start_month); fiscal year N is the one that ends in calendar year N.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from mopsbot.errors import UserFacingError

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m
}
MONTHS["sept"] = 9
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))


class PeriodError(UserFacingError):
    """A period phrase that cannot be read; the message lists what can."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def iso(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _month_end(d: date) -> date:
    return add_months(_month_start(d), 1) - timedelta(days=1)


@dataclass(frozen=True)
class FiscalCalendar:
    start_month: int = 1

    def quarter_start(self, d: date) -> date:
        offset = (d.month - self.start_month) % 3
        return add_months(_month_start(d), -offset)

    def year_start(self, d: date) -> date:
        offset = (d.month - self.start_month) % 12
        return add_months(_month_start(d), -offset)

    def fiscal_year(self, d: date) -> int:
        return add_months(self.year_start(d), 11).year

    def quarter_number(self, d: date) -> int:
        return (d.month - self.start_month) % 12 // 3 + 1

    def quarter(self, fy: int, q: int) -> Period:
        first = add_months(date(fy, self.start_month, 1), (-12 if self.start_month != 1 else 0) + 3 * (q - 1))
        return Period(first, add_months(first, 3) - timedelta(days=1), self.quarter_label(first))

    def quarter_label(self, d: date) -> str:
        prefix = "FY" if self.start_month != 1 else ""
        return f"Q{self.quarter_number(d)} {prefix}{self.fiscal_year(d)}"

    def year(self, fy: int) -> Period:
        first = add_months(date(fy, self.start_month, 1), -12 if self.start_month != 1 else 0)
        label = f"FY{fy}" if self.start_month != 1 else str(fy)
        return Period(first, add_months(first, 12) - timedelta(days=1), label)


HELP = (
    "periods I understand: last N days/weeks/months, last week/month/quarter/year, this month/quarter/year, "
    "MTD/QTD/YTD, Q3 2026 (or FY2026 Q3), October 2026, since March, 2026, yesterday, "
    "or an ISO range 2026-01-01..2026-03-31"
)


def parse_period(text: str, today: date, cal: FiscalCalendar | None = None) -> Period:
    """The period a phrase names, relative to `today`. Raises PeriodError."""
    try:
        return _parse(text, today, cal or FiscalCalendar())
    except ValueError as err:  # an impossible date: 2026-02-30, month 13
        raise PeriodError(f"the period {text!r} holds an impossible date ({err}); {HELP}") from None


def _parse(text: str, today: date, cal: FiscalCalendar) -> Period:
    t = re.sub(r"\s+", " ", text.strip().lower()).removeprefix("in ").removeprefix("the ").removeprefix("for ")
    yesterday = today - timedelta(days=1)
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\s*(?:\.\.|to|through|until|-|–)\s*(\d{4}-\d{2}-\d{2})", t):
        start, end = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        if end < start:
            raise PeriodError(f"the period {text!r} ends before it starts")
        return Period(start, end, f"{start.isoformat()} to {end.isoformat()}")
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})", t):
        d = date.fromisoformat(m.group(1))
        return Period(d, d, d.isoformat())
    if t in ("today",):
        return Period(today, today, "today")
    if t == "yesterday":
        return Period(yesterday, yesterday, "yesterday")
    if m := re.fullmatch(r"(?:last|past|trailing|previous) (\d{1,4}) (day|week|month)s?", t):
        n, unit = int(m.group(1)), m.group(2)
        if n < 1:
            raise PeriodError(f"the period {text!r} is empty; ask for at least 1 {unit}")
        if unit == "day":
            start = today - timedelta(days=n)
        elif unit == "week":
            start = today - timedelta(weeks=n)
        else:
            start = add_months(today, -n)
        return Period(start, yesterday, f"the last {n} {unit}s ({start.isoformat()} to {yesterday.isoformat()})")
    if m := re.fullmatch(r"(last|previous|this|current) (week|month|quarter|year|fiscal year)", t):
        which, unit = m.groups()
        back = which in ("last", "previous")
        if unit == "week":
            start = today - timedelta(days=today.weekday()) - timedelta(weeks=int(back))
            return _to_date(Period(start, start + timedelta(days=6), f"{which} week"), today, back)
        if unit == "month":
            first = add_months(_month_start(today), -int(back))
            return _to_date(Period(first, _month_end(first), first.strftime("%B %Y")), today, back)
        if unit == "quarter":
            first = add_months(cal.quarter_start(today), -3 * int(back))
            return _to_date(
                Period(first, add_months(first, 3) - timedelta(days=1), cal.quarter_label(first)), today, back
            )
        fy = cal.fiscal_year(today) - int(back)
        return _to_date(cal.year(fy), today, back)
    to_date = {"mtd": "month", "month to date": "month", "qtd": "quarter", "quarter to date": "quarter",
               "ytd": "year", "year to date": "year"}  # fmt: skip
    if t in to_date:
        unit = to_date[t]
        first = {"month": _month_start, "quarter": cal.quarter_start, "year": cal.year_start}[unit](today)
        return Period(first, today, f"{t.upper() if len(t) == 3 else t} ({first.isoformat()} to {today.isoformat()})")
    if m := re.fullmatch(r"(?:fy ?(\d{4}) )?q([1-4])(?: (?:fy ?)?(\d{4}))?", t):
        q = int(m.group(2))
        fy = int(m.group(1) or m.group(3) or 0)
        if not fy:  # "Q3" alone: the latest Q3 that has started
            fy = cal.fiscal_year(today)
            if cal.quarter(fy, q).start > today:
                fy -= 1
        return cal.quarter(fy, q)
    if m := re.fullmatch(r"(?:fy ?)?(\d{4})", t):
        return cal.year(int(m.group(1)))
    if m := re.fullmatch(rf"since ({_MONTH})(?: (\d{{4}}))?", t):
        first = _latest_month(MONTHS[m.group(1)], m.group(2), today)
        return Period(first, today, f"since {first.strftime('%B %Y')}")
    if m := re.fullmatch(r"since (\d{4}-\d{2}-\d{2})", t):
        first = date.fromisoformat(m.group(1))
        return Period(first, today, f"since {first.isoformat()}")
    if m := re.fullmatch(rf"({_MONTH})(?:,? (\d{{4}}))?", t):
        first = _latest_month(MONTHS[m.group(1)], m.group(2), today)
        return Period(first, _month_end(first), first.strftime("%B %Y"))
    raise PeriodError(f"I can't read the period {text!r}; {HELP}")


def _latest_month(month: int, year: str | None, today: date) -> date:
    if year:
        return date(int(year), month, 1)
    first = date(today.year, month, 1)
    return first if first <= today else date(today.year - 1, month, 1)


def _to_date(period: Period, today: date, complete: bool) -> Period:
    """A current unit ends today, not at its calendar end."""
    if complete or period.end <= today:
        return period
    return Period(period.start, today, f"{period.label} to date")


def comparison_period(period: Period, compare_to: str, cal: FiscalCalendar | None = None) -> Period:
    """The period to compare with: the one just before (same length; whole months and quarters shift by
    months) or the same period a year earlier."""
    cal = cal or FiscalCalendar()
    if compare_to == "same_period_last_year":
        start, end = add_months(period.start, -12), add_months(period.end, -12)
        if period.end == _month_end(period.end):
            end = _month_end(end)
        return Period(start, end, f"the same period a year earlier ({start.isoformat()} to {end.isoformat()})")
    if compare_to != "previous_period":
        raise PeriodError(f"compare_to must be previous_period or same_period_last_year, not {compare_to!r}")
    months = _whole_months(period)
    if months:
        start = add_months(period.start, -months)
        end = period.start - timedelta(days=1)
        label = cal.quarter_label(start) if months == 3 and cal.quarter_start(start) == start else None
        if months == 1:
            label = start.strftime("%B %Y")
        return Period(start, end, label or f"the previous {months} months ({start.isoformat()} to {end.isoformat()})")
    end = period.start - timedelta(days=1)
    start = end - timedelta(days=period.days - 1)
    return Period(start, end, f"the previous {period.days} days ({start.isoformat()} to {end.isoformat()})")


def _whole_months(period: Period) -> int:
    """How many calendar months the period spans exactly, or 0 if it does not start and end on month edges."""
    if period.start.day != 1 or period.end != _month_end(period.end):
        return 0
    return (period.end.year - period.start.year) * 12 + period.end.month - period.start.month + 1
