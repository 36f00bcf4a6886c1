"""Reporting periods: relative phrases at quarter and year edges, fiscal calendars, comparison periods, and the
engine's comparisons giving the other period's own numbers."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from mopsbot.metrics.engine import MetricsEngine
from mopsbot.metrics.periods import FiscalCalendar, Period, PeriodError, comparison_period, parse_period
from mopsbot.metrics.query import MetricQuery

D = date.fromisoformat
FISCAL_FEB = FiscalCalendar(2)

CALENDAR_CASES = [  # phrase, today, first day, last day
    ("last quarter", "2026-01-01", "2025-10-01", "2025-12-31"),
    ("last quarter", "2026-03-31", "2025-10-01", "2025-12-31"),
    ("last quarter", "2026-04-01", "2026-01-01", "2026-03-31"),
    ("last quarter", "2026-12-31", "2026-07-01", "2026-09-30"),
    ("this quarter", "2026-03-31", "2026-01-01", "2026-03-31"),
    ("this quarter", "2026-04-01", "2026-04-01", "2026-04-01"),
    ("QTD", "2026-01-01", "2026-01-01", "2026-01-01"),
    ("quarter to date", "2026-05-17", "2026-04-01", "2026-05-17"),
    ("qtd", "2026-12-31", "2026-10-01", "2026-12-31"),
    ("last month", "2026-01-01", "2025-12-01", "2025-12-31"),
    ("last month", "2026-03-31", "2026-02-01", "2026-02-28"),
    ("last month", "2028-03-15", "2028-02-01", "2028-02-29"),
    ("this month", "2026-02-10", "2026-02-01", "2026-02-10"),
    ("MTD", "2026-12-31", "2026-12-01", "2026-12-31"),
    ("YTD", "2026-01-01", "2026-01-01", "2026-01-01"),
    ("year to date", "2026-12-31", "2026-01-01", "2026-12-31"),
    ("last year", "2026-01-01", "2025-01-01", "2025-12-31"),
    ("last year", "2026-12-31", "2025-01-01", "2025-12-31"),
    ("this year", "2026-04-01", "2026-01-01", "2026-04-01"),
    ("Q4", "2026-11-16", "2026-10-01", "2026-12-31"),  # the latest Q4 that has started
    ("Q4", "2026-09-30", "2025-10-01", "2025-12-31"),
    ("Q1", "2026-01-01", "2026-01-01", "2026-03-31"),
    ("Q2", "2026-03-31", "2025-04-01", "2025-06-30"),
    ("Q3 2026", "2025-01-01", "2026-07-01", "2026-09-30"),
    ("FY2026 Q3", "2026-11-16", "2026-07-01", "2026-09-30"),
    ("q3 fy2026", "2026-11-16", "2026-07-01", "2026-09-30"),
    ("2025", "2026-11-16", "2025-01-01", "2025-12-31"),
    ("since March", "2026-11-16", "2026-03-01", "2026-11-16"),
    ("since March", "2026-02-10", "2025-03-01", "2026-02-10"),  # March has not come yet this year
    ("since March", "2026-03-01", "2026-03-01", "2026-03-01"),
    ("since march 2025", "2026-11-16", "2025-03-01", "2026-11-16"),
    ("last 30 days", "2026-11-16", "2026-10-17", "2026-11-15"),  # 30 whole days, today excluded
    ("last 30 days", "2026-03-01", "2026-01-30", "2026-02-28"),
    ("last 7 days", "2026-01-01", "2025-12-25", "2025-12-31"),
    ("yesterday", "2026-01-01", "2025-12-31", "2025-12-31"),
    ("October 2026", "2026-11-16", "2026-10-01", "2026-10-31"),
    ("oct 2026", "2026-11-16", "2026-10-01", "2026-10-31"),
    ("October", "2026-09-10", "2025-10-01", "2025-10-31"),  # the latest October that has started
    ("in the last quarter", "2026-04-01", "2026-01-01", "2026-03-31"),
    ("2026-01-01..2026-03-31", "2026-11-16", "2026-01-01", "2026-03-31"),
    ("2026-01-01 to 2026-03-31", "2026-11-16", "2026-01-01", "2026-03-31"),
    ("2026-02-10", "2026-11-16", "2026-02-10", "2026-02-10"),
]
FISCAL_CASES = [  # fiscal year starting in February: FY2026 is 2025-02-01..2026-01-31
    ("this quarter", "2026-01-15", "2025-11-01", "2026-01-15", "Q4 FY2026 to date"),
    ("last quarter", "2026-02-01", "2025-11-01", "2026-01-31", "Q4 FY2026"),
    ("YTD", "2026-01-15", "2025-02-01", "2026-01-15", None),
    ("YTD", "2026-02-01", "2026-02-01", "2026-02-01", None),
    ("FY2026 Q3", "2026-11-16", "2025-08-01", "2025-10-31", "Q3 FY2026"),
    ("Q1", "2026-03-01", "2026-02-01", "2026-04-30", "Q1 FY2027"),
    ("Q4", "2026-03-01", "2025-11-01", "2026-01-31", "Q4 FY2026"),
    ("last year", "2026-03-01", "2025-02-01", "2026-01-31", "FY2026"),
    ("FY2026", "2026-11-16", "2025-02-01", "2026-01-31", "FY2026"),
]


@pytest.mark.parametrize(("phrase", "today", "first", "last"), CALENDAR_CASES)
def test_phrase_names_the_right_days(phrase: str, today: str, first: str, last: str) -> None:
    period = parse_period(phrase, D(today))
    assert (period.start, period.end) == (D(first), D(last))


@pytest.mark.parametrize(("phrase", "today", "first", "last", "label"), FISCAL_CASES)
def test_fiscal_calendar_starting_in_february(phrase: str, today: str, first: str, last: str, label: str) -> None:
    period = parse_period(phrase, D(today), FISCAL_FEB)
    assert (period.start, period.end) == (D(first), D(last))
    if label:
        assert period.label == label


def test_labels_say_which_quarter_and_when_it_is_still_running() -> None:
    assert parse_period("last quarter", D("2026-01-01")).label == "Q4 2025"
    assert parse_period("this quarter", D("2026-04-01")).label == "Q2 2026 to date"
    assert parse_period("last month", D("2026-03-31")).label == "February 2026"
    assert "2026-10-17" in parse_period("last 30 days", D("2026-11-16")).label


def p(first: str, last: str) -> Period:
    return Period(D(first), D(last), "")


COMPARISONS = [  # period, compare_to, calendar, expected first and last day
    (p("2026-07-01", "2026-09-30"), "previous_period", None, "2026-04-01", "2026-06-30"),
    (p("2026-01-01", "2026-03-31"), "previous_period", None, "2025-10-01", "2025-12-31"),
    (p("2026-03-01", "2026-03-31"), "previous_period", None, "2026-02-01", "2026-02-28"),
    (p("2028-03-01", "2028-03-31"), "previous_period", None, "2028-02-01", "2028-02-29"),
    (p("2026-01-01", "2026-02-28"), "previous_period", None, "2025-11-01", "2025-12-31"),
    (p("2026-03-10", "2026-03-19"), "previous_period", None, "2026-02-28", "2026-03-09"),  # 10 days before
    (p("2026-10-17", "2026-11-15"), "previous_period", None, "2026-09-17", "2026-10-16"),
    (p("2025-11-01", "2026-01-31"), "previous_period", FISCAL_FEB, "2025-08-01", "2025-10-31"),
    (p("2026-07-01", "2026-09-30"), "same_period_last_year", None, "2025-07-01", "2025-09-30"),
    (p("2028-02-01", "2028-02-29"), "same_period_last_year", None, "2027-02-01", "2027-02-28"),
    (p("2029-02-01", "2029-02-28"), "same_period_last_year", None, "2028-02-01", "2028-02-29"),  # whole February
    (p("2028-02-29", "2028-02-29"), "same_period_last_year", None, "2027-02-28", "2027-02-28"),
    (p("2026-04-01", "2026-04-30"), "same_period_last_year", None, "2025-04-01", "2025-04-30"),
    (p("2026-03-10", "2026-03-19"), "same_period_last_year", None, "2025-03-10", "2025-03-19"),
]


@pytest.mark.parametrize(("period", "compare_to", "cal", "first", "last"), COMPARISONS)
def test_comparison_period(period: Period, compare_to: str, cal: FiscalCalendar | None, first: str, last: str) -> None:
    comp = comparison_period(period, compare_to, cal)
    assert (comp.start, comp.end) == (D(first), D(last))
    if compare_to == "previous_period":
        assert comp.end < period.start


def test_comparison_labels_name_the_quarter_or_month() -> None:
    assert comparison_period(p("2026-07-01", "2026-09-30"), "previous_period").label == "Q2 2026"
    assert comparison_period(p("2025-11-01", "2026-01-31"), "previous_period", FISCAL_FEB).label == "Q3 FY2026"
    assert comparison_period(p("2026-03-01", "2026-03-31"), "previous_period").label == "February 2026"


def test_unknown_comparison_is_refused() -> None:
    with pytest.raises(PeriodError, match="previous_period or same_period_last_year"):
        comparison_period(p("2026-07-01", "2026-09-30"), "last_decade")


GARBAGE = ["banana", "next quarter", "Q5 2026", "last fortnight", "", "the other day", "Q3 2026; DROP TABLE x"]


@pytest.mark.parametrize("phrase", GARBAGE)
def test_garbage_is_refused_with_what_can_be_read(phrase: str) -> None:
    with pytest.raises(PeriodError) as err:
        parse_period(phrase, D("2026-11-16"))
    assert repr(phrase) in str(err.value)
    assert "Q3 2026" in str(err.value) and "2026-01-01..2026-03-31" in str(err.value)


@pytest.mark.parametrize(
    "phrase",
    [
        "2026-03-31..2026-01-01",
        "2026-02-30",
        "2026-13-01..2026-14-01",
        "last 0 days",
    ],
)
def test_impossible_periods_are_refused(phrase: str) -> None:
    with pytest.raises(PeriodError, match=phrase.split("..")[0]):
        parse_period(phrase, D("2026-11-16"))


# --- comparisons on the warehouse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "compare_to", "other"),
    [("Q3 2026", "previous_period", "Q2 2026"), ("Q3 2026", "same_period_last_year", "Q3 2025"),
     ("last 30 days", "previous_period", "2026-09-17..2026-10-16"),
     ("October 2026", "same_period_last_year", "October 2025")],
)  # fmt: skip
def test_comparison_gives_the_other_periods_own_numbers(
    engine: MetricsEngine, period: str, compare_to: str, other: str
) -> None:
    ask = {"metrics": ["cpl", "leads"], "dimensions": ["channel"]}
    now = engine.query(MetricQuery(**ask, period=period, compare_to=compare_to)).rows
    then = {r["channel"]: r for r in engine.query(MetricQuery(**ask, period=other)).rows}
    assert now and then
    for row in now:
        for m in ("cpl", "leads"):
            before = then.get(row["channel"], {}).get(m)
            if before is None and m == "leads":  # a count over no rows of the other period is 0, not empty
                before = 0
            assert row[f"{m}_previous"] == (None if before is None else pytest.approx(before, rel=1e-9))
            change = (row[m] - before) / abs(before) if row[m] is not None and before else None
            assert row[f"{m}_change"] == (None if change is None else pytest.approx(change, rel=1e-9))


@pytest.mark.parametrize(
    ("period", "compare_to", "months_back"),
    [("Q3 2026", "previous_period", 3), ("Q3 2026", "same_period_last_year", 12),
     ("YTD", "same_period_last_year", 12)],
)  # fmt: skip
def test_monthly_comparison_pairs_each_month_with_the_same_month_back(
    engine: MetricsEngine, con: duckdb.DuckDBPyConnection, period: str, compare_to: str, months_back: int
) -> None:
    rows = engine.query(MetricQuery(metrics=["leads"], grain="month", period=period, compare_to=compare_to)).rows
    monthly = dict(
        con.execute("SELECT date_trunc('month', created_at)::DATE, count(*) FROM dim_lead GROUP BY 1").fetchall()
    )
    back = {r["bucket"]: r["bucket"].replace(year=r["bucket"].year - 1) if months_back == 12 else
            date(r["bucket"].year, r["bucket"].month - 3, 1) for r in rows}  # fmt: skip
    assert rows
    assert {r["bucket"]: r["leads_previous"] for r in rows} == {b: monthly.get(back[b]) for b in back}
